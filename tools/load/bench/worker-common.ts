/**
 * What the two bench workers (vad-worker.ts, whisper-worker.ts) share, and what they answer. The
 * functions run in workerd; the Node side imports only the types.
 *
 * Timing: on Cloudflare, workerd freezes `Date.now()` / `performance.now()` while JS runs (Spectre
 * mitigation) and advances them only across I/O, and the clock has 1 ms resolution. So measured
 * work is closed by an I/O boundary (`tick`): the reading after the boundary is the time the work
 * finished, whether or not the local clock is frozen (the vad section's /clock reports which).
 */

/** Crosses an I/O boundary (a timer) and reads the clock on the far side of it. */
export async function tick(): Promise<number> {
  await scheduler.wait(0);
  return performance.now();
}

type Route<Env> = (request: Request, url: URL, env: Env) => Promise<Response>;

/**
 * A worker's fetch handler from routes keyed "METHOD /path": 404 for any other request, and a
 * failure's stack as the 500 body, which the bench prints: a broken run must say why.
 */
export function router<Env = unknown>(
  routes: Record<string, Route<Env>>,
): ExportedHandlerFetchHandler<Env> {
  return async (request, env) => {
    const url = new URL(request.url);
    const route = routes[`${request.method} ${url.pathname}`];
    if (route === undefined) return new Response("not found", { status: 404 });
    try {
      return await route(request, url, env);
    } catch (error) {
      const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
      return new Response(detail, { status: 500 });
    }
  };
}

/** The request body as Float32 samples, or why not (at most `maxBytes`). */
export async function float32Body(request: Request, maxBytes: number): Promise<Float32Array> {
  const body = await request.arrayBuffer();
  if (body.byteLength % 4 !== 0 || body.byteLength > maxBytes) {
    throw new Error(`body must be Float32 samples, at most ${maxBytes} bytes`);
  }
  return new Float32Array(body);
}

/** vad-worker.ts, GET /clock: how workerd's clock behaves here. */
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

/** vad-worker.ts, POST /vad: one clip, fresh VAD state. */
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

/** vad-worker.ts, POST /opus: an Ogg/Opus stream through the session's demuxer, decoder and resampler. */
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

/** whisper-worker.ts, POST /load: Silero VAD, then the Whisper models from the MODELS bucket. */
export interface LoadReply {
  /** loadSilero(), ms. */
  vadMs: number;
  /** loadWhisper() + createWhisperModel(): R2 reads, SHA-256 checks, ORT session creation, ms. */
  whisperMs: number;
  /** ORT's WebAssembly heap, bytes: before anything, after Silero, after Whisper. */
  heapBeforeBytes: number | null;
  heapAfterVadBytes: number | null;
  heapAfterLoadBytes: number | null;
  /**
   * The vocabulary projection kernel's own WebAssembly memory (the decoder's table, outside ORT's
   * heap: src/stt/whisper/projection.ts), bytes; fixed from load on.
   */
  projectionBytes: number;
}

/** whisper-worker.ts, POST /read-models: R2 reads + SHA-256 of every manifest object. */
export interface ReadReply {
  ms: number;
  bytes: number;
  objects: number;
}

/** whisper-worker.ts, POST /transcribe: one utterance (Float32 samples at 16 kHz). */
export interface TranscribeReply {
  audioSeconds: number;
  /** transcribe() wall time, ms, between two I/O boundaries (correct even on a frozen clock). */
  ms: number;
  /** Its parts as transcribe() reports them (read 0 where workerd freezes the clock). */
  melMs: number;
  encoderMs: number;
  decoderMs: number;
  decoderSteps: number;
  text: string;
  /** ORT's heap after this utterance: it never shrinks, so also the peak so far. */
  heapBytes: number | null;
}
