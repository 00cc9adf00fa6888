/**
 * Drives bench/whisper-worker.ts (the production model code in workerd, with a heap report) over
 * the utterances the real service transcribed, then the longest utterance the service makes (15 s)
 * and the 28-s utterance of the heap goal, and reads the isolate's
 * memory three ways:
 * - ORT's WebAssembly heap (`wasmHeapBytes()`, src/runtime/ort.ts) after Silero, after Whisper,
 *   after every utterance (it never shrinks: the last reading is the peak);
 * - V8's JS heap and ArrayBuffer backing stores through the inspector (after timing, see
 *   inspector.ts), before and after a forced GC;
 * - the workerd process's RSS: baseline (worker started, nothing loaded), after load, and the peak
 *   (VmHWM, reset at the baseline), whose growth over the baseline bounds what the models cost the
 *   process, allocator slack and ORT's compiled code included.
 */

import { type DevWorker, resetPeakRss, rss, startDevWorker } from "../scripts/lib/dev-worker.ts";
import { type HeapUsage, Inspector } from "../scripts/lib/inspector.ts";
import type { LoadReply, ReadReply, TranscribeReply } from "./whisper-wire.ts";

/** A cold load reads 41 MB from local R2, hashes it and builds two sessions: seconds. */
const LOAD_TIMEOUT_MS = 120_000;
/** One utterance of ≤ 30 s takes ~1 s here; 60 s means it is stuck. */
const TRANSCRIBE_TIMEOUT_MS = 60_000;

export interface Utterance {
  label: string;
  samples: Float32Array;
}

export interface ProcessMemory {
  pid: number;
  baselineBytes: number;
  afterLoadBytes: number;
  endBytes: number;
  /** VmHWM at the end; since the baseline when `peakSinceBaseline`. */
  peakBytes: number;
  peakSinceBaseline: boolean;
}

export interface MemoryRun {
  load: LoadReply;
  /** The models read from R2 and hashed again, without session creation (after the load). */
  read: ReadReply;
  utterances: (TranscribeReply & { label: string })[];
  /** The long utterances, in the order given (after every final's audio). */
  long: (TranscribeReply & { label: string })[];
  process: ProcessMemory | null;
  isolate: { atEnd: HeapUsage; afterGc: HeapUsage } | null;
  /** Why `isolate` is null. */
  isolateError: string | null;
}

async function post(worker: DevWorker, path: string, body: Float32Array | null, ms: number) {
  let bytes: Uint8Array<ArrayBuffer> | null = null;
  if (body !== null) {
    bytes = new Uint8Array(body.byteLength);
    bytes.set(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
  }
  const response = await fetch(`${worker.url}${path}`, {
    method: "POST",
    body: bytes,
    signal: AbortSignal.timeout(ms),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`bench worker ${path}: HTTP ${response.status}\n${text}`);
  return JSON.parse(text) as unknown;
}

/** The worker's workerd is the process whose RSS grew most while loading. */
function busiest(before: Map<number, number>, after: Map<number, number>): number | null {
  let best: number | null = null;
  let growth = Number.NEGATIVE_INFINITY;
  for (const [pid, bytes] of after) {
    const grew = bytes - (before.get(pid) ?? bytes);
    if (grew > growth) {
      growth = grew;
      best = pid;
    }
  }
  return best;
}

function rssByPid(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const value = rss(pid);
    if (value !== null) out.set(pid, value.rssBytes);
  }
  return out;
}

export async function runMemoryWorker(options: {
  root: string;
  persistTo: string;
  utterances: Utterance[];
  /** Transcribed after `utterances`, in this order (heap readings only grow). */
  long: Utterance[];
  log: (message: string) => void;
}): Promise<MemoryRun> {
  const worker = await startDevWorker({
    config: `${options.root}/bench/wrangler.whisper.toml`,
    persistTo: options.persistTo,
    vars: {},
    secrets: {},
  });
  try {
    const ping = await fetch(`${worker.url}/ping`, { signal: AbortSignal.timeout(30_000) });
    if (!ping.ok) throw new Error(`bench worker /ping: HTTP ${ping.status}`);
    const pids = worker.workerdPids();
    const baseline = rssByPid(pids);
    const peakReset = pids.map(resetPeakRss).every(Boolean);

    const load = (await post(worker, "/load", null, LOAD_TIMEOUT_MS)) as LoadReply;
    const afterLoad = rssByPid(pids);
    const pid = busiest(baseline, afterLoad);
    options.log(
      `whisper: bench worker loaded VAD + Whisper in ${Math.round(load.vadMs + load.whisperMs)} ms`,
    );

    const transcribe = async ({ label, samples }: Utterance) => ({
      label,
      ...((await post(
        worker,
        "/transcribe?language=en",
        samples,
        TRANSCRIBE_TIMEOUT_MS,
      )) as TranscribeReply),
    });
    const utterances: MemoryRun["utterances"] = [];
    for (const utterance of options.utterances) utterances.push(await transcribe(utterance));
    const long: MemoryRun["long"] = [];
    for (const utterance of options.long) long.push(await transcribe(utterance));
    const readResponse = await fetch(`${worker.url}/read-models`, {
      signal: AbortSignal.timeout(LOAD_TIMEOUT_MS),
    });
    if (!readResponse.ok) {
      throw new Error(`bench worker /read-models: HTTP ${readResponse.status}`);
    }
    const read = (await readResponse.json()) as ReadReply;

    let process: ProcessMemory | null = null;
    const end = pid === null ? null : rss(pid);
    if (pid !== null && end !== null) {
      process = {
        pid,
        baselineBytes: baseline.get(pid) ?? Number.NaN,
        afterLoadBytes: afterLoad.get(pid) ?? Number.NaN,
        endBytes: end.rssBytes,
        peakBytes: end.hwmBytes,
        peakSinceBaseline: peakReset,
      };
    }

    // Last: with DevTools attached, V8 would run wasm in its slow debug tier.
    let isolate: MemoryRun["isolate"] = null;
    let isolateError: string | null = null;
    try {
      const inspector = await Inspector.connect(worker.inspectorPort);
      try {
        const atEnd = await inspector.heapUsage();
        await inspector.collectGarbage(async () => {
          await (await fetch(`${worker.url}/ping`, { signal: AbortSignal.timeout(30_000) })).text();
        });
        isolate = { atEnd, afterGc: await inspector.heapUsage() };
      } finally {
        inspector.close();
      }
    } catch (error) {
      isolateError = error instanceof Error ? error.message : String(error);
      options.log(`whisper: no isolate heap reading from the bench worker: ${isolateError}`);
    }
    return { load, read, utterances, long, process, isolate, isolateError };
  } finally {
    await worker.stop();
  }
}
