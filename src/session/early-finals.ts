/**
 * When the pipeline tells its transcriber that an utterance may be complete, from each VAD frame's
 * speech probability inside an utterance. Pure: no audio, no models (test/early-finals.test.ts).
 *
 * The first silence frame after speech may be the end of the utterance: the transcriber can start
 * its final now (`speculate`) rather than after the endpointing wait or at the client's Finalize.
 * Any frame that is not silence (speech, or between the thresholds) withdraws that
 * (`dropSpeculation`): the early final would leave out audio that may hold words.
 *
 * Except after a long utterance's pause: an utterance whose speech comes back after a pause ends
 * at that pause when its last speech frame before it came at least SPLIT_AT_PAUSE_SECONDS in. Its early final, started at
 * the pause's first silence frame, is kept as its final (not speech-final) instead of thrown
 * away, and the final after the speech's real end covers only what came after the pause
 * (`splitAtSpeculation`). Long utterances are the slowest finals (the encoder costs ~27 ms per
 * second of audio): this bounds a final's audio by the speech since the last pause, and the
 * decode it keeps had already run. The speech must be back for SPLIT_CONFIRM_FRAMES speech frames
 * (256 ms) first; until then the early final is held, and a blip after the real end (a breath, a
 * click) drops it as before instead of ending the utterance in front of it. Measured in
 * docs/decoder-profile.md ("A long utterance ends at its pause").
 */
import type { TranscriberSession } from "../stt/transcriber";
import { VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE } from "../vad/silero";
import type { VadOptions } from "../vad/vad-machine";

/**
 * 3 s. At 5 s no dev clip ended early in the accuracy suite, and the bench's long clips gained
 * little; at 3 s the parts read alone cost Whisper some context (docs/accuracy.md: one word more
 * at endpointing 300 and 500 without continuation, one to two fewer with it).
 */
export const SPLIT_AT_PAUSE_SECONDS = 3;
const SPLIT_AT_PAUSE_FRAMES = Math.floor(
  SPLIT_AT_PAUSE_SECONDS / (VAD_FRAME_SAMPLES / VAD_SAMPLE_RATE),
);
export const SPLIT_CONFIRM_FRAMES = 8;

export interface Split {
  /** The split's final, as `flush` returns it. */
  ended: Promise<void>;
  /** Frames of the utterance that ended (the next one holds the rest). */
  frames: number;
}

type Transcriber = Pick<TranscriberSession, "speculate" | "dropSpeculation" | "splitAtSpeculation">;

export class EarlyFinals {
  /** `speculate` was called at the first silence frame of this silence run. */
  #speculating = false;
  /** The utterance's frame count when it was. */
  #at = 0;
  /** The utterance's frame count at its latest speech frame. */
  #lastSpeech = 0;
  /** Whether the speech before this silence run was long enough to end at it. */
  #long = false;
  /**
   * Speech frames since audio other than silence followed a long utterance's speculation, which
   * is held, not dropped, until SPLIT_CONFIRM_FRAMES of them; null when none is held.
   */
  #held: number | null = null;

  constructor(
    private readonly transcriber: Transcriber,
    private readonly thresholds: Pick<VadOptions, "positiveThreshold" | "negativeThreshold">,
  ) {}

  /**
   * A frame of the utterance, `frames` long with it, was fed. Returns the split when it ended
   * the utterance at its pause.
   */
  frame(probability: number, frames: number): Split | null {
    if (probability >= this.thresholds.positiveThreshold) this.#lastSpeech = frames;
    if (probability < this.thresholds.negativeThreshold) {
      // A held early final left out what came between: the next one starts here.
      if (this.#held !== null) this.drop();
      if (!this.#speculating) {
        this.#speculating = true;
        this.#at = frames;
        this.#long = this.#lastSpeech >= SPLIT_AT_PAUSE_FRAMES;
        this.transcriber.speculate?.();
      }
      return null;
    }
    if (!this.#speculating) return null;
    if (!this.#long) {
      this.drop();
      return null;
    }
    this.#held = (this.#held ?? 0) + (probability >= this.thresholds.positiveThreshold ? 1 : 0);
    if (this.#held < SPLIT_CONFIRM_FRAMES) return null;
    const ended = this.transcriber.splitAtSpeculation?.();
    if (!ended) {
      this.drop();
      return null;
    }
    this.#speculating = false;
    this.#held = null;
    this.#lastSpeech = 0;
    return { ended, frames: this.#at };
  }

  /** Audio that may hold words follows: the early final, if any, covers too little. */
  drop(): void {
    this.#held = null;
    if (!this.#speculating) return;
    this.#speculating = false;
    this.transcriber.dropSpeculation?.();
  }

  /**
   * The utterance ends now (flushed): an early final on silence alone is the transcriber's to
   * use; a held one left out what followed it.
   */
  ending(): void {
    if (this.#held !== null) this.drop();
    this.#speculating = false;
    this.#lastSpeech = 0;
  }
}
