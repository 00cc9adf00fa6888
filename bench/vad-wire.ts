/**
 * What bench/vad-worker.ts answers, shared with the Node side (bench/vad.ts). Types only: this file
 * is imported by code that runs in workerd and by code that runs in Node.
 */

/** GET /clock */
export interface ClockProbe {
  /** Did the clock move while JS ran without any I/O? (false = frozen, as in production) */
  advancesWithoutIo: boolean;
  /** Smallest clock step seen while spinning, ms; null if it never moved. */
  resolutionMs: number | null;
  /** Mean cost of one empty `scheduler.wait(0)` boundary, ms. */
  boundaryMs: number;
  /** Clock reads done while spinning. */
  reads: number;
}

export interface VadBatch {
  /** Index of the batch's first frame in the clip. */
  start: number;
  frames: number;
  /** Wall time of the whole batch, ms, including one closing I/O boundary. */
  ms: number;
}

/** POST /vad */
export interface VadRun {
  probabilities: number[];
  batches: VadBatch[];
  /** Present on the isolate's first run only: model load and the first frame, timed alone. */
  cold: { loadMs: number; firstFrameMs: number } | null;
  /** ORT's WebAssembly heap after the run, bytes. */
  wasmHeapBytes: number | null;
}
