/**
 * Drives whisper-worker.ts (the production model code in workerd, with a heap report) over the
 * utterances the real service transcribed, then the longest utterance the service makes (15 s) and
 * the 28-s utterance of the heap goal, and reads the isolate's memory three ways:
 * - ORT's WebAssembly heap (`wasmHeapBytes()`, src/runtime/ort.ts) after Silero, after Whisper,
 *   after every utterance (it never shrinks: the last reading is the peak);
 * - V8's JS heap and ArrayBuffer backing stores through the inspector (after timing, see
 *   inspector.ts), before and after a forced GC;
 * - the workerd process's RSS: baseline (worker started, nothing loaded), after load, and the peak
 *   (VmHWM, reset at the baseline), whose growth over the baseline bounds what the models cost the
 *   process, allocator slack and ORT's compiled code included.
 */

import { type DevWorker, startDevWorker } from "../dev-worker.ts";
import {
  type JsHeap,
  jsHeap,
  type ProcessMemory,
  poke,
  processMemory,
  readThroughInspector,
  rssBaseline,
  rssByPid,
} from "./memory.ts";
import type { LoadReply, ReadReply, TranscribeReply } from "./worker-common.ts";

/** A cold load reads 41 MB from local R2, hashes it and builds two sessions: seconds. */
const LOAD_TIMEOUT_MS = 120_000;
/** One utterance of ≤ 30 s takes ~1 s here; 60 s means it is stuck. */
const TRANSCRIBE_TIMEOUT_MS = 60_000;

export interface Utterance {
  label: string;
  samples: Float32Array<ArrayBuffer>;
}

type Transcribed = TranscribeReply & { label: string };

export interface MemoryRun {
  load: LoadReply;
  /** The models read from R2 and hashed again, without session creation (after the load). */
  read: ReadReply;
  utterances: Transcribed[];
  /** The long utterances, in the order given (after every final's audio). */
  long: Transcribed[];
  process: (ProcessMemory & { afterLoadBytes: number }) | null;
  isolate: JsHeap | null;
  /** Why `isolate` is null. */
  isolateError: string | null;
}

async function call<T>(
  worker: DevWorker,
  path: string,
  timeoutMs: number,
  body?: Float32Array<ArrayBuffer>,
): Promise<T> {
  const response = await fetch(`${worker.url}${path}`, {
    method: "POST",
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`bench worker ${path}: HTTP ${response.status}\n${text}`);
  return JSON.parse(text) as T;
}

/** The worker's workerd is the process whose RSS grew most while loading. */
function mostGrown(before: Map<number, number>, after: Map<number, number>): number | null {
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

export async function runMemoryWorker(options: {
  root: string;
  persistTo: string;
  utterances: Utterance[];
  /** Transcribed after `utterances`, in this order (heap readings only grow). */
  long: Utterance[];
  log: (message: string) => void;
}): Promise<MemoryRun> {
  const worker = await startDevWorker({
    config: `${options.root}/tools/load/bench/wrangler.whisper.toml`,
    persistTo: options.persistTo,
    vars: {},
    secrets: {},
  });
  try {
    const ping = await fetch(`${worker.url}/ping`, { signal: AbortSignal.timeout(30_000) });
    if (!ping.ok) throw new Error(`bench worker /ping: HTTP ${ping.status}`);
    const pids = worker.workerdPids();
    const baseline = rssBaseline(pids);

    const load = await call<LoadReply>(worker, "/load", LOAD_TIMEOUT_MS);
    const afterLoad = rssByPid(pids);
    const pid = mostGrown(baseline.bytes, afterLoad);
    options.log(
      `whisper: bench worker loaded VAD + Whisper in ${Math.round(load.vadMs + load.whisperMs)} ms`,
    );

    const transcribeAll = async (list: Utterance[]) => {
      const out: Transcribed[] = [];
      for (const { label, samples } of list) {
        const reply = await call<TranscribeReply>(
          worker,
          "/transcribe",
          TRANSCRIBE_TIMEOUT_MS,
          samples,
        );
        out.push({ label, ...reply });
      }
      return out;
    };
    const utterances = await transcribeAll(options.utterances);
    const long = await transcribeAll(options.long);
    const read = await call<ReadReply>(worker, "/read-models", LOAD_TIMEOUT_MS);

    const end = processMemory(pid, baseline);
    const process = end && { ...end, afterLoadBytes: afterLoad.get(end.pid) ?? Number.NaN };

    // Last: with DevTools attached, V8 would run wasm in its slow debug tier.
    const isolate = await readThroughInspector(
      worker.inspectorPort,
      (inspector) => jsHeap(inspector, () => poke(`${worker.url}/ping`)),
      (error) => options.log(`whisper: no isolate heap reading from the bench worker: ${error}`),
    );
    return {
      load,
      read,
      utterances,
      long,
      process,
      isolate: isolate.value,
      isolateError: isolate.error,
    };
  } finally {
    await worker.stop();
  }
}
