/**
 * A deterministic stand-in for Whisper, used by protocol and isolation tests (selected with
 * EARSHOT_TRANSCRIBER=fake). Its words are a fingerprint of exactly the audio it was fed: how many
 * samples, their first sample's position, and a hash of their values. Two sessions that were fed
 * the same audio at the same offsets produce the same transcripts; any mixing of sessions' audio
 * changes them.
 */
import {
  type FlushReason,
  type ModelInfo,
  TRANSCRIBER_SAMPLE_RATE,
  type Transcriber,
  type TranscriberContext,
  type TranscriberSession,
  type Transcript,
} from "./transcriber";

/** Interims are emitted for every this many fed samples (0.5 s at 16 kHz). */
const FAKE_INTERIM_EVERY_SAMPLES = 8_000;

export const FAKE_MODEL: ModelInfo = {
  name: "fake",
  version: "1",
  arch: "fingerprint",
  uuid: "00000000-0000-4000-8000-00000000fa4e",
};

/** FNV-1a over the samples quantised to 16 bits: exact, and cheap enough for tests. */
export function fingerprint(samples: Float32Array, seed = 0x811c9dc5): number {
  let hash = seed >>> 0;
  for (const sample of samples) {
    const q = Math.max(-32768, Math.min(32767, Math.round(sample * 32768))) & 0xffff;
    hash = Math.imul(hash ^ (q & 0xff), 0x01000193) >>> 0;
    hash = Math.imul(hash ^ (q >>> 8), 0x01000193) >>> 0;
  }
  return hash;
}

class FakeSession implements TranscriberSession {
  #start: number | null = null;
  #samples = 0;
  #hash = 0x811c9dc5;
  #sinceInterim = 0;

  constructor(private readonly context: TranscriberContext) {}

  feed(samples: Float32Array, startSample: number): void {
    if (this.#start === null) this.#start = startSample;
    else if (startSample !== this.#start + this.#samples) {
      throw new Error(`fake transcriber: gap in utterance audio at sample ${startSample}`);
    }
    this.#samples += samples.length;
    this.#hash = fingerprint(samples, this.#hash);
    this.#sinceInterim += samples.length;
    if (this.context.interimResults && this.#sinceInterim >= FAKE_INTERIM_EVERY_SAMPLES) {
      this.#sinceInterim = 0;
      this.context.emit(this.#transcript(false, false, false));
    }
  }

  async flush(reason: FlushReason, atSample: number): Promise<void> {
    const fromFinalize = reason === "finalize" || reason === "close";
    if (this.#start !== null || fromFinalize) {
      this.context.emit(this.#transcript(true, reason === "endpoint", fromFinalize, atSample));
    }
    this.#start = null;
    this.#samples = 0;
    this.#hash = 0x811c9dc5;
    this.#sinceInterim = 0;
  }

  async afterFinals(): Promise<void> {
    // Finals are emitted synchronously by flush: nothing is ever pending.
  }

  close(): void {
    this.#start = null;
  }

  #transcript(
    isFinal: boolean,
    speechFinal: boolean,
    fromFinalize: boolean,
    atSample = 0,
  ): Transcript {
    const start = (this.#start ?? atSample) / TRANSCRIBER_SAMPLE_RATE;
    const end = ((this.#start ?? atSample) + this.#samples) / TRANSCRIBER_SAMPLE_RATE;
    if (this.#start === null) {
      return { start, end, text: "", confidence: 0, words: [], isFinal, speechFinal, fromFinalize };
    }
    const tokens = [`at${this.#start}`, `n${this.#samples}`, `h${this.#hash.toString(16)}`];
    const span = (end - start) / tokens.length;
    return {
      start,
      end,
      text: tokens.join(" "),
      confidence: 1,
      words: tokens.map((word, i) => ({
        word,
        punctuatedWord: word,
        start: start + i * span,
        end: start + (i + 1) * span,
        confidence: 1,
      })),
      isFinal,
      speechFinal,
      fromFinalize,
    };
  }
}

export const fakeTranscriber: Transcriber = {
  model: FAKE_MODEL,
  open: (context) => new FakeSession(context),
};
