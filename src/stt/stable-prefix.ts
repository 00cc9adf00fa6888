/**
 * The stable prefix of an utterance's interims: a word is settled once two consecutive hypotheses
 * agree on it and everything before it; later interims of the utterance keep settled words as
 * written and only rewrite the tail, so the beginning of a caption does not flicker. A settled
 * word keeps its spelling (case, punctuation) but takes the new hypothesis's times, so the words of
 * one interim never overlap (each hypothesis times its words in order from the same audio).
 */
import type { Transcript, TranscriptWord } from "./transcriber";

/** Length of the common prefix of two word lists, compared by their plain form. */
function agreed(a: readonly TranscriptWord[], b: readonly TranscriptWord[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n]?.word === b[n]?.word) n++;
  return n;
}

/**
 * `text` with each word of `from` written as the same word of `to`, keeping whatever separates
 * them in `text` (a space, or nothing between Chinese or Japanese words). Words are looked up in
 * order only as far as the last one respelled; `text` itself when a word is not found (a word's
 * written form need not appear verbatim: " - No." is the word "-No.").
 */
function respell(
  text: string,
  from: readonly TranscriptWord[],
  to: readonly TranscriptWord[],
): string {
  const last = from.findLastIndex((word, i) => word.punctuatedWord !== to[i]?.punctuatedWord);
  let out = "";
  let at = 0;
  for (const [i, word] of from.slice(0, last + 1).entries()) {
    const found = text.indexOf(word.punctuatedWord, at);
    if (found < 0) return text;
    out += text.slice(at, found) + (to[i]?.punctuatedWord ?? word.punctuatedWord);
    at = found + word.punctuatedWord.length;
  }
  return out + text.slice(at);
}

/** One utterance's settled words and its latest hypothesis; `reset` starts the next utterance. */
export class StablePrefix {
  #settled: TranscriptWord[] = [];
  #previous: TranscriptWord[] = [];

  /** Keeps settled words as written; settles what two hypotheses in a row agree on. */
  stabilise(hypothesis: Transcript): Transcript {
    const words = hypothesis.words;
    const settled = this.#settled;
    const keep = agreed(settled, words) === settled.length;
    const combined = keep
      ? words.map((word, i) => {
          const spelled = settled[i]?.punctuatedWord;
          return spelled === undefined ? word : { ...word, punctuatedWord: spelled };
        })
      : words;
    const nowAgreed = agreed(this.#previous, combined);
    if (nowAgreed > settled.length) this.#settled = combined.slice(0, nowAgreed);
    this.#previous = combined;
    return { ...hypothesis, words: combined, text: respell(hypothesis.text, words, combined) };
  }

  /** Forgets the utterance's words: the next hypothesis starts a new utterance. */
  reset(): void {
    this.#settled = [];
    this.#previous = [];
  }
}
