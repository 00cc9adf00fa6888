/**
 * Repetition guard for greedy decoding. On a window shorter than 30 s, or on noise, Whisper tiny
 * falls into loops ("thank you. thank you. thank you."); greedy decoding cannot leave them, so
 * the decoder stops at the first repeat and drops it. Two rules, on completed words compared
 * without case or punctuation, across segments:
 * - a block of 1–3 words repeated back to back (a single word three times, 2–3 words twice):
 *   keep the first copy;
 * - a 4-word sequence that was already emitted earlier: drop its second occurrence.
 * Longer repeated blocks trip the 4-word rule as soon as their first four words repeat.
 * A word said twice is speech ("five five", "no no"), and Whisper tiny, decoding it, often goes on
 * to a third copy: the guard then keeps two copies instead of one when the VAD heard it said twice
 * (`saidTwice`).
 * Scripts without spaces (Chinese, Japanese, Thai) have no word boundaries in the tokens, so two
 * more rules work below words:
 * - tokens: a block of 1–8 text tokens four times back to back (seen: music decoded with
 *   language "multi" as one CJK character 220 times);
 * - characters: the text's letters (UTF-8 bytes without spaces and ASCII punctuation, so two
 *   copies tokenized differently or punctuated differently still match) ending in a block of at
 *   least CHAR_BLOCK_MIN_BYTES repeated three times, or of CHAR_PAIR_MIN_BYTES repeated twice
 *   (seen: a 1-s Chinese clip with language "multi" as "炸自己的脚臭" three times; a CJK
 *   character is 3 bytes, so 4 characters twice or 2 characters three times). Speech does
 *   repeat short blocks ("谢谢", "一步一步"); a 4-character phrase twice in a row it does not.
 */
import type { WhisperTokenizer } from "./tokenizer.ts";

/** Longest block checked for back-to-back repetition, in words. */
const MAX_BLOCK_WORDS = 3;
/** Copies of a one-word block that count as a loop ("no no" is speech, "no no no" a loop). */
const SINGLE_WORD_COPIES = 3;
/** Length of a word sequence that may not occur twice. */
const NGRAM_WORDS = 4;
/**
 * Two bursts of speech heard as one word said twice differ in length by at most this factor: the
 * same word said twice takes about the same time ("five five": 13 and 11 frames), where a short
 * word and the next one rarely do ("four queen": 4 and 12).
 */
const SAME_WORD_BURST_RATIO = 2;
/** Longest token block checked for back-to-back repetition, in tokens. */
const MAX_BLOCK_TOKENS = 8;
/** Copies of a token block that count as a loop. */
const TOKEN_BLOCK_COPIES = 4;

/** Characters rule: a block of at least this many bytes three times (2 CJK characters). */
const CHAR_BLOCK_MIN_BYTES = 6;
/** Characters rule: a block of at least this many bytes twice (4 CJK characters). */
const CHAR_PAIR_MIN_BYTES = 12;
/** Longest block the characters rule looks for: 32 CJK characters, bounding its cost per token. */
const CHAR_BLOCK_MAX_BYTES = 96;

export interface RepetitionCut {
  /** Index into the sampled tokens of the first token to drop. */
  at: number;
  rule: "block" | "ngram" | "tokens" | "characters";
}

interface Word {
  key: string;
  firstToken: number;
}

const SPACE = 0x20;

/**
 * Completed words of the sampled tokens: a word starts at a text token beginning with a space,
 * or after a timestamp; the last word is complete only when a non-text token follows it or
 * decoding has ended (`final`). Words with nothing but punctuation are left out.
 */
function completedWords(
  sampled: readonly number[],
  tokenizer: WhisperTokenizer,
  final: boolean,
): Word[] {
  const words: Word[] = [];
  let start = -1;
  const close = (end: number) => {
    if (start < 0) return;
    const key = tokenizer
      .decode(sampled.slice(start, end))
      .toLowerCase()
      .replace(/[^\p{L}\p{N}]/gu, "");
    if (key.length > 0) words.push({ key, firstToken: start });
    start = -1;
  };
  sampled.forEach((id, i) => {
    if (!tokenizer.isText(id)) {
      close(i);
      return;
    }
    if (start < 0) start = i;
    else if (tokenizer.tokenBytes(id)[0] === SPACE) {
      close(i);
      start = i;
    }
  });
  // Unless decoding has ended, a trailing word may still grow with the next token.
  if (final) close(sampled.length);
  return words;
}

/**
 * Whether the word at index `first` was said twice, by the VAD's evidence: every word before it
 * had a burst of its own, and the next two bursts are about as long as each other. Without that,
 * a third copy reads as the decoder's loop on a word said once.
 */
function saidTwice(bursts: readonly number[], first: number): boolean {
  const [a, b] = [bursts[first], bursts[first + 1]];
  return (
    a !== undefined && b !== undefined && Math.max(a, b) <= SAME_WORD_BURST_RATIO * Math.min(a, b)
  );
}

