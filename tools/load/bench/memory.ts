/**
 * A local worker's memory read from outside it: the RSS of its workerd process (/proc, through
 * tools/load/dev-worker.ts) and, through wrangler's inspector (tools/load/inspector.ts), V8's
 * heap before and after a forced GC. With DevTools attached V8 runs wasm in its slow debug tier,
 * so callers read the inspector after their timed work.
 */

import { type HeapUsage, Inspector } from "../inspector.ts";
import { resetPeakRss, rss } from "../proc.ts";
import { type Settled, settle } from "./report.ts";
import { runSession } from "./whisper-session.ts";

/** A request whose answer is dropped: it makes the isolate run (and its logs name the context). */
export async function poke(url: string): Promise<void> {
  const answer = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  await answer.body?.cancel();
}

/** RSS of each process now, bytes (unreadable ones left out). */
export function rssByPid(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const value = rss(pid);
    if (value !== null) out.set(pid, value.rssBytes);
  }
  return out;
}

/** The processes' RSS now, and their peaks reset to it, so a later peak is one since now. */
export function rssBaseline(pids: readonly number[]) {
  const bytes = rssByPid(pids);
  return { bytes, peakReset: pids.map(resetPeakRss).every(Boolean) };
}

export interface ProcessMemory {
  pid: number;
  baselineBytes: number;
  endBytes: number;
  /** VmHWM at the end; since the baseline when `peakSinceBaseline`. */
  peakBytes: number;
  peakSinceBaseline: boolean;
}

/** `pid`'s RSS and peak now against its `rssBaseline`; null when it cannot be read. */
export function processMemory(
  pid: number | null,
  baseline: ReturnType<typeof rssBaseline>,
): ProcessMemory | null {
  const end = pid === null ? null : rss(pid);
  if (pid === null || end === null) return null;
  return {
    pid,
    baselineBytes: baseline.bytes.get(pid) ?? Number.NaN,
    endBytes: end.rssBytes,
    peakBytes: end.hwmBytes,
    peakSinceBaseline: baseline.peakReset,
  };
}

/** V8's heap of the isolate: as the last calls left it, and after a forced GC. */
export interface JsHeap {
  atEnd: HeapUsage;
  afterGc: HeapUsage;
}

/**
 * Every WebAssembly.Memory of the real service's isolate at `url`, bytes. A session that opens and
 * closes makes the worker log, which names the context the inspector evaluates in.
 */
export function serviceWasmMemories(inspector: Inspector, url: string): Promise<number[]> {
  return inspector.wasmMemories(async () => {
    await runSession(url, new Uint8Array(0), null);
  });
}

export async function jsHeap(inspector: Inspector, poke: () => Promise<void>): Promise<JsHeap> {
  const atEnd = await inspector.heapUsage();
  await inspector.collectGarbage(poke);
  return { atEnd, afterGc: await inspector.heapUsage() };
}

/** `read` with DevTools attached to the worker, detached after (a failure `settle`d). */
export function readThroughInspector<T>(
  port: number,
  read: (inspector: Inspector) => Promise<T>,
  onError: (message: string) => void,
): Promise<Settled<T>> {
  return settle(async () => {
    const inspector = await Inspector.connect(port);
    try {
      return await read(inspector);
    } finally {
      inspector.close();
    }
  }, onError);
}
