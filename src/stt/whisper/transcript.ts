/**
 * From decoded tokens to what a client sees: text, segments timed by Whisper's timestamp tokens,
 * words with times and confidences, and the no-speech verdict on Whisper's evidence alone
 * (speech-evidence.ts). Pure.
 *
 * Word times: Whisper's timestamp tokens only time segments (0.02 s steps; whisper-tiny's are
 * typically within a few tenths of a second of the speech). Inside a segment, its span is shared
 * between its words in proportion to their characters (punctuation included), i.e. a constant
 * speaking rate is assumed: pauses inside a segment are spread over all its words, and a word's
 * error grows towards the middle of a long segment. A better aligner would need the decoder's
 * cross-attention (DTW over alignment heads), which the prepared decoder no longer outputs.
 *
 * Words are Whisper's tokens grouped at leading spaces. Chinese, Japanese, Thai and the like write
 * no spaces, so a segment of theirs would be one word: such runs are split into words by the
 * runtime's ICU word breaker (Intl.Segmenter, dictionary-based for these scripts), each word
 * taking its group's confidence (byte-level tokens do not map onto characters one to one).
 */
import { plainWord } from "../../protocol/messages.ts";
import { type TranscriptWord, UNSPACED_SCRIPT } from "../transcriber.ts";
import type { DecodeResult, SampledToken } from "./decode-types.ts";
import { noSpeechVerdict } from "./speech-evidence.ts";
import type { WhisperTokenizer } from "./tokenizer.ts";

export interface Segment {
  start: number;
  end: number;
  text: string;
}

/**
 * A word as the session sends it, but timed in seconds from the start of the decoded window (the
 * transcriber moves it onto session time); `confidence` is the mean probability of its tokens.
 */
export type WordTiming = TranscriptWord;

export interface Transcript {
  text: string;
  language: string;
  segments: Segment[];
  words: WordTiming[];
  /** Mean probability of the text tokens (timestamps excluded), 0 without text. */
  confidence: number;
  /**
   * Whisper's probability of <|nospeech|> for the audio; null when unknown: a decode that
   * continued the previous utterance (continuation.ts) reads it at the window's start, where the
   * previous utterance's speech is, so it says nothing about this one, and it is measured on this
   * utterance alone only when the no-speech decision needs it (transcribe.ts).
   */
  noSpeechProbability: number | null;
  avgLogprob: number;
  /** See SpeechEvidence.compressionRatio; 0 without text. */
  compressionRatio: number;
  /** noSpeechVerdict on Whisper's evidence alone (no VAD): what offline scripts drop. */
  likelyNoSpeech: boolean;
  tokens: SampledToken[];
}

interface TimedSpan {
  start: number;
  end: number;
  tokens: SampledToken[];
}

const SPACE = 0x20;

/** Splits sampled tokens into segments at timestamps; text before any timestamp starts at 0. */
function spans(
  tokens: readonly SampledToken[],
  tokenizer: WhisperTokenizer,
  audioSeconds: number,
): TimedSpan[] {
  const out: TimedSpan[] = [];
  let start = 0;
  let text: SampledToken[] = [];
  const clamp = (s: number) => Math.min(Math.max(s, 0), audioSeconds);
  for (const token of tokens) {
    if (tokenizer.isTimestamp(token.id)) {
      const seconds = clamp(tokenizer.timestampSeconds(token.id));
      if (text.length > 0) out.push({ start, end: Math.max(seconds, start), tokens: text });
      text = [];
      start = seconds;
    } else if (tokenizer.isText(token.id)) {
      text.push(token);
    }
  }
  // An open segment (stopped by <|endoftext|>, a cut repeat or the token cap) ends with the audio.
  if (text.length > 0) out.push({ start, end: Math.max(clamp(audioSeconds), start), tokens: text });
  return out;
}

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;

interface Draft {
  text: string;
  confidence: number;
}

const breakers = new Map<string, Intl.Segmenter>();

/** ICU's word breaker for `language` (a Whisper code such as "zh" or "ja"), made once. */
function wordBreaker(language: string): Intl.Segmenter {
  let breaker = breakers.get(language);
  if (!breaker) {
    let locale: string | undefined = language;
    try {
      Intl.getCanonicalLocales(language);
    } catch {
      locale = undefined; // not a BCP 47 tag: the breaker's own dictionaries still apply by script
    }
    breaker = new Intl.Segmenter(locale, { granularity: "word" });
    breakers.set(language, breaker);
  }
  return breaker;
}

/** "10:" or "COVID-": a letter or digit, then a joiner that ICU breaks after. */
const OPEN_JOIN = /[\p{L}\p{N}][-:/]$/u;
/** Opening brackets and quotes: they belong to the word after them. */
const OPENING = /^[\p{Ps}\p{Pi}]+$/u;

/**
 * A word group written without spaces, split into the words ICU finds in it. Punctuation joins the
 * word before it, opening brackets and quotes the word after; "10:30", "555-1234" and "COVID-19"
 * stay one word, as they are in English; spaces inside (U+3000 too) separate words and belong to
 * none. Unchanged where the runtime has no word breaker.
 */
