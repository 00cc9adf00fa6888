/**
 * Whisper's rules for the next token, applied to the decoder's logits before the greedy pick
 * (openai/whisper decoding.py: SuppressBlank, SuppressTokens, ApplyTimestampRules). Pure and in
 * place on one position's logits, so it is unit-tested without a model.
 */
import type { SpecialTokens, WhisperTokenizer } from "./tokenizer.ts";

/**
 * Latest first timestamp, in seconds: OpenAI's transcribe default (max_initial_timestamp=1.0).
 * Hugging Face's generation_config says index 1 (0.02 s), which forces the first segment to
 * start at 0 even when the utterance opens with a pause, and so shifts every word time.
 */
export const MAX_INITIAL_TIMESTAMP_S = 1;

/** The parts of generation_config.json the rules use. */
export interface GenerationConfig {
  /** Never sampled: symbols Whisper should not emit, and the task/prompt tokens. */
  suppress_tokens: readonly number[];
  /** Not sampled as the first token: a lone space (220) and <|endoftext|>. */
  begin_suppress_tokens: readonly number[];
}

export interface LogitRules {
  special: SpecialTokens;
  suppress: Int32Array;
  beginSuppress: Int32Array;
  /** Highest timestamp index allowed as the first token (seconds / 0.02). */
  maxInitialTimestampIndex: number;
}

export function logitRules(generation: GenerationConfig, tokenizer: WhisperTokenizer): LogitRules {
  const inRange = (id: number) => Number.isInteger(id) && id >= 0 && id < tokenizer.vocabSize;
  const bad = [...generation.suppress_tokens, ...generation.begin_suppress_tokens].find(
    (id) => !inRange(id),
  );
  if (bad !== undefined) throw new RangeError(`generation config suppresses unknown token ${bad}`);
  return {
    special: tokenizer.special,
    suppress: Int32Array.from(generation.suppress_tokens),
    beginSuppress: Int32Array.from(generation.begin_suppress_tokens),
    maxInitialTimestampIndex: Math.round(MAX_INITIAL_TIMESTAMP_S / 0.02),
  };
}

/**
 * Masks (sets to −∞) every token the rules forbid as the next one, given the tokens sampled so
 * far after the prompt. `logits` holds one position's scores over the whole vocabulary.
 */
export function applyLogitRules(
  logits: Float32Array,
  sampled: readonly number[],
  rules: LogitRules,
): void {
  const { timestampBegin, endOfText } = rules.special;
  const vocab = logits.length;
  const n = sampled.length;

  if (n === 0) for (const id of rules.beginSuppress) logits[id] = Number.NEGATIVE_INFINITY;
  for (const id of rules.suppress) logits[id] = Number.NEGATIVE_INFINITY;
  // Everything between <|endoftext|> and the timestamps (start, languages, tasks, <|nospeech|>,
  // <|notimestamps|>) belongs in prompts, never in output. Whisper masks most of these through
  // suppress_tokens and <|notimestamps|> by rule, but not the language tokens.
  logits.fill(Number.NEGATIVE_INFINITY, endOfText + 1, timestampBegin);

  // Timestamps come in pairs: <|end|><|start|> between segments, so after a pair (or the opening
  // timestamp) text must follow, and after a single timestamp that closed text, another
  // timestamp or the end.
  const last = sampled[n - 1] ?? -1;
  const penultimate = sampled[n - 2] ?? -1;
  const lastWasTimestamp = n >= 1 && last >= timestampBegin;
  const penultimateWasTimestamp = n < 2 || penultimate >= timestampBegin;
  if (lastWasTimestamp) {
    if (penultimateWasTimestamp) logits.fill(Number.NEGATIVE_INFINITY, timestampBegin, vocab);
    else logits.fill(Number.NEGATIVE_INFINITY, 0, endOfText);
  }

  // Monotonic: never before the last timestamp; a segment's end strictly after its start (so
  // decoding cannot loop on empty segments), a next segment's start may equal the previous end.
  let lastTimestamp = -1;
  for (let i = n - 1; i >= 0; i--) {
    const id = sampled[i] ?? -1;
    if (id >= timestampBegin) {
      lastTimestamp = id;
      break;
    }
  }
  if (lastTimestamp >= 0) {
    const lowest = lastWasTimestamp && !penultimateWasTimestamp ? lastTimestamp : lastTimestamp + 1;
    logits.fill(Number.NEGATIVE_INFINITY, timestampBegin, lowest);
  }

  // The transcript opens with a timestamp no later than MAX_INITIAL_TIMESTAMP_S.
  if (n === 0) {
    logits.fill(Number.NEGATIVE_INFINITY, 0, timestampBegin);
    logits.fill(
      Number.NEGATIVE_INFINITY,
      Math.min(vocab, timestampBegin + rules.maxInitialTimestampIndex + 1),
      vocab,
    );
  }

  // When all timestamps together are more likely than the best single text token, take a
  // timestamp. (Compared on logits: log-softmax shifts both sides by the same constant.)
  const timestampMass = logSumExp(logits, timestampBegin, vocab);
  let bestText = Number.NEGATIVE_INFINITY;
  for (let id = 0; id < timestampBegin; id++) {
    const value = logits[id] as number;
    if (value > bestText) bestText = value;
  }
  if (timestampMass > bestText) logits.fill(Number.NEGATIVE_INFINITY, 0, timestampBegin);
}

/** log Σ exp(values[from … to)), −∞ for an empty or all −∞ range. */
export function logSumExp(values: Float32Array, from = 0, to = values.length): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = from; i < to; i++) {
    const value = values[i] as number;
    if (value > max) max = value;
  }
  if (max === Number.NEGATIVE_INFINITY) return max;
  let sum = 0;
  for (let i = from; i < to; i++) sum += Math.exp((values[i] as number) - max);
  return max + Math.log(sum);
}
