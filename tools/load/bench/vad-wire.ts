/**
 * What tools/load/bench/vad-worker.ts answers, shared with the Node side (tools/load/bench/vad.ts).
 * Types only: this file is imported by code that runs in workerd and by code that runs in Node.
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

/** One pass of POST /opus over the whole stream, with a fresh decoder and resampler. */
export interface OpusRound {
  /** Creating the decoder (instantiating its wasm, libopus init), ms. */
  createMs: number;
  /** Decoding every packet, in groups as a session gets them, ms (one closing I/O boundary). */
  decodeMs: number;
  /** Resampling the decoded 48 kHz audio to 16 kHz in the same groups, ms (one boundary). */
  resampleMs: number;
}

/** POST /opus: an Ogg/Opus stream through the session's demuxer, decoder and resampler. */
export interface OpusRun {
  packets: number;
  channels: number;
  /** Mono samples decoded at 48 kHz (after pre-skip), per round. */
  samples48k: number;
  /** Samples out of the resampler at 16 kHz, per round. */
  samples16k: number;
  rounds: OpusRound[];
  /** The decoder's own wasm heap (per session), bytes. */
  heapBytes: number;
}
