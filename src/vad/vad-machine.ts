/**
 * Utterance detection as a pure state machine: Silero's per-frame speech probabilities in, typed
 * events out. No model, no audio, no clock: a frame index is the only notion of time, so the
 * rules below are unit-tested with plain number sequences (test/vad-machine.test.ts).
 *
 * Frames are Silero v5's 512 samples at 16 kHz = 32 ms. Options are in milliseconds and are
 * converted to frames once, in `msToFrames` (rounding up, at least one frame).
 *
 * Rules, for the frame with index f (frames pushed before it) and probability p:
 * - p ≥ positiveThreshold is a speech frame; p < negativeThreshold is a silence frame; anything
 *   between is neither (hysteresis: it neither ends an utterance nor resets a silence run).
 * - Idle: a speech frame opens a tentative utterance starting at f.
 * - Tentative: it is confirmed by the frame that brings its count of speech frames to
 *   minSpeechFrames within the last confirmFrames = 2 × minSpeechFrames frames (speech must make
 *   up at least half of the stretch that confirms it, so scattered frames of noise do not add
 *   up): `speech-start` {startFrame: its first speech frame, confirmedAtFrame: f}. The VAD only
 *   proposes: whether an utterance held words is decided with Whisper's evidence
 *   (speech-evidence.ts), because Silero scores some music as high as quiet speech.
 *   Silence frames count in a run that a speech frame resets; when the run reaches
 *   misfireFrames (misfireMs) first, the start was a misfire and is dropped without any
 *   event. Bounding the gap keeps a lone click followed by a long pause from becoming the start
 *   of the next utterance (whose `SpeechStarted` timestamp would then be the click's). The bound
 *   is its own, not minSpeech's and not minSilence's: a short phrase said in bursts ("ask" … "not"
 *   through the browser: 5 speech frames, 3, a 10-frame pause, then 8) must survive its pauses
 *   to be confirmed, whatever minSpeech is, and endpointing says when a confirmed utterance
 *   ends, not whether a start is real. (It was min(minSpeech, minSilence): at endpointing=10 a
 *   start died at its first silence frame, so a short word followed by a 32-ms dip never reached
 *   Whisper: "ask not" of the JFK clip, the second "five" of "five five".)
 * - Speaking (confirmed): speech frames reset the silence run; when it reaches minSilenceFrames,
 *   `speech-end` {endFrame: the frame after the last speech frame (exclusive), forced: false},
 *   back to idle. With minSilenceMs = false only `forceEnd` ends an utterance.
 * - `utterance-end` (when utteranceEndMs is set) is about elapsed time, not silence frames: it
 *   fires once, on the first frame at which utteranceEndFrames frames have passed since
 *   lastSpeechEndFrame, the exclusive end of the last speech frame of a confirmed utterance
 *   (f + 1 − lastSpeechEndFrame ≥ utteranceEndFrames). It is re-armed only by speech frames of
 *   a confirmed utterance, so a misfire neither delays nor repeats it. It may come after the
 *   `speech-end` (same push: speech-end first), or while an utterance is still open when
 *   endpointing is off or the probabilities hover between the thresholds: Deepgram's
 *   UtteranceEnd exists for exactly those cases.
 * - `forceEnd` (Finalize / CloseStream): a confirmed utterance ends now with
 *   {endFrame: framesSeen, forced: true}, keeping trailing frames that had not yet been judged
 *   silence; a tentative one is left to the frames that follow (they confirm it or call it a
 *   misfire: `tentativeStart` says where it began); idle emits nothing. `utterance-end` stays
 *   armed.
 */

/** Silero v5's frame: 512 samples at 16 kHz. */
export const VAD_FRAME_MS = 32;

/**
 * 8 silence frames (256 ms): the shortest silence that is a pause between phrases. Silent pauses
 * under ~250 ms are mostly articulation (stop closures, gaps inside a phrase), the threshold pause
 * studies have used since Goldman-Eisler. On the dev clips the shorter ones were JFK's 6-frame gap
 * in "ask | not", psx_librivox_0870's 2-frame "how | much" and sb_spk1_snt1's "hurt | the
 * small dog", all inside a phrase. Used where an utterance may end at a pause: the endpointing
 * floor (session-config.ts `vadOptionsFor`) and a long utterance's split (early-finals.ts).
 */
export const PHRASE_PAUSE_FRAMES = 8;

/**
 * Silence Silero hears before a session's first frame: 320 ms (10 frames) of digital silence.
 *
 * Silero's LSTM starts from zeros, which is not the state silence leaves it in, and a stream that
 * begins in speech (a microphone opened mid-word, a clip without lead-in) keeps it miscalibrated
 * for seconds. Measured on JFK (docs/accuracy.md): the quiet "ask not" 3.3 s into the clip peaks
 * at 0.82 as is but at 0.40–0.55 with its first 120–128 ms cut, and the VAD finds it only when
 * the stream starts early enough; after 320 ms of silence it is found at every cut tried (0, 20,
 * 52, 128, 200, 300 ms). 640 ms found the same utterances as 320 ms on every dev and short clip.
 */
