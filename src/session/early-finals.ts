/**
 * When the pipeline tells its transcriber that an utterance may be complete, or that a long one
 * ends at its pause, from each VAD frame's speech probability inside an utterance. Pure: no audio,
 * no models (test/early-finals.test.ts).
 *
 * The first silence frame after speech may be the end of the utterance: the transcriber can start
 * its final now (`speculate`) rather than after the endpointing wait or at the client's Finalize.
 * Any frame that is not silence (speech, or between the thresholds) withdraws that
 * (`dropSpeculation`): the early final would leave out audio that may hold words.
 *
 * A long utterance ends at its pause (`endAtPause`): when its speech comes back after a pause of
 * at least SPLIT_MIN_PAUSE_FRAMES silence frames that followed at least SPLIT_AT_PAUSE_SECONDS of
 * speech, and stays back for SPLIT_CONFIRM_FRAMES speech frames (256 ms). The early final started
 * at the pause is then that utterance's final (it is held meanwhile, not dropped; a breath or a
 * click after the real end drops it as before instead of ending the utterance in front of it),
 * and the next utterance starts as any does, speechPadMs before the speech came back; the pause's
 * silence between the two is left out, as between utterances. Long utterances are the slowest
 * finals (the encoder costs ~27 ms per second of audio, and every token is decoded again): this
 * bounds the final after the real end by the speech since the last pause, and the part before it
 * was decoded during the pause. A pause shorter than SPLIT_MIN_PAUSE_FRAMES is a gap inside a
 * phrase: cut there, a sentence cut at "how. | much" (2 frames) lost "his" ("and is power"), and
 * the tail of a word was read again at the start of the next part ("might be. be prudently").
 * Measured in docs/decoder-profile.md ("A long utterance ends at its pause").
 *
 * Past the soft cut (`softCutFrames`, MAX_UTTERANCE_SOFT_SECONDS) any pause ends it, confirmed by
 * SOFT_CUT_CONFIRM_FRAMES speech frames: that is the soft cut, taken when speech comes back rather
 * than at the quiet frame, so an utterance whose quiet frame begins its endpoint ends there with
 * its words in its speech_final final (the pipeline leaves the soft cut to this when the
 * transcriber takes it and the endpoint is near: speech-pipeline.ts #softCutIsEarlyFinals).
 */
import type { TranscriberSession } from "../stt/transcriber";
import type { PauseCut } from "../stt/utterance-audio";
import { VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE } from "../vad/silero";
import { msToFrames, PHRASE_PAUSE_FRAMES, type VadOptions } from "../vad/vad-machine";

/**
 * 3 s. At 5 s no dev clip ended early in the accuracy suite, and the bench's long clips gained
 * little; at 3 s the parts read alone cost Whisper some context (docs/accuracy.md).
 */
export const SPLIT_AT_PAUSE_SECONDS = 3;
const SPLIT_AT_PAUSE_FRAMES = Math.floor(
  SPLIT_AT_PAUSE_SECONDS / (VAD_FRAME_SAMPLES / VAD_SAMPLE_RATE),
);
/** Speech frames that confirm the speech is back (256 ms). */
export const SPLIT_CONFIRM_FRAMES = 8;
/**
 * Past the soft cut, speech frames that confirm the speech is back (64 ms): a one-frame click
 * after the real end does not end the utterance in front of the endpoint.
 */
export const SOFT_CUT_CONFIRM_FRAMES = 2;
/** A pause between phrases (PHRASE_PAUSE_FRAMES, 256 ms, says why): shorter gaps never split. */
export const SPLIT_MIN_PAUSE_FRAMES = PHRASE_PAUSE_FRAMES;

export interface Split extends PauseCut {
  /** The ended utterance's final, as `flush` returns it. */
  ended: Promise<void>;
}

/**
 * Silence frames after which an early final is due (`speculationDue`): 2 (64 ms). Until then it
 * waits its turn without stopping other sessions' running interims (inference-scheduler.ts): a
 * one-frame dip between words, which the next frame withdraws, stopped them all.
 */
