/**
 * Whisper's tokenizer: token ids → text, and text → ids for the words a session asks Whisper to
 * expect (keyterms).
 *
 * Text tokens are GPT-2 byte-level BPE: each token is a string of stand-in characters, one per
 * byte (the GPT-2 byte-to-unicode map keeps printable Latin-1 bytes as themselves and moves the
 * other 68 bytes to U+0100 onwards so no token contains whitespace or control characters).
 * Decoding maps characters back to bytes, concatenates the bytes of all tokens and only then
 * decodes UTF-8, so a character split over two tokens (common for CJK and emoji) comes out whole.
 *
 * Encoding is OpenAI's (tiktoken's, which openai/whisper uses): split the text with GPT-2's
 * pattern, then within each piece merge the adjacent pair whose joined bytes have the lowest
 * rank until none is a token. The rank of a token is its id: merge k of merges.txt makes token
 * 256 + k (checked for all 50 000 merges of the pinned file), so vocab.json alone encodes, and
 * no merges file is loaded.
 *
 * Built from the parsed vocab.json ({token: id}: text tokens 0 … 50256 and <|endoftext|> 50257 for
 * the multilingual model) and added_tokens.json ({"<|startoftranscript|>": 50258, …}); the session
 * DO gets both from R2.
 * Timestamp tokens <|0.00|> … <|30.00|> follow <|notimestamps|> in 0.02 s steps; added_tokens.json
 * of some exports lists them and of others (Xenova/whisper-tiny) does not, so their ids are
 * derived: timestamp i is <|notimestamps|> + 1 + i.
 */
import { joinBytes } from "../../audio/samples.ts";

/** Seconds per timestamp token step. */
export const TIMESTAMP_STEP_S = 0.02;
/** <|0.00|> … <|30.00|>: 30 s / 0.02 s + 1 = 1501 timestamp tokens. */
export const TIMESTAMP_COUNT = 1501;

export type Vocab = Readonly<Record<string, number>>;
export type AddedTokens = Readonly<Record<string, number>>;

/** Ids of the special tokens the decoder needs, by role. */
export interface SpecialTokens {
  endOfText: number;
  startOfTranscript: number;
  translate: number;
  transcribe: number;
  startOfLm: number;
  startOfPrev: number;
  /** <|nospeech|> in newer exports, <|nocaptions|> in older ones: the same id (50362). */
  noSpeech: number;
  noTimestamps: number;
  /** Id of <|0.00|>; every id from here on is a timestamp. */
  timestampBegin: number;
  /** Id of <|30.00|>. */
  timestampEnd: number;
}

/**
 * GPT-2's byte-to-unicode table as its inverse: stand-in character code → byte, or −1 for a
 * character that is not a stand-in. Bytes 33–126, 161–172 and 174–255 stand for themselves; the
 * remaining 68 bytes, in increasing order, take code points 256, 257, …
 */
function unicodeToByteTable(): Int16Array {
  const table = new Int16Array(256 + 68).fill(-1);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
    if (printable) table[byte] = byte;
    else table[next++] = byte;
  }
  return table;
}

const UNICODE_TO_BYTE = unicodeToByteTable();

/** The forward map: byte → its stand-in character. */
const byteToUnicode = new Array<string>(256).fill("");
UNICODE_TO_BYTE.forEach((byte, code) => {
  if (byte >= 0) byteToUnicode[byte] = String.fromCharCode(code);
});
const BYTE_TO_UNICODE: readonly string[] = byteToUnicode;

/**
 * GPT-2's pre-tokenization pattern (tiktoken's "gpt2", which Whisper's tokenizer uses): a
 * contraction, or a run of letters, digits or other symbols with at most one leading space, or
 * whitespace. BPE never merges across these pieces.
 */
const PIECES = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** The id of the first of `names` found in any of `tables`. */
function required(tables: Readonly<Record<string, number>>[], ...names: string[]): number {
  for (const name of names) {
    for (const table of tables) {
      const id = table[name];
      if (id !== undefined) return id;
    }
  }
  throw new Error(`neither vocab.json nor added_tokens.json has ${names.join(" or ")}`);
}

