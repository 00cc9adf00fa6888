/**
 * The stable prefix of an utterance's interims: a word is settled once two consecutive hypotheses
 * agree on it and everything before it; later interims of the utterance keep settled words as they
 * are and only rewrite the tail, so the beginning of a caption does not flicker.
 */
import type { Transcript, TranscriptWord } from "./transcriber";

/** Length of the common prefix of two word lists, compared by their plain form. */
function agreed(a: readonly TranscriptWord[], b: readonly TranscriptWord[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n]?.word === b[n]?.word) n++;
  return n;
}

/** One utterance's settled words and its latest hypothesis; `reset` starts the next utterance. */
export class StablePrefix {
  #settled: TranscriptWord[] = [];
  #previous: TranscriptWord[] = [];

  /** Keeps settled words as they were; settles what two hypotheses in a row agree on. */
  stabilise(hypothesis: Transcript): Transcript {
    const words = hypothesis.words;
    const keep = agreed(this.#settled, words) === this.#settled.length;
    const tail = keep ? words.slice(this.#settled.length) : words;
    const combined = keep ? [...this.#settled, ...tail] : words;
    const nowAgreed = agreed(this.#previous, combined);
    if (nowAgreed > this.#settled.length) this.#settled = combined.slice(0, nowAgreed);
    this.#previous = combined;
    return {
      ...hypothesis,
      words: combined,
      text: combined.map((w) => w.punctuatedWord).join(" "),
    };
  }

  /** Forgets the utterance's words: the next hypothesis starts a new utterance. */
  reset(): void {
    this.#settled = [];
    this.#previous = [];
  }
}