export const EARLY_FINAL_DUE_FRAMES = 2;

type Transcriber = Pick<
  TranscriberSession,
  "speculate" | "dropSpeculation" | "speculationDue" | "endAtPause"
>;

export class EarlyFinals {
  /** `speculate` was called at the first silence frame of this silence run. */
  #speculating = false;
  /** The first silence frame of the current or latest pause (0-based, fed to the utterance). */
  #pauseStart = 0;
  /** The utterance's frame count at its latest speech frame. */
  #lastSpeech = 0;
  /** Whether the speech before this silence run was long enough to end at it. */
  #long = false;
  /**
   * A pause that may end the utterance: its frames, and the speech frames since audio other than
   * silence came back after it; null when there is none.
   */
  #pending: { cut: PauseCut; speech: number; confirm: number } | null = null;
  readonly #padFrames: number;

  constructor(
    private readonly transcriber: Transcriber,
    private readonly thresholds: Pick<
      VadOptions,
      "positiveThreshold" | "negativeThreshold" | "speechPadMs"
    >,
    /** Frames past which any pause ends the utterance (the soft cut); Infinity: none. */
    private readonly softCutFrames = Number.POSITIVE_INFINITY,
  ) {
    this.#padFrames = msToFrames(thresholds.speechPadMs);
  }

  /**
   * A frame of the utterance, `frames` long with it, was fed. Returns the split when the
   * utterance ended at its pause (the caller's next utterance then starts at `rest`).
   */
  frame(probability: number, frames: number): Split | null {
    const speech = probability >= this.thresholds.positiveThreshold;
    if (speech) this.#lastSpeech = frames;
    if (probability < this.thresholds.negativeThreshold) {
      // Speech came back too briefly (a breath, a click): the held early final left out what
      // came between, and the pause may be the end after all; a new early final starts here.
      if (this.#pending !== null) this.drop();
      if (!this.#speculating) {
        this.#speculating = true;
        this.#pauseStart = frames - 1;
        this.#long = this.#lastSpeech >= SPLIT_AT_PAUSE_FRAMES;
        this.transcriber.speculate?.();
      }
      // Every frame since `speculate` was silence (anything else ends the run below).
      if (frames - this.#pauseStart === EARLY_FINAL_DUE_FRAMES) this.transcriber.speculationDue?.();
      return null;
    }
    if (this.#speculating) {
      this.#speculating = false;
      const back = frames - 1; // the first frame after the pause
      const end = this.#pauseStart + 1;
      const softCut = end >= this.softCutFrames;
      if (softCut || (this.#long && back - this.#pauseStart >= SPLIT_MIN_PAUSE_FRAMES)) {
        // Held, not dropped: it covers the frames up to the pause's first, included.
        const rest = Math.max(end, back - this.#padFrames);
        const confirm = softCut ? SOFT_CUT_CONFIRM_FRAMES : SPLIT_CONFIRM_FRAMES;
        this.#pending = { cut: { end, rest }, speech: 0, confirm };
      } else this.transcriber.dropSpeculation?.();
    }
    if (this.#pending === null) return null;
    if (speech) this.#pending.speech += 1;
    if (this.#pending.speech < this.#pending.confirm) return null;
    const { cut } = this.#pending;
    this.#pending = null;
    const ended = this.transcriber.endAtPause?.(cut.end, cut.rest);
    if (!ended) {
      this.transcriber.dropSpeculation?.();
      return null;
    }
    this.#lastSpeech = frames - cut.rest;
    return { ended, ...cut };
  }

  /** Audio that may hold words follows: an early final, held or not, covers too little. */
  drop(): void {
    if (!this.#speculating && this.#pending === null) return;
    this.#speculating = false;
    this.#pending = null;
    this.transcriber.dropSpeculation?.();
  }

  /**
   * The utterance ends now (flushed): an early final on silence alone is the transcriber's to
   * use; a held one left out what followed it.
   */
  ending(): void {
    if (this.#pending !== null) this.drop();
    this.#speculating = false;
    this.#lastSpeech = 0;
  }
}
