/**
 * What tools/load/bench/whisper-worker.ts answers (read by tools/load/bench/whisper-memory.ts) and
 * what tools/load/bench/whisper-node.ts takes and prints (read by tools/load/bench/whisper.ts).
 * Types only: imported by code that runs in workerd and by code that runs in Node, so the section's
 * files need not import the baseline's.
 */

/** POST /load: Silero VAD, then the Whisper models from the MODELS bucket. */
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

/** GET /read-models: R2 reads + SHA-256 of every manifest object, as a load does them. */
export interface ReadReply {
  ms: number;
  bytes: number;
  objects: number;
}

/** POST /transcribe: one utterance (Float32 samples at 16 kHz). */
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

/** tools/load/bench/whisper-node.ts's input (a JSON file named on its command line). */
export interface NodeBaselineJob {
  /** Folder with onnx/encoder_model_quantized.onnx, onnx/decoder_model_merged_quantized.onnx and
   * the tokenizer JSON files (models/stock after `npm run models`). */
  stockDir: string;
  clips: { id: string; file: string }[];
  language: string;
}

export interface NodeBaselineClip {
  id: string;
  audioSeconds: number;
  /** transcribe() wall time, ms (log-mel + encoder + decoding). */
  ms: number;
  text: string;
  /** Words Whisper produced, and those left after the no-speech rule (what a service sends). */
  rawWords: number;
  words: number;
  likelyNoSpeech: boolean;
}

export interface NodeBaseline {
  runtime: string;
  /** Both sessions created (files already read), ms. */
  loadMs: number;
  heapAfterLoadBytes: number;
  heapPeakBytes: number;
  /** process.memoryUsage() at the end: Node's whole process, for scale. */
  rssBytes: number;
  maxRssBytes: number;
  clips: NodeBaselineClip[];
}
