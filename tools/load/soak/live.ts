/**
 * The soak's live phase: every session at once, each account filled to its limit, and probes
 * (extra connections with a full account's key) that must be refused with 429; the server is
 * watched throughout, and afterwards every slot must be released.
 */
import { HandshakeRefused, type Refusal } from "../../client/resumable-client.ts";
import { Inspector } from "../inspector.ts";
import { type FinalRecord, runProgram } from "../session-run.ts";
import type { Clip, Program } from "./programs.ts";
import { errorText, log, sleep } from "./progress.ts";
import type { IsolateStats, Service, SoakAccount } from "./service.ts";
import { refusalReason } from "./verdict.ts";

/** Launch jitter: sessions arrive over the first 1.5 s, not in one instant. */
const LAUNCH_SPREAD_MS = 1_500;

/** Probe rounds: the first this long after every session was admitted, then this often. */
const PROBE_FIRST_MS = 5_000;
const PROBE_EVERY_MS = 30_000;
const PROBES_PER_ROUND = 2;

/** How often the monitor reads /admin/isolate, GET /v1/sessions, and V8's heap. */
const ISOLATE_EVERY_MS = 1_000;
const SESSIONS_EVERY_MS = 2_000;
const JS_HEAP_EVERY_MS = 5_000;

interface AccountTrack {
  sessions: number;
  active: number;
  admitted: number;
  ended: number;
  peak: number;
}

/** Every session of the account was admitted and none has ended yet: no slot is free. */
const isFull = (track: AccountTrack) => track.admitted === track.sessions && track.ended === 0;

interface ProbeResult {
  account: number;
  refusal: Refusal | null;
  /** Admitted, and the account then listed more sessions than its limit: a limit violation. */
  violation: boolean;
  /**
   * Admitted although, as far as the client knew, every slot was taken (a session had just ended
   * at the server, or the limit was not enforced: `violation` tells which).
   */
  admittedWhileFull: boolean;
  error: string | null;
}

async function probe(
  service: Service,
  account: SoakAccount,
  index: number,
  track: AccountTrack,
): Promise<ProbeResult> {
  const none = { account: index, violation: false, admittedWhileFull: false };
  try {
    const client = await service.openSession(account.key, false, 30_000);
    const admittedWhileFull = isFull(track);
    // The limiter's own listing decides: the client's view lags a session that just ended.
    const listed = await service.activeSessions(account.key);
    await client.closeStream(30_000);
    const violation = listed > account.limit;
    return { ...none, refusal: null, violation, admittedWhileFull, error: null };
  } catch (error) {
    if (error instanceof HandshakeRefused) return { ...none, refusal: error.refusal, error: null };
    return { ...none, refusal: null, error: String(error) };
  }
}

/** The server's readings while the live phase runs; a failed reading is recorded, not fatal. */
export interface MonitorResult {
  /** False when the server has no /admin/isolate route (not mounted). */
  isolateRoute: boolean;
  /** Largest `waiting` seen in a sample. */
  sampledPeakQueue: number | null;
  first: IsolateStats | null;
  last: IsolateStats | null;
  wasmHeapPeakBytes: number | null;
  jsHeap: { samples: number; missed: number; peakUsedBytes: number | null; error: string | null };
  /** Per account (same order as given): the most sessions GET /v1/sessions listed at once. */
  sessionsPeak: number[];
  sessionSamples: number;
  errors: string[];
}

/**
 * Starts the readings, each on its own timer: the isolate's inference queue and ORT's WASM heap,
 * every account's active sessions (never more than its limit), and, with a port, V8's JS heap
 * through wrangler's inspector. The inspector answers only while the isolate is idle, so a heap
 * reading can be late or missing under load: a missed one is counted. Returns the stop function,
 * which takes one last isolate reading.
 */
