/**
 * The seam between a session and speech recognition. A `Transcriber` is shared by every session in
 * an isolate and owns nothing per session; `open` creates the per-session object that receives the
 * session's utterance audio (`feed`), ends an utterance (`flush`) and is released (`close`).
 * Transcripts come back through the `emit` callback the session passed in, so a transcriber can
 * never reach another session's socket.
 */
import type { Logger } from "../runtime/log";

/**
 * Scripts written without spaces between words (Chinese, Japanese, Thai and their neighbours): a
 * transcript's text is not its words joined by spaces there.
 */
export const UNSPACED_SCRIPT =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;

/** Audio handed to a transcriber: 16 kHz mono floats in [-1, 1). */
export const TRANSCRIBER_SAMPLE_RATE = 16_000;

export interface ModelInfo {
  name: string;
  version: string;
  arch: string;
  /** Stable id of the model files (Deepgram's `model_uuid`). */
  uuid: string;
}

export interface TranscriptWord {
  /** Lowercase, without punctuation (Deepgram's `word`). */
  word: string;
  /** As written, with punctuation and case (Deepgram's `punctuated_word`). */
  punctuatedWord: string;
  /** Seconds of session audio. */
  start: number;
  end: number;
  confidence: number;
}

export interface Transcript {
  /** Seconds of session audio covered by this result. */
  start: number;
  end: number;
  text: string;
  confidence: number;
  words: TranscriptWord[];
  /** false for an interim (it will be replaced), true for a final. */
  isFinal: boolean;
  /** true when an endpoint (silence) ended the utterance. */
  speechFinal: boolean;
  /** true when the final answers a client's Finalize or CloseStream. */
  fromFinalize: boolean;
}

/**
 * Why an utterance ends: the VAD heard enough silence (`endpoint`), the client asked (`finalize`,
 * `close`), it grew past the longest utterance a final may cover (`max-length`), a long one
 * paused and speech came back (`pause`, see `endAtPause`), or, with endpointing off,
 * `utterance_end_ms` passed without a speech frame (`utterance-end`).
 * After `max-length` and `pause` the next audio continues as a new utterance.
 */
export type FlushReason =
  | "endpoint"
  | "finalize"
  | "close"
  | "max-length"
  | "pause"
  | "utterance-end";

export interface TranscriberContext {
  sessionId: string;
  accountId: string;
  /** Whisper language code, or "multi" to detect. */
  language: string;
  interimResults: boolean;
  /**
   * Words and phrases to expect (the session's `keyterm` and `keywords`, in that order); empty
   * for none. A transcriber that cannot use them ignores them.
   */
  keyterms: readonly string[];
  log: Logger;
  /** Sends a result to this session's client (and stores finals). */
  emit(transcript: Transcript): void;
}

export interface TranscriberSession {
  /**
   * Appends audio to the current utterance. `startSample` is the position of `samples[0]` in the
   * session's 16 kHz timeline; chunks of one utterance are contiguous. `speechProbability`, when
   * given, is the VAD's probability that the chunk (one VAD frame) is speech: evidence for the
   * transcriber's own no-speech decision.
   */
  feed(samples: Float32Array, startSample: number, speechProbability?: number): void;
  /**
   * Ends the current utterance and emits its final. For `finalize` and `close` a final is emitted
   * even when no audio is pending (an empty transcript, placed at `atSample`: the session's audio
   * position at the flush), so a client waiting for its flush always gets an answer. Resolves
   * once the final has been emitted.
   */
  flush(reason: FlushReason, atSample: number): Promise<void>;
  /**
   * Optional: the VAD heard the first silence after speech, so the utterance fed so far may be
   * complete. A transcriber may start that utterance's final now instead of at the flush. If
   * nothing but silence is fed between this call and the flush, the final may cover exactly the
   * audio fed up to this call (the silence after it is left out); otherwise `dropSpeculation` is
   * called first.
   */
  speculate?(): void;
  /** Optional: audio other than silence followed `speculate`: that early final covers too little. */
  dropSpeculation?(): void;
  /**
   * Optional: the silence after `speculate` went on (EARLY_FINAL_DUE_FRAMES frames): its early
   * final is likely the utterance's, and may now stop other sessions' interims for the isolate.
   */
  speculationDue?(): void;
  /**
   * Optional: a long utterance ends at its pause. Its final covers the frames fed to it before
   * `end` (VAD frames, 0-based), frames `end` .. `rest` - 1 are the pause's silence, left out, and
   * the ones from `rest` on continue as the next utterance. Returns what `flush` would, or null
   * when it cannot cut there (the utterance then goes on whole). src/session/early-finals.ts says
   * when.
   */
  endAtPause?(end: number, rest: number): Promise<void> | null;
  /**
   * Optional: true when `endAtPause` takes its cuts (early finals on). Past the soft cut
   * (MAX_UTTERANCE_SOFT_SECONDS) a long utterance then ends at any pause once speech comes back
   * (early-finals.ts), so one whose pause is its end keeps its words in its endpoint's final;
   * without it the pipeline cuts at the first quiet frame past the soft cut.
   */
  readonly endsAtPauses?: boolean;
  /**
   * Resolves once every final flushed so far has been emitted (or has failed; never rejects).
   * Events that must follow a final, such as UtteranceEnd, wait on it.
   */
  afterFinals(): Promise<void>;
  /**
   * Optional: resolves when the transcriber can take the next utterance. The pipeline awaits it
   * after each utterance it ends, so a client that ends utterances faster than they are
   * transcribed (sending faster than real time) waits with its audio queued in the session,
   * bounded by MAX_QUEUED_AUDIO_SECONDS, instead of piling finals up to the scheduler's cap.
   */
  ready?(): Promise<void>;
  /** Releases per-session resources; pending interims are dropped. */
  close(): void;
}

export interface Transcriber {
  readonly model: ModelInfo;
  /**
   * Loads what the transcriber needs (models), once per isolate; the session object awaits it
   * before accepting a socket, so a missing or corrupt model is a 503 at the handshake. A failed
   * load is not remembered: the next session tries again.
   */
  prepare?(): Promise<void>;
  open(context: TranscriberContext): TranscriberSession;
}