function splitUnspaced(draft: Draft, language: string): Draft[] {
  if (!UNSPACED_SCRIPT.test(draft.text) || typeof Intl.Segmenter !== "function") return [draft];
  const out: Draft[] = [];
  let opening = "";
  for (const { segment } of wordBreaker(language).segment(draft.text)) {
    const previous = out.at(-1);
    if (/^\s+$/u.test(segment)) continue;
    if (
      previous &&
      opening === "" &&
      OPEN_JOIN.test(previous.text) &&
      /^[\p{N}\p{Script=Latin}]/u.test(segment)
    ) {
      previous.text += segment;
    } else if (LETTER_OR_DIGIT.test(segment)) {
      out.push({ text: opening + segment, confidence: draft.confidence });
      opening = "";
    } else if (OPENING.test(segment) || !previous) {
      opening += segment;
    } else {
      previous.text += segment;
    }
  }
  // Opening punctuation with no word after it closes the last word instead.
  const last = out.at(-1);
  if (last && opening !== "") last.text += opening;
  return out.length > 0 ? out : [draft];
}

/** Words of one segment with times shared out by character count. */
function segmentWords(
  span: TimedSpan,
  tokenizer: WhisperTokenizer,
  language: string,
): WordTiming[] {
  const groups: SampledToken[][] = [];
  for (const token of span.tokens) {
    const startsWord = tokenizer.tokenBytes(token.id)[0] === SPACE;
    const current = groups.at(-1);
    if (startsWord || !current) groups.push([token]);
    else current.push(token);
  }
  const drafts: { text: string; tokens: SampledToken[] }[] = [];
  // Punctuation that opens the segment (" - No.", " ...and"), held for its first word.
  const opening = { text: "", tokens: [] as SampledToken[] };
  for (const group of groups) {
    const text = tokenizer.decode(group.map((t) => t.id)).trim();
    const previous = drafts.at(-1);
    if (text.length === 0) continue;
    if (!/[\p{L}\p{N}]/u.test(text)) {
      // A group of punctuation only belongs to the word before it, or opens the first one.
      const to = previous ?? opening;
      to.text += text;
      to.tokens.push(...group);
      continue;
    }
    drafts.push({ text: opening.text + text, tokens: [...opening.tokens, ...group] });
    opening.text = "";
    opening.tokens = [];
  }
  const words = drafts.flatMap((draft) =>
    splitUnspaced(
      {
        text: draft.text,
        confidence:
          draft.tokens.reduce((sum, t) => sum + t.probability, 0) /
          Math.max(1, draft.tokens.length),
      },
      language,
    ),
  );
  const characters = words.map((d) => Math.max(1, [...d.text].length));
  const total = characters.reduce((a, b) => a + b, 0);
  const duration = span.end - span.start;
  let done = 0;
  return words.map((draft, i) => {
    const start = span.start + (duration * done) / total;
    done += characters[i] ?? 1;
    const end = span.start + (duration * done) / total;
    return {
      // What is inside stays ("3.5", "555-1234", "don't"), so digits never run together.
      word: plainWord(draft.text),
      punctuatedWord: draft.text,
      start: round(start),
      end: round(end),
      confidence: draft.confidence,
    };
  });
}

/** Times in seconds to the millisecond. */
function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

/**
 * Whisper's compression ratio of a text (openai/whisper: len(text) / len(zlib.compress(text))):
 * above ~2.4 the text repeats itself. Async because CompressionStream is.
 */
export async function compressionRatio(text: string): Promise<number> {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length === 0) return 0;
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
  const compressed = await new Response(stream).arrayBuffer();
  return bytes.length / compressed.byteLength;
}

export function buildTranscript(
  result: DecodeResult,
  tokenizer: WhisperTokenizer,
  audioSeconds: number,
  ratio = 0,
  noSpeechProbability: number | null = result.noSpeechProbability,
): Transcript {
  const timed = spans(result.tokens, tokenizer, audioSeconds);
  const segments = timed.map((span) => ({
    start: round(span.start),
    end: round(span.end),
    text: tokenizer.decode(span.tokens.map((t) => t.id)).trim(),
  }));
  const textTokens = result.tokens.filter((t) => tokenizer.isText(t.id));
  const confidence =
    textTokens.length > 0
      ? textTokens.reduce((sum, t) => sum + t.probability, 0) / textTokens.length
      : 0;
  return {
    text: tokenizer.decode(textTokens.map((t) => t.id)).trim(),
    language: result.language,
    segments,
    words: timed.flatMap((span) => segmentWords(span, tokenizer, result.language)),
    confidence,
    noSpeechProbability,
    avgLogprob: result.avgLogprob,
    compressionRatio: ratio,
    likelyNoSpeech: noSpeechVerdict({
      noSpeechProbability,
      avgLogprob: result.avgLogprob,
      compressionRatio: ratio,
      seconds: audioSeconds,
    }).noSpeech,
    tokens: result.tokens,
  };
}
