/**
 * The audio of one session's utterance in progress, as the pipeline feeds it: the samples, the
 * VAD's speech probability of each fed frame (the evidence toTranscript and the no-speech check
 * read), and where the utterance starts in the session's stream. `take` ends the utterance and
 * hands its audio over; a cut at a pause (`endAtPause`) keeps what followed the pause as the start
 * of the next one.
 */
import { joinSamples } from "../audio/samples";
import { VAD_FRAME_SAMPLES } from "../vad/silero";
import { type VadEvidence, vadEvidence } from "./whisper/speech-evidence";

/** Where a long utterance ends, in frames fed to it (0-based, end exclusive). */
export interface PauseCut {
  /** The utterance's final covers its frames before this one. */
  end: number;
  /** The next utterance starts at this frame (≥ end; frames between are the pause's silence). */
  rest: number;
}

/** An ended utterance: all its audio, and the VAD evidence of its frames. */
export interface TakenUtterance {
  audio: Float32Array;
  /** Stream sample of its first sample; null when nothing was fed. */
  start: number | null;
  vad: VadEvidence | undefined;
}

export class UtteranceAudio {
  #chunks: Float32Array[] = [];
  #vad: number[] = [];
  #samples = 0;
  #start: number | null = null;

  /** Stream sample of the utterance's first sample; null until something is fed. */
  get start(): number | null {
    return this.#start;
  }

  get samples(): number {
    return this.#samples;
  }

  /** Adds `samples` (from stream sample `startSample`); returns where the utterance starts. */
  feed(samples: Float32Array, startSample: number, speechProbability?: number): number {
    this.#start ??= startSample;
    this.#chunks.push(samples);
    if (speechProbability !== undefined) this.#vad.push(speechProbability);
    this.#samples += samples.length;
    return this.#start;
  }

  /** Everything fed so far, as one array (a copy). */
  audio(): Float32Array {
    return joinSamples(...this.#chunks);
  }

  /** The evidence of every frame fed so far. */
  evidence(): VadEvidence | undefined {
    return vadEvidence(this.#vad);
  }

  /**
   * Whether `cut` can split this utterance: every fed chunk was one VAD frame with its
   * probability (a partial frame fed at close cannot be cut by frame), and the cut lies inside.
   */
  canCut({ end, rest }: PauseCut): boolean {
    const frames = this.#vad.length;
    if (this.#start === null || frames * VAD_FRAME_SAMPLES !== this.#samples) return false;
    return 0 < end && end <= rest && rest <= frames;
  }

  /**
   * Ends the utterance: returns its audio (up to the cut's end, with a cut) and starts the next
   * one empty, or with what was fed from the cut's `rest` frame on.
   */
  take(cut: PauseCut | null): TakenUtterance {
    const fed = this.audio();
    const frames = cut ? cut.end : this.#vad.length;
    const taken = {
      audio: cut ? fed.subarray(0, cut.end * VAD_FRAME_SAMPLES) : fed,
      start: this.#start,
      vad: vadEvidence(this.#vad.slice(0, frames)),
    };
    const restFrom = cut ? cut.rest * VAD_FRAME_SAMPLES : fed.length;
    const rest = { audio: fed.slice(restFrom), vad: this.#vad.slice(cut?.rest ?? frames) };
    this.#chunks = [];
    this.#vad = [];
    this.#samples = 0;
    this.#start = null;
    if (cut !== null && taken.start !== null && rest.audio.length > 0) {
      this.#chunks = [rest.audio];
      this.#vad = rest.vad;
      this.#samples = rest.audio.length;
      this.#start = taken.start + restFrom;
    }
    return taken;
  }
}