async function startMonitor(
  service: Service,
  accounts: SoakAccount[],
  inspectorPort: number | null,
): Promise<() => Promise<MonitorResult>> {
  const result: MonitorResult = {
    isolateRoute: true,
    sampledPeakQueue: null,
    first: null,
    last: null,
    wasmHeapPeakBytes: null,
    jsHeap: { samples: 0, missed: 0, peakUsedBytes: null, error: null },
    sessionsPeak: accounts.map(() => 0),
    sessionSamples: 0,
    errors: [],
  };
  const noteError = (what: string, error: unknown) => {
    // Bounded: one failing poller must not grow the report by one line a second.
    if (result.errors.length < 20) result.errors.push(`${what}: ${errorText(error)}`);
  };
  const sampleIsolate = async () => {
    if (!result.isolateRoute) return;
    try {
      const stats = await service.isolateStats();
      if (stats === null) {
        result.isolateRoute = false;
        return;
      }
      result.sampledPeakQueue = Math.max(result.sampledPeakQueue ?? 0, stats.waiting);
      result.first ??= stats;
      result.last = stats;
      if (stats.wasmHeapBytes !== null) {
        result.wasmHeapPeakBytes = Math.max(result.wasmHeapPeakBytes ?? 0, stats.wasmHeapBytes);
      }
    } catch (error) {
      noteError("isolate stats", error);
    }
  };
  const sampleSessions = async () => {
    try {
      const counts = await Promise.all(accounts.map((a) => service.activeSessions(a.key)));
      counts.forEach((count, i) => {
        result.sessionsPeak[i] = Math.max(result.sessionsPeak[i] ?? 0, count);
      });
      result.sessionSamples += 1;
    } catch (error) {
      noteError("active sessions", error);
    }
  };
  let inspector: Inspector | null = null;
  const sampleJsHeap = async (connected: Inspector) => {
    const heap = result.jsHeap;
    try {
      const usage = await connected.heapUsage();
      heap.samples += 1;
      heap.peakUsedBytes = Math.max(heap.peakUsedBytes ?? 0, usage.usedBytes);
    } catch (error) {
      heap.missed += 1;
      heap.error = errorText(error);
    }
  };

  const timers: ReturnType<typeof setInterval>[] = [];
  const inFlight = new Set<Promise<void>>();
  /** Runs `task` every `ms`, skipping a tick while the previous one is still running. */
  const every = (ms: number, task: () => Promise<void>) => {
    let running = false;
    const tick = () => {
      if (running) return;
      running = true;
      const run = task().finally(() => {
        running = false;
        inFlight.delete(run);
      });
      inFlight.add(run);
    };
    timers.push(setInterval(tick, ms));
  };

  await sampleIsolate();
  await sampleSessions();
  every(ISOLATE_EVERY_MS, sampleIsolate);
  every(SESSIONS_EVERY_MS, sampleSessions);
  if (inspectorPort !== null) {
    try {
      const connected = await Inspector.connect(inspectorPort);
      inspector = connected;
      every(JS_HEAP_EVERY_MS, () => sampleJsHeap(connected));
    } catch (error) {
      result.jsHeap.error = errorText(error);
    }
  }
  return async () => {
    for (const timer of timers) clearInterval(timer);
    await Promise.all(inFlight);
    await sampleIsolate();
    if (inspector !== null) {
      await sampleJsHeap(inspector);
      inspector.close();
    }
    return result;
  };
}

export interface LiveRun {
  service: Service;
  accounts: SoakAccount[];
  programs: readonly Program[];
  clips: Clip[];
  references: ReadonlyMap<string, FinalRecord[]>;
  url: string;
  seconds: number;
  soloPace: number;
  inspectorPort: number | null;
}

export type LiveResult = Awaited<ReturnType<typeof livePhase>>;

export async function livePhase(run: LiveRun) {
  const { service, accounts, programs, references } = run;
  log(`live: ${programs.length} sessions for ~${run.seconds} s`);
  const stopMonitor = await startMonitor(service, accounts, run.inspectorPort);
  const tracks: AccountTrack[] = accounts.map(({ limit: sessions }) => ({
    sessions,
    active: 0,
    admitted: 0,
    ended: 0,
    peak: 0,
  }));
  let activeAll = 0;
  /** Most sessions running at once, as the client saw them. */
  let peakAll = 0;
  let settled = 0;
  const liveStarted = performance.now();
  const deadlineMs = Date.now() + (run.seconds * 1.5 + 180) * 1000;
  const liveRuns = programs.map(async (program, i) => {
    await sleep((i * LAUNCH_SPREAD_MS) / programs.length);
    const track = tracks[program.account] as AccountTrack;
    const account = accounts[program.account] as SoakAccount;
    const reference = references.get(program.id);
    let admitted = false;
    const record = await runProgram(program, {
      baseUrl: run.url,
      key: account.key,
      clips: run.clips,
      mode: "live",
      soloPace: run.soloPace,
      deadlineMs,
      ...(reference === undefined ? {} : { reference }),
      onAdmitted: () => {
        admitted = true;
        track.admitted += 1;
        track.active += 1;
        track.peak = Math.max(track.peak, track.active);
        activeAll += 1;
        peakAll = Math.max(peakAll, activeAll);
        settled += 1;
      },
      onEnded: () => {
        track.active -= 1;
        track.ended += 1;
        activeAll -= 1;
      },
    });
    if (!admitted) settled += 1;
    const outcome = record.refusal
      ? `refused ${refusalReason(record.refusal)}`
      : `${record.finals.length} finals, close ${record.close?.code} ${record.close?.reason ?? ""}`;
    log(`live ${program.id}: ${outcome}`);
    return record;
  });

  // Probes: while an account is full, more connections with its key must be refused.
  const probes: ProbeResult[] = [];
  let liveDone = false;
  const probing = (async () => {
    while (settled < programs.length && !liveDone) await sleep(100);
    await sleep(PROBE_FIRST_MS);
    while (!liveDone) {
      const round = accounts.flatMap((account, a) => {
        const track = tracks[a] as AccountTrack;
        if (!isFull(track)) return [];
        return Array.from({ length: PROBES_PER_ROUND }, () => probe(service, account, a, track));
      });
      if (round.length === 0) break;
      probes.push(...(await Promise.all(round)));
      const until = performance.now() + PROBE_EVERY_MS;
      while (!liveDone && performance.now() < until) await sleep(250);
    }
  })();
  const records = await Promise.all(liveRuns);
  liveDone = true;
  await probing;
  const seconds = (performance.now() - liveStarted) / 1000;
  const server = await stopMonitor();
  log("live phase over; waiting for every slot to be released");
  // What each account still held when the drain ended; records are in the programs' order.
  const after = await service.drain(accounts);
  return { records, probes, tracks, peakAll, seconds, server, after };
}
