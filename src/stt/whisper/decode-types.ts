/**
 * The types of one Whisper decode: what a caller asks for (DecodeOptions), what it gets back
 * (DecodeResult, SampledToken, StopReason) and the model it decodes with (WhisperDecoder). Shared
 * by greedy decoding (decode.ts), beam search (beam-search.ts) and the decoder runs
 * (decoder-run.ts).
 */

import type { InferenceSession } from "onnxruntime-web/wasm";
import type { TokenBias } from "./keyterm-bias.ts";
import type { LogitRules } from "./logit-rules.ts";
import type { VocabularyProjection } from "./projection.ts";
import type { WhisperTokenizer } from "./tokenizer.ts";
import type { VocabularyOrder } from "./vocabulary-order.ts";

export interface DecodeOptions {
  /** A language code ("en") or "multi" to detect it from the first step's language logits. */
  language: string;
  /** Seconds of real audio at the start of the window (before silence padding). */
  audioSeconds: number;
  /** Seconds the window covers: encoder frames / 100. */
  windowSeconds: number;
  maxTokens?: number;
  /** Checked before every decoder run: an aborted decode throws the signal's reason. */
  signal?: AbortSignal;
  /**
   * Awaited before every decoder run, before `signal` is checked (see decoder-run.ts
   * `beforeRun`): the session passes a turn of the event loop.
   */
  yieldTurn?: () => Promise<void>;
  /**
   * 0 (default): greedy. Above 0: sample from softmax(logits / temperature), with a generator
   * seeded by `seed`, so the same audio decodes the same way every time (Whisper's fallback).
   */
  temperature?: number;
  seed?: number;
  /**
   * Text tokens Whisper reads before the audio's own prompt, after <|startofprev|>: what was said
   * before and the words to expect (Whisper's previous-text prompt). Empty or absent: none.
   */
  context?: readonly number[];
  /**
   * Tokens read after the prompt as if already decoded (timestamps and text, ending with a
   * closing timestamp): the previous utterance's decode, whose audio opens the window. Decoding
   * continues after them; the logit rules see them, the result, the repetition guard and the
   * token cap do not. Empty or absent: none.
   */
  forced?: readonly number[];
  /** Token sequences to favour while decoding (keyterms; see `favoured`), and by how much. */
  bias?: TokenBias;
  /** Above 1 (temperature 0 only): beam search with this many beams. */
  beamSize?: number;
  /** Lengths of the bursts of speech the VAD heard in the audio, for the repetition guard. */
  speechBursts?: readonly number[];
}

export interface SampledToken {
  id: number;
  /** Probability of this token under the rule-filtered distribution it was picked from. */
  probability: number;
  logprob: number;
}

export type StopReason =
  | "endoftext"
  | "timestamp-at-end"
  | "past-window"
  | "repetition"
  | "max-tokens";

export interface DecodeResult {
  language: string;
  /** Sampled tokens after the prompt: text and timestamps; neither <|endoftext|> nor a cut repeat. */
  tokens: SampledToken[];
  /** Probability of <|nospeech|> at the <|startoftranscript|> position, over the full vocabulary. */
  noSpeechProbability: number;
  /**
   * Mean log-probability of the kept tokens and of the token that ended decoding (<|endoftext|>
   * or the final timestamp), as Whisper's avg_logprob.
   */
  avgLogprob: number;
  stopReason: StopReason;
  /** 0 for greedy decoding. */
  temperature: number;
  /** Decoder runs, including the prompt. */
  decoderSteps: number;
  /**
   * Wall-clock ms of the prompt run(s), which also project the encoder states into the
   * cross-attention cache; the rest are one-token steps. (In workerd the clock only advances
   * across I/O, so this reads 0 there.)
   */
  promptMs: number;
}

export interface WhisperDecoder {
  decoder: InferenceSession;
  tokenizer: WhisperTokenizer;
  rules: LogitRules;
  /** The decoder has the prepared `logit_positions` input (the stock file does not). */
  selectsPositions?: boolean;
  /**
   * The prepared decoder's vocabulary table, outside the graph (projection.ts): the order of its
   * rows (vocabulary-order.ts, the English head first) and the kernel that embeds and projects
   * with it. Absent: the stock file, which gathers and projects inside the graph.
   */
  external?: ExternalVocabulary;
}

export interface ExternalVocabulary {
  order: VocabularyOrder;
  projection: VocabularyProjection;
}
