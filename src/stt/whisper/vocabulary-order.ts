/**
 * The vocabulary order of the prepared table (vocab-table.bin, projection.ts): the English head's
 * ids first, then every other id, each part ascending, so a cache step of an English decode
 * projects only the head's rows of the table and the rest's ~11 000 are never read. projection.ts
 * maps ids to rows on the way in and logits back to ids on the way out, so everything else works
 * with token ids.
 *
 * The English head is every token written in printable ASCII (letters, digits, punctuation,
 * spaces: what an English transcript is written in, "Covid", "Anyways" and "APIs" included), the
 * 256 single-byte tokens (so "café" or "Zürich" stay writable, byte by byte), and every special
 * token from <|endoftext|> on (task, languages, no-speech, timestamps). Derived from vocab.json,
 * which the model's manifest pins, so the prepared decoder and the runtime agree.
 * docs/decoder-profile.md, "The English head", says why not fewer.
 */
import type { Vocab, WhisperTokenizer } from "./tokenizer.ts";

export interface VocabularyOrder {
  /** Token id of each table row (column of the logits): the head's ids, then the rest's. */
  readonly ids: Int32Array;
  /** Column of each token id. */
  readonly columns: Int32Array;
  /** Columns in the head. */
  readonly headSize: number;
}

/** Which ids a decode's logits cover: the English head only, or every id. */
export type VocabularyScope = "head" | "all";

/**
 * A token GPT-2's byte-level BPE writes in printable ASCII: bytes 0x21–0x7E stand for themselves,
 * a space is written Ġ (U+0120).
 */
const PRINTABLE_ASCII = /^[\x21-\x7e\u0120]+$/;

/**
 * What the head needs of the tokenizer: every id the decoder scores, and <|endoftext|>, the first
 * special token (every id from it on is special or a timestamp).
 */
type HeadTokenizer = Pick<WhisperTokenizer, "vocabSize" | "special">;

/** The English head's ids, ascending, from vocab.json (token text in GPT-2's stand-ins → id). */
export function englishHeadIds(vocab: Vocab, tokenizer: HeadTokenizer): number[] {
  const { vocabSize } = tokenizer;
  const { endOfText } = tokenizer.special;
  const head = new Uint8Array(vocabSize);
  for (const [text, id] of Object.entries(vocab)) {
    if (id < vocabSize && PRINTABLE_ASCII.test(text)) head[id] = 1;
  }
  for (let id = 0; id < 256; id++) head[id] = 1;
  for (let id = endOfText; id < vocabSize; id++) head[id] = 1;
  const ids: number[] = [];
  head.forEach((inHead, id) => {
    if (inHead) ids.push(id);
  });
  return ids;
}

/** The order of a decoder whose head is `head` (ascending ids) over `vocabulary` ids. */
export function vocabularyOrder(head: readonly number[], vocabulary: number): VocabularyOrder {
  const inHead = new Uint8Array(vocabulary);
  for (const id of head) inHead[id] = 1;
  const ids = new Int32Array(vocabulary);
  let column = 0;
  for (const id of head) ids[column++] = id;
  for (let id = 0; id < vocabulary; id++) if (!inHead[id]) ids[column++] = id;
  const columns = new Int32Array(vocabulary);
  for (let c = 0; c < vocabulary; c++) columns[ids[c] as number] = c;
  return { ids, columns, headSize: head.length };
}

/** The English order over Whisper's multilingual vocabulary. */
export function englishOrder(vocab: Vocab, tokenizer: HeadTokenizer): VocabularyOrder {
  return vocabularyOrder(englishHeadIds(vocab, tokenizer), tokenizer.vocabSize);
}

/**
 * English decodes keep to the head when the decoder has one; every other language needs all, and
 * so does an English decode favouring a keyterm spelled with a token outside the head ("Zürich",
 * "Nguyễn"): the bias could never pick it.
 */
export function scopeFor(
  order: VocabularyOrder | undefined,
  language: string,
  favoured: readonly (readonly number[])[] = [],
): VocabularyScope {
  if (order === undefined || language !== "en") return "all";
  const inHead = (id: number) => (order.columns[id] ?? order.headSize) < order.headSize;
  return favoured.every((sequence) => sequence.every(inHead)) ? "head" : "all";
}

/**
 * A row with every id (the prompt run's) kept to the head: the rest's ids get −Infinity, as a
 * head-only run leaves them, so an English decode picks from the same ids at every position.
 */
export function keepHead(order: VocabularyOrder, row: Float32Array): void {
  for (let c = order.headSize; c < order.ids.length; c++) {
    row[order.ids[c] as number] = Number.NEGATIVE_INFINITY;
  }
}