export class WhisperTokenizer {
  readonly special: SpecialTokens;
  /** Language code ("en", "haw", …) → its token id, in the model's order of ids. */
  readonly languages: ReadonlyMap<string, number>;
  /** Vocabulary size of the decoder's logits: text tokens, special tokens and timestamps. */
  readonly vocabSize: number;
  /**
   * Bytes of every text token (ids below <|endoftext|>) end to end, token `id`'s at
   * `#byteStart[id]` … `#byteStart[id + 1]`. One buffer, not a Uint8Array per token: 50 257 small
   * typed arrays held 11 MB of the isolate's JS heap (measured in Node's V8), this holds ~0.5 MB.
   */
  readonly #tokenBytes: Uint8Array;
  readonly #byteStart: Uint32Array;
  /** Names of special tokens by id. */
  readonly #specialNames = new Map<number, string>();
  readonly #languageById = new Map<number, string>();
  /** vocab.json itself: the token → id (= BPE rank) table encoding reads. */
  readonly #vocab: Vocab;

  constructor(vocab: Vocab, added: AddedTokens) {
    this.#vocab = vocab;
    // <|endoftext|> is the last entry of vocab.json; the other special tokens are added tokens.
    const tables = [added, vocab];
    const endOfText = required(tables, "<|endoftext|>");
    const noTimestamps = required(tables, "<|notimestamps|>");
    const timestampBegin = added["<|0.00|>"] ?? noTimestamps + 1;
    this.special = {
      endOfText,
      startOfTranscript: required(tables, "<|startoftranscript|>"),
      translate: required(tables, "<|translate|>"),
      transcribe: required(tables, "<|transcribe|>"),
      startOfLm: required(tables, "<|startoflm|>"),
      startOfPrev: required(tables, "<|startofprev|>"),
      noSpeech: required(tables, "<|nospeech|>", "<|nocaptions|>"),
      noTimestamps,
      timestampBegin,
      timestampEnd: timestampBegin + TIMESTAMP_COUNT - 1,
    };
    this.vocabSize = this.special.timestampEnd + 1;

    [this.#tokenBytes, this.#byteStart] = packTokenBytes(vocab, endOfText);
    this.#specialNames.set(endOfText, "<|endoftext|>");
    for (const [name, id] of Object.entries(added)) this.#specialNames.set(id, name);

    // Language tokens sit between <|startoftranscript|> and <|translate|>.
    const languages = new Map<string, number>();
    const entries = Object.entries(added).sort((a, b) => a[1] - b[1]);
    for (const [name, id] of entries) {
      const code = /^<\|([a-z]{2,3})\|>$/.exec(name)?.[1];
      if (code && id > this.special.startOfTranscript && id < this.special.translate) {
        languages.set(code, id);
        this.#languageById.set(id, code);
      }
    }
    if (languages.size === 0) throw new Error("added_tokens.json has no language tokens");
    this.languages = languages;
  }

  /** The token of a language code ("en"); throws for a code the model does not know. */
  languageToken(code: string): number {
    const id = this.languages.get(code);
    if (id === undefined) throw new RangeError(`Whisper has no language "${code}"`);
    return id;
  }

  /** The language code of a language token id, if it is one. */
  languageOf(id: number): string | undefined {
    return this.#languageById.get(id);
  }

  isText(id: number): boolean {
    return id >= 0 && id < this.special.endOfText;
  }

  isTimestamp(id: number): boolean {
    return id >= this.special.timestampBegin && id <= this.special.timestampEnd;
  }

  /** Seconds of a timestamp token. */
  timestampSeconds(id: number): number {
    if (!this.isTimestamp(id)) throw new RangeError(`token ${id} is not a timestamp`);
    // Rounded to the step so 0.02 × 3 prints as 0.06, not 0.060000000000000005.
    return Math.round((id - this.special.timestampBegin) * TIMESTAMP_STEP_S * 100) / 100;
  }

  /** Name of a special or timestamp token ("<|en|>", "<|1.24|>"), or undefined for text. */
  specialName(id: number): string | undefined {
    if (this.isTimestamp(id)) return `<|${this.timestampSeconds(id).toFixed(2)}|>`;
    return this.#specialNames.get(id);
  }

  /** UTF-8 bytes of a text token (empty for special and timestamp tokens). */
  tokenBytes(id: number): Uint8Array {
    if (!this.isText(id)) return new Uint8Array(0);
    return this.#tokenBytes.subarray(this.#byteStart[id], this.#byteStart[id + 1]);
  }

  /**
   * Text tokens of `text`, as Whisper's own tokenizer splits it (see the file comment). Special
   * token names in the text are encoded as plain text, never as special tokens.
   */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const [piece] of text.matchAll(PIECES)) {
      let symbols = [...new TextEncoder().encode(piece)].map((b) => BYTE_TO_UNICODE[b] ?? "");
      // Merge the lowest-ranked adjacent pair until no pair is a token.
      for (;;) {
        let best = -1;
        let bestRank = Number.POSITIVE_INFINITY;
        for (let i = 0; i + 1 < symbols.length; i++) {
          const rank = this.#rank(`${symbols[i]}${symbols[i + 1]}`);
          if (rank !== undefined && rank < bestRank) {
            bestRank = rank;
            best = i;
          }
        }
        if (best < 0) break;
        symbols = [
          ...symbols.slice(0, best),
          `${symbols[best]}${symbols[best + 1]}`,
          ...symbols.slice(best + 2),
        ];
      }
      for (const symbol of symbols) {
        const id = this.#rank(symbol);
        // Every single byte is a token, and every merge result is one: unreachable with a
        // well-formed vocab.json.
        if (id === undefined) throw new Error(`vocab.json cannot encode ${JSON.stringify(symbol)}`);
        ids.push(id);
      }
    }
    return ids;
  }

  /** Id of a text token given as stand-in characters, if vocab.json has it. */
  #rank(symbol: string): number | undefined {
    if (!Object.hasOwn(this.#vocab, symbol)) return undefined;
    const id = this.#vocab[symbol];
    return id !== undefined && id < this.special.endOfText ? id : undefined;
  }

  /**
   * Text of a token sequence. Special and timestamp tokens are skipped unless `withSpecial`, which
   * writes their names in place. Bytes are joined before UTF-8 decoding so characters that span
   * tokens decode whole. A sequence that ends inside a character (cut there by the repetition
   * guard or the token cap: tokens of Korean or CJK text often straddle characters) ends with the
   * whole characters before it, not with U+FFFD; invalid bytes inside still decode to U+FFFD.
   */
  decode(ids: readonly number[], { withSpecial = false } = {}): string {
    let decoder = new TextDecoder("utf-8");
    let text = "";
    let pending: Uint8Array[] = [];
    const flush = () => {
      if (pending.length === 0) return;
      // Streamed: a character cut at the end stays buffered, and is dropped with the decoder.
      text += decoder.decode(joinBytes(...pending), { stream: true });
      pending = [];
      decoder = new TextDecoder("utf-8");
    };
    for (const id of ids) {
      if (this.isText(id)) {
        pending.push(this.tokenBytes(id));
      } else if (withSpecial) {
        flush();
        text += this.specialName(id) ?? `<|${id}|>`;
      }
    }
    flush();
    return text;
  }
}

/**
 * The bytes of text tokens 0 … `count` − 1, end to end, and where each starts (`count` + 1
 * offsets; a token vocab.json lacks has no bytes). A token's stand-in characters are one byte each.
 */
function packTokenBytes(vocab: Vocab, count: number): [Uint8Array, Uint32Array] {
  const tokens = new Array<string>(count).fill("");
  let total = 0;
  for (const [token, id] of Object.entries(vocab)) {
    if (id < 0 || id >= count) continue;
    tokens[id] = token;
    total += token.length;
  }
  const bytes = new Uint8Array(total);
  const start = new Uint32Array(count + 1);
  let at = 0;
  tokens.forEach((token, id) => {
    start[id] = at;
    for (let i = 0; i < token.length; i++) {
      const byte = UNICODE_TO_BYTE[token.charCodeAt(i)] ?? -1;
      if (byte < 0) throw new Error(`vocab.json token ${id} has a character outside the byte map`);
      bytes[at++] = byte;
    }
  });
  start[count] = at;
  return [bytes, start];
}