export const VAD_PRIMING_FRAMES = 10;

export interface VadOptions {
  /** A frame at or above is speech (0..1). */
  positiveThreshold: number;
  /** Below this a frame is silence (0..positiveThreshold). */
  negativeThreshold: number;
  /** Speech shorter than this is a misfire (no events at all). */
  minSpeechMs: number;
  /** Silence that drops a tentative (not yet confirmed) start as a misfire. */
  misfireMs: number;
  /** Silence that ends an utterance (the protocol's `endpointing`); false: only forceEnd. */
  minSilenceMs: number | false;
  /** Audio kept before the first speech frame (callers apply it, see `padFrames`). */
  speechPadMs: number;
  /** Time after the last speech frame before "utterance-end"; null: never. */
  utteranceEndMs: number | null;
}

/**
 * Defaults for Silero v5:
 * - thresholds 0.5 / 0.35: Silero's own `threshold` default and its `neg_threshold`
 *   (threshold − 0.15) in `get_speech_timestamps`.
 * - minSpeechMs 250 (8 frames = 256 ms): Silero's own `min_speech_duration_ms`, so that a short
 *   answer said alone reaches Whisper. A quiet phrase holds fewer speech frames than its length
 *   suggests: JFK's "ask not" through the browser demo (Chromium's fake microphone and
 *   the page's resampler) holds 8 speech frames in its first 12, and at 400 ms (13 frames, as
 *   ricky0123/vad ships, Earshot's default until 2026-12) the start was confirmed at 15 of 16
 *   stream offsets: the demo lost the phrase about one run in sixteen. The VAD does not tell
 *   such speech from music: at 400 ms the instrumental ns_librosa_vibeace_10_25s.wav already
 *   opened an utterance at 7 of 8 stream offsets (at 250, 8 of 8), with 15 speech frames in 32
 *   once Silero's state is primed with silence. Whisper and the VAD together decide whether an
 *   utterance held words (speech-evidence.ts `noSpeechVerdict`; the no-speech clips give no
 *   words through a session, test/whisper-session-accuracy.test.ts). On every other dev, short
 *   and no-speech clip, 250 and 400 find the same utterances at the stream offsets tried (0, 8, 16
 *   and 24 ms; the no-speech clips every 4 ms); 200 opens ns_leopard_empty.wav's noise.
 * - misfireMs 400 (13 frames = 416 ms): longer than the pauses inside a short phrase (JFK's
 *   "ask | not" through the browser: up to 10 frames below 0.35), short enough that a click
 *   followed by a pause does not become the next utterance's start.
 * - minSilenceMs 500 (a session sets it from `endpointing`, whose default is the same,
 *   DEFAULT_ENDPOINTING_MS in src/protocol/option-schema.ts, never under MIN_ENDPOINTING_MS):
 *   speakers pause 200–400 ms inside a sentence (breaths, commas); ending an utterance there would
 *   hand Whisper sentence fragments without context. 500 ms ends a turn promptly and is the
 *   common endpointing setting of voice agents.
 * - speechPadMs 300: onsets (fricatives, plosive bursts) are quiet and Silero rises a frame or
 *   two late; Whisper also transcribes better with a little lead-in. 10 frames = 320 ms.
 * - utteranceEndMs null: Deepgram sends UtteranceEnd only when `utterance_end_ms` is given.
 */
export const DEFAULT_VAD_OPTIONS: VadOptions = Object.freeze({
  positiveThreshold: 0.5,
  negativeThreshold: 0.35,
  minSpeechMs: 250,
  misfireMs: 400,
  minSilenceMs: 500,
  speechPadMs: 300,
  utteranceEndMs: null,
});

export type VadEvent =
  | { type: "speech-start"; startFrame: number; confirmedAtFrame: number }
  | { type: "speech-end"; startFrame: number; endFrame: number; forced: boolean }
  | { type: "utterance-end"; lastSpeechEndFrame: number };

/** The one ms → frames conversion: rounded up, at least one frame (10 ms → 1, 500 ms → 16). */
export function msToFrames(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`duration must be a finite number of ms ≥ 0, got ${ms}`);
  }
  return Math.max(1, Math.ceil(ms / VAD_FRAME_MS));
}

type Phase = "idle" | "tentative" | "speaking";

export class VadMachine {
  /** speechPadMs in frames. */
  readonly padFrames: number;
  readonly minSpeechFrames: number;
  /** The window in which minSpeechFrames speech frames confirm a start: 2 × minSpeechFrames. */
  readonly confirmFrames: number;
  /** Silence run that ends a confirmed utterance; null when only forceEnd ends one. */
  readonly minSilenceFrames: number | null;
  /** Silence run that drops a tentative start: misfireMs in frames. */
  readonly misfireFrames: number;
  readonly utteranceEndFrames: number | null;
  readonly #positive: number;
  readonly #negative: number;

