/**
 * What the load tools read of processes from /proc: CPU time (wall time per frame swings with
 * whatever else runs on the 2 cores, CPU time spent by the process doing the work does much less),
 * memory (RSS), and the process tree (which workerd processes a run started). Linux only;
 * elsewhere every function returns null, false or [] and callers report null.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

export function read(file: string): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return null; // no /proc (not Linux) or the process/thread just exited: "unknown", not 0
  }
}

function threads(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
}

/** Where a process's threads have spent their time so far, ms. */
export interface Sched {
  /** On a CPU. */
  cpuMs: number;
  /** Runnable but waiting for a CPU: what other load on the machine costs this process. */
  waitMs: number;
}

/**
 * Summed over all live threads of `pid`, from each thread's schedstat (ns precision). A thread
 * that exits between two readings drops out of the sum; workerd keeps its threads for life.
 */
export function sched(pid: number): Sched | null {
  let cpu = 0;
  let wait = 0;
  let seen = 0;
  for (const tid of threads(pid)) {
    const fields = read(`/proc/${pid}/task/${tid}/schedstat`)?.split(" ") ?? [];
    const run = Number(fields[0]);
    const queued = Number(fields[1]);
    if (!Number.isFinite(run) || !Number.isFinite(queued)) continue;
    cpu += run;
    wait += queued;
    seen += 1;
  }
  return seen > 0 ? { cpuMs: cpu / 1e6, waitMs: wait / 1e6 } : null;
}

/** `sched` of several processes (unreadable ones are left out). */
export function schedByPid(pids: readonly number[]): Map<number, Sched> {
  const out = new Map<number, Sched>();
  for (const pid of pids) {
    const value = sched(pid);
    if (value !== null) out.set(pid, value);
  }
  return out;
}

/** What each process spent between two `schedByPid` readings. */
export function schedSpentByPid(
  before: ReadonlyMap<number, Sched>,
  after: ReadonlyMap<number, Sched>,
): Map<number, Sched> {
  const out = new Map<number, Sched>();
  for (const [pid, end] of after) {
    const start = before.get(pid);
    if (start) out.set(pid, { cpuMs: end.cpuMs - start.cpuMs, waitMs: end.waitMs - start.waitMs });
  }
  return out;
}

/**
 * The process that spent the most CPU over some readings of `schedSpentByPid`: the worker's own
 * workerd, not wrangler's proxy beside it (wrangler does not say which is which).
 */
export function busiestPid(readings: readonly ReadonlyMap<number, Sched>[]): number | null {
  const totals = new Map<number, number>();
  for (const reading of readings) {
    for (const [pid, value] of reading) totals.set(pid, (totals.get(pid) ?? 0) + value.cpuMs);
  }
  let best: number | null = null;
  for (const [pid, total] of totals) {
    if (best === null || total > (totals.get(best) ?? 0)) best = pid;
  }
  return best;
}

/** Direct children of `pid`, from every thread's children list. */
function children(pid: number): number[] {
  return threads(pid).flatMap((tid) =>
    (read(`/proc/${pid}/task/${tid}/children`) ?? "").split(/\s+/).filter(Boolean).map(Number),
  );
}

/** Whether `pid`'s executable name is `comm` (e.g. "workerd"). */
export function named(pid: number, comm: string): boolean {
  return read(`/proc/${pid}/comm`)?.trim() === comm;
}

/** Direct children of `pid` whose executable name is `comm`. */
export function childrenNamed(pid: number, comm: string): number[] {
  return children(pid).filter((child) => named(child, comm));
}

/** Every live descendant of `pid` (children, their children, …). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (parent: number) => {
    for (const child of children(parent)) {
      if (out.includes(child)) continue;
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

/** Resident and peak resident memory of a process, bytes (/proc/<pid>/status). */
export interface Rss {
  rssBytes: number;
  hwmBytes: number;
}

export function rss(pid: number): Rss | null {
  const status = read(`/proc/${pid}/status`);
  if (status === null) return null;
  const field = (name: string) => {
    const kb = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1];
    return kb === undefined ? Number.NaN : Number(kb) * 1024;
  };
  const value = { rssBytes: field("VmRSS"), hwmBytes: field("VmHWM") };
  return Number.isFinite(value.rssBytes) && Number.isFinite(value.hwmBytes) ? value : null;
}

/**
 * Resets a process's peak RSS (VmHWM) to its current RSS (Linux: "5" into clear_refs), so a later
 * VmHWM is the peak since now. False if the kernel refused.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}
