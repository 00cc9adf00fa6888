/**
 * From decoded tokens to what a client sees: text, segments timed by Whisper's timestamp tokens,
 * words with times and confidences, and the no-speech verdict. Pure.
 *
 * Word times: Whisper's timestamp tokens only time segments (0.02 s steps; whisper-tiny's are
 * typically within a few tenths of a second of the speech). Inside a segment, its span is shared
 * between its words in proportion to their characters (punctuation included), i.e. a constant
 * speaking rate is assumed: pauses inside a segment are spread over all its words, and a word's
 * error grows towards the middle of a long segment. A better aligner would need the decoder's
 * cross-attention (DTW over alignment heads), which the prepared decoder no longer outputs.
 */
import type { TranscriptWord } from "../transcriber.ts";
import type { DecodeResult, SampledToken } from "./decode.ts";
import type { WhisperTokenizer } from "./tokenizer.ts";

/**
 * Whisper's defaults for dropping a window as silence (openai/whisper transcribe: no_speech
 * threshold 0.6, logprob threshold −1): both must hold, because either alone also fires on quiet
 * or unusual speech.
 */
export const NO_SPEECH_THRESHOLD = 0.6;
export const LOGPROB_THRESHOLD = -1;
/**
 * Below this average log-probability the text is dropped whatever the no-speech probability:
 * Whisper's rule alone kept "Oh," and "Thank you." on two of the four no-speech dev clips (noise
 * at no-speech 0.51, music at 0.10). On "utterance + 1 s" windows (scripts/whisper-eval.ts) the
 * 12 speech clips averaged −0.18 … −0.84 and the no-speech clips −1.51 … −2.44; −1.2 sits in that
 * gap. Not enough data to trust blindly: a one-word answer can score low, and on 30-s windows
 * the gap closes (speech down to −1.01, music −1.02). The VAD gate comes first.
 */
export const HALLUCINATION_LOGPROB_THRESHOLD = -1.2;

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
  noSpeechProbability: number;
  avgLogprob: number;
  /**
   * Drop this text: Whisper's rule (no-speech probability > 0.6 and average log-probability < −1)
   * or an average log-probability < −1.2 (HALLUCINATION_LOGPROB_THRESHOLD).
   */
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

/** Words of one segment with times shared out by character count. */
function segmentWords(span: TimedSpan, tokenizer: WhisperTokenizer): WordTiming[] {
  const groups: SampledToken[][] = [];
  for (const token of span.tokens) {
    const startsWord = tokenizer.tokenBytes(token.id)[0] === SPACE;
    const current = groups.at(-1);
    if (startsWord || !current) groups.push([token]);
    else current.push(token);
  }
  const drafts: { text: string; tokens: SampledToken[] }[] = [];
  for (const group of groups) {
    const text = tokenizer.decode(group.map((t) => t.id)).trim();
    const previous = drafts.at(-1);
    // A group of punctuation only (" -", " ...") belongs to the word before it.
    if (!/[\p{L}\p{N}]/u.test(text) && previous) {
      previous.text += text;
      previous.tokens.push(...group);
    } else if (text.length > 0) {
      drafts.push({ text, tokens: [...group] });
    }
  }
  const characters = drafts.map((d) => Math.max(1, [...d.text].length));
  const total = characters.reduce((a, b) => a + b, 0);
  const duration = span.end - span.start;
  const words: WordTiming[] = [];
  let done = 0;
  drafts.forEach((draft, i) => {
    const start = span.start + (duration * done) / total;
    done += characters[i] ?? 1;
    const end = span.start + (duration * done) / total;
    const confidence =
      draft.tokens.reduce((sum, t) => sum + t.probability, 0) / Math.max(1, draft.tokens.length);
    words.push({
      word: draft.text.toLowerCase().replace(/[^\p{L}\p{N}'’]/gu, ""),
      punctuatedWord: draft.text,
      start: round(start),
      end: round(end),
      confidence,
    });
  });
  return words;
}

/** Times in seconds to the millisecond. */
function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

export function buildTranscript(
  result: DecodeResult,
  tokenizer: WhisperTokenizer,
  audioSeconds: number,
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
    words: timed.flatMap((span) => segmentWords(span, tokenizer)),
    confidence,
    noSpeechProbability: result.noSpeechProbability,
    avgLogprob: result.avgLogprob,
    likelyNoSpeech:
      (result.noSpeechProbability > NO_SPEECH_THRESHOLD && result.avgLogprob < LOGPROB_THRESHOLD) ||
      result.avgLogprob < HALLUCINATION_LOGPROB_THRESHOLD,
    tokens: result.tokens,
  };
}