function sameWords(words: Word[], a: number, b: number, length: number): boolean {
  for (let i = 0; i < length; i++) {
    if (words[a + i]?.key !== words[b + i]?.key) return false;
  }
  return true;
}

/** A block of text tokens repeated TOKEN_BLOCK_COPIES times at the very end: where to cut. */
function tokenBlockRepeat(sampled: readonly number[], tokenizer: WhisperTokenizer): number {
  const n = sampled.length;
  for (let length = 1; length <= MAX_BLOCK_TOKENS; length++) {
    const first = n - length * TOKEN_BLOCK_COPIES;
    if (first < 0) break;
    let repeated = true;
    for (let i = first; i < n && repeated; i++) {
      const id = sampled[i] ?? -1;
      repeated = tokenizer.isText(id) && (i < first + length || id === sampled[i - length]);
    }
    if (repeated) return first + length;
  }
  return -1;
}

/** A byte that separates rather than spells: ASCII space, control or punctuation. */
function isSeparator(byte: number): boolean {
  return byte < 0x80 && !/[0-9A-Za-z]/.test(String.fromCharCode(byte));
}

/**
 * The letters of the text tokens as bytes, each with the index of the token it came from; a
 * repeated block at the very end of them: where to cut (the token holding the first byte of the
 * second copy), else -1.
 */
function characterRepeat(sampled: readonly number[], tokenizer: WhisperTokenizer): number {
  const bytes: number[] = [];
  const owner: number[] = [];
  sampled.forEach((id, i) => {
    if (!tokenizer.isText(id)) return;
    for (const byte of tokenizer.tokenBytes(id)) {
      if (isSeparator(byte)) continue;
      bytes.push(byte);
      owner.push(i);
      // CJK punctuation (U+3000–303F: E3 80–80 xx; fullwidth U+FF00–FF20: EF BC 80–A0) separates
      // too: drop its three bytes once complete.
      const n = bytes.length;
      const [a, b, c] = [bytes[n - 3], bytes[n - 2], bytes[n - 1]];
      if (
        c !== undefined &&
        ((a === 0xe3 && b === 0x80) || (a === 0xef && b === 0xbc && c >= 0x80 && c <= 0xa0))
      ) {
        bytes.length = n - 3;
        owner.length = n - 3;
      }
    }
  });
  const n = bytes.length;
  const maxLength = Math.min(CHAR_BLOCK_MAX_BYTES, Math.floor(n / 2));
  for (let length = CHAR_BLOCK_MIN_BYTES; length <= maxLength; length++) {
    const copies = length >= CHAR_PAIR_MIN_BYTES ? 2 : 3;
    const first = n - copies * length;
    if (first < 0) continue;
    let repeated = true;
    for (let i = first + length; i < n && repeated; i++) repeated = bytes[i] === bytes[i - length];
    if (repeated) return owner[first + length] ?? -1;
  }
  return -1;
}

/**
 * Where to cut the sampled tokens if their completed words end in a repeat, else undefined.
 * Called after every token, so only repeats that end at the last completed word are looked for.
 */
export function findRepetition(
  sampled: readonly number[],
  tokenizer: WhisperTokenizer,
  {
    final = false,
    speechBursts = [],
  }: {
    /** Decoding has ended: the last word is complete. */
    final?: boolean;
    /** Lengths of the bursts of speech the VAD heard in the audio (speech-evidence.ts VadEvidence). */
    speechBursts?: readonly number[];
  } = {},
): RepetitionCut | undefined {
  const tokenCut = tokenBlockRepeat(sampled, tokenizer);
  if (tokenCut >= 0) return { at: tokenCut, rule: "tokens" };
  const words = completedWords(sampled, tokenizer, final);
  const n = words.length;
  for (let length = 1; length <= MAX_BLOCK_WORDS; length++) {
    const copies = length === 1 ? SINGLE_WORD_COPIES : 2;
    if (n < length * copies) continue;
    const first = n - length * copies;
    let repeated = true;
    for (let copy = 1; copy < copies && repeated; copy++) {
      repeated = sameWords(words, first, first + copy * length, length);
    }
    if (repeated) {
      // A single word: a second copy is kept when the VAD heard the word said twice.
      const kept = length === 1 && saidTwice(speechBursts, first) ? 2 : 1;
      const cut = words[first + kept * length];
      if (cut) return { at: cut.firstToken, rule: "block" };
    }
  }
  if (n > NGRAM_WORDS) {
    const tail = n - NGRAM_WORDS;
    for (let start = 0; start < tail; start++) {
      if (sameWords(words, start, tail, NGRAM_WORDS)) {
        const cut = words[tail];
        if (cut) return { at: cut.firstToken, rule: "ngram" };
      }
    }
  }
  const characterCut = characterRepeat(sampled, tokenizer);
  if (characterCut >= 0) return { at: characterCut, rule: "characters" };
  return undefined;
}