  #frames = 0;
  #phase: Phase = "idle";
  /** First speech frame of the current (tentative or confirmed) utterance. */
  #startFrame = 0;
  /** Indices of the tentative start's latest speech frames, at most minSpeechFrames of them. */
  #speechFrames: number[] = [];
  /** Exclusive end of the current utterance's last speech frame. */
  #speechEnd = 0;
  /** Silence frames since the last speech frame. */
  #silenceRun = 0;
  /** Exclusive end of the last speech frame of a confirmed utterance, for utterance-end. */
  #confirmedSpeechEnd = 0;
  #utteranceEndArmed = false;
  /** The next speech frame confirms a start at once (`forceEnd`'s `confirmNextStart`). */
  #confirmNext = false;

  constructor(options: VadOptions) {
    const { positiveThreshold: positive, negativeThreshold: negative } = options;
    if (!(positive >= 0 && positive <= 1 && negative >= 0 && negative <= positive)) {
      throw new RangeError(
        `thresholds must satisfy 0 ≤ negative ≤ positive ≤ 1, got ${negative} and ${positive}`,
      );
    }
    this.#positive = positive;
    this.#negative = negative;
    this.padFrames = msToFrames(options.speechPadMs);
    this.minSpeechFrames = msToFrames(options.minSpeechMs);
    this.minSilenceFrames =
      options.minSilenceMs === false ? null : msToFrames(options.minSilenceMs);
    this.misfireFrames = msToFrames(options.misfireMs);
    this.confirmFrames = 2 * this.minSpeechFrames;
    this.utteranceEndFrames =
      options.utteranceEndMs === null ? null : msToFrames(options.utteranceEndMs);
  }

  /** Inside a confirmed utterance. */
  get speaking(): boolean {
    return this.#phase === "speaking";
  }

  get framesSeen(): number {
    return this.#frames;
  }

  /** Feeds the next frame's speech probability (frame index = how many were pushed before). */
  push(probability: number): VadEvent[] {
    if (!(probability >= 0 && probability <= 1)) {
      throw new RangeError(`speech probability must be in [0, 1], got ${probability}`);
    }
    const frame = this.#frames++;
    const isSpeech = probability >= this.#positive;
    const isSilence = probability < this.#negative;
    const events: VadEvent[] = [];

    if (isSpeech) {
      const atOnce = this.#phase === "idle" && this.#confirmNext;
      if (this.#phase === "idle") {
        this.#phase = "tentative";
        this.#startFrame = frame;
        this.#speechFrames = [];
        this.#confirmNext = false;
      }
      this.#speechEnd = frame + 1;
      this.#silenceRun = 0;
      if (this.#phase === "tentative") {
        this.#speechFrames.push(frame);
        if (this.#speechFrames.length > this.minSpeechFrames) this.#speechFrames.shift();
        const oldest = this.#speechFrames[0] ?? frame;
        if (
          atOnce ||
          (this.#speechFrames.length >= this.minSpeechFrames && frame - oldest < this.confirmFrames)
        ) {
          this.#phase = "speaking";
          events.push({
            type: "speech-start",
            startFrame: this.#startFrame,
            confirmedAtFrame: frame,
          });
        }
      }
      if (this.#phase === "speaking") {
        this.#confirmedSpeechEnd = this.#speechEnd;
        this.#utteranceEndArmed = true;
      }
    } else if (isSilence && this.#phase !== "idle") {
      this.#silenceRun += 1;
      if (this.#phase === "tentative" && this.#silenceRun >= this.misfireFrames) {
        this.#phase = "idle";
      } else if (
        this.#phase === "speaking" &&
        this.minSilenceFrames !== null &&
        this.#silenceRun >= this.minSilenceFrames
      ) {
        events.push(this.#end(this.#speechEnd, false));
      }
    }

    if (
      this.#utteranceEndArmed &&
      this.utteranceEndFrames !== null &&
      frame + 1 - this.#confirmedSpeechEnd >= this.utteranceEndFrames
    ) {
      this.#utteranceEndArmed = false;
      events.push({ type: "utterance-end", lastSpeechEndFrame: this.#confirmedSpeechEnd });
    }
    return events;
  }

  /** The first speech frame of a start not yet confirmed, or null when there is none. */
  get tentativeStart(): number | null {
    return this.#phase === "tentative" ? this.#startFrame : null;
  }

  /**
   * Finalize / CloseStream: ends an utterance in progress now, at framesSeen. A start not yet
   * confirmed is no utterance yet and is left to the frames that follow, which confirm it or call
   * it a misfire: a phrase begun just before a client's Finalize (its own turn detection a beat
   * late) keeps its first syllables. `confirmNextStart`: the next speech frame, however short
   * its run, starts an utterance at once (nothing it says is taken for a misfire).
   */
  forceEnd(confirmNextStart = false): VadEvent[] {
    if (this.#phase !== "speaking") return [];
    this.#confirmNext = confirmNextStart;
    return [this.#end(this.#frames, true)];
  }

  #end(endFrame: number, forced: boolean): VadEvent {
    this.#phase = "idle";
    return { type: "speech-end", startFrame: this.#startFrame, endFrame, forced };
  }
}
