/**
 * One session's interims (interim_results=true): the growing utterance is re-transcribed every
 * time it has grown by the interim interval. The interval adapts to load: it stretches (×1.5, up
 * to 4 s) when the isolate has work waiting and shrinks back (÷1.25, down to 1 s) when it does
 * not; an interim still waiting when a newer one is asked for is replaced (the scheduler drops
 * it); and one still in flight when the utterance's final is asked for (early or at the flush) is
 * stopped (`stop`), out of the queue or at its next turn (runtime/turns.ts): it would never be
 * shown, and the final would wait for it. A running interim also stops at a turn when any
 * session's final is waiting for the isolate (an early final once it is due: early-finals.ts).
 *
 * Stable prefix (stable-prefix.ts): a word is settled once two consecutive hypotheses agree on it
 * and everything before it; later interims of the utterance keep settled words as they are and
 * only rewrite the tail, so the beginning of a caption does not flicker. The final is transcribed
 * fresh and replaces all.
 */
import type { InferenceScheduler } from "./inference-scheduler";
import { StablePrefix } from "./stable-prefix";
import { TRANSCRIBER_SAMPLE_RATE, type TranscriberContext } from "./transcriber";
import type { VadEvidence } from "./whisper/speech-evidence";
import { toTranscript, type WhisperResult } from "./whisper-result";

/** Audio added to the utterance before the next interim, in seconds (adapts between these). */
export const INTERIM_MIN_INTERVAL_SECONDS = 1;
export const INTERIM_MAX_INTERVAL_SECONDS = 4;
/** No interim for less audio than this: too little for Whisper to say anything useful. */
export const INTERIM_MIN_AUDIO_SECONDS = 0.6;

/** Transcribes an interim: greedy, stoppable by `signal`, `onTurn` called at each turn. */
export type TranscribeInterim = (
  audio: Float32Array,
  vad: VadEvidence | undefined,
  job: { signal: AbortSignal; onTurn: () => void },
) => Promise<WhisperResult>;

export class Interims {
  #sinceInterim = 0;
  #interval = INTERIM_MIN_INTERVAL_SECONDS;
  #inFlight = false;
  /** Stops the interim in flight when the utterance's final is asked for (see the header). */
  #abort: AbortController | null = null;
  #stable = new StablePrefix();
  /** Bumped at every new utterance: an interim of an ended utterance is never emitted. */
  #utterance = 0;
  /** Interims stopped for their utterance's final; and because any session's final waited. */
  readonly counts = { stoppedForFinals: 0, yieldedToWaitingFinals: 0 };

  constructor(
    private readonly context: TranscriberContext,
    private readonly scheduler: InferenceScheduler,
    private readonly transcribe: TranscribeInterim,
  ) {}

  /**
   * The utterance grew by `added` samples to `samples`: whether an interim is due now (if so, the
   * caller takes it with `take`, and the interval starts again).
   */
  due(added: number, samples: number): boolean {
    this.#sinceInterim += added;
    const rate = TRANSCRIBER_SAMPLE_RATE;
    if (this.#inFlight) return false;
    if (samples < INTERIM_MIN_AUDIO_SECONDS * rate) return false;
    if (this.#sinceInterim < this.#interval * rate) return false;
    this.#sinceInterim = 0;
    return true;
  }

  /** The utterance ended: stop its interim, start the next utterance's count from nothing. */
  ended(): void {
    this.#utterance += 1;
    this.#sinceInterim = 0;
    this.#stable.reset();
    this.stop();
  }

  /** Stops the interim in flight, if any: a waiting one leaves the queue, a running one stops. */
  stop(): void {
    if (this.#abort === null) return;
    this.#abort.abort();
    this.#abort = null;
    this.counts.stoppedForFinals += 1;
  }

  /** Transcribes the utterance so far (`start`: its first sample on the session's timeline). */
  take(start: number, audio: Float32Array, vad: VadEvidence | undefined): void {
    this.#inFlight = true;
    const current = this.#utterance;
    const abort = new AbortController();
    this.#abort = abort;
    // Another session's final waiting behind this interim stops it at its next turn: the abort
    // is this session's own, raised in its own context from what the shared queue says.
    const yieldToFinals = () => {
      if (abort.signal.aborted || this.scheduler.finalsWaiting === 0) return;
      abort.abort();
      this.counts.yieldedToWaitingFinals += 1;
    };
    const job = this.scheduler.submit(
      this.context.sessionId,
      "interim",
      (progress) =>
        this.transcribe(audio, vad, {
          signal: abort.signal,
          onTurn: () => {
            progress();
            yieldToFinals();
          },
        }),
      abort.signal,
    );
    // Adapt the cadence to the isolate's load at the time of asking.
    this.#interval = this.scheduler.busy
      ? Math.min(INTERIM_MAX_INTERVAL_SECONDS, this.#interval * 1.5)
      : Math.max(INTERIM_MIN_INTERVAL_SECONDS, this.#interval / 1.25);
    job
      .then((outcome) => {
        if (outcome.status !== "done" || current !== this.#utterance) return;
        const flags = { isFinal: false, speechFinal: false, fromFinalize: false };
        const { log } = this.context;
        const hypothesis = toTranscript(log, outcome.value, start, audio.length, flags, vad);
        this.context.emit(this.#stable.stabilise(hypothesis));
      })
      .catch((error: unknown) => {
        if (abort.signal.aborted) return; // stopped for the final: nothing failed
        // An interim is a preview: losing one is not worth ending the session. The final of the
        // same audio will surface a persistent failure.
        this.context.log.warn("interim failed", { error });
      })
      .finally(() => {
        this.#inFlight = false;
        if (this.#abort === abort) this.#abort = null;
      });
  }
}
