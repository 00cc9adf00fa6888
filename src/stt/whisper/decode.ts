/**
 * Greedy decoding of Whisper's merged decoder with its key/value cache, with timestamp tokens;
 * beam search (`beamSize`, `beamSearch` below) runs its beams as the rows of one cache run.
 *
 * The merged decoder (transformers.js export; the prepared file keeps the same I/O names) has
 * two branches chosen by `use_cache_branch`:
 * - false: the whole prompt at once, with zero-length past tensors; returns logits for the prompt
 *   positions named by `logit_positions` (the prepared file; the stock one returns every
 *   position), the self-attention cache and the cross-attention cache (the projection of the
 *   encoder states, [1, 6, frames/2, 64] per layer, the big one);
 * - true: one new token plus the past; returns the grown self-attention cache, and empty
 *   cross-attention outputs, so the cross-attention cache from the first step is fed back
 *   unchanged every step. The cache branch never reads `encoder_hidden_states` (checked: logits
 *   identical), so it gets a one-row stand-in instead of the frames/2 × 384 states, which ORT
 *   would otherwise copy into its heap on every step.
 *
 * Stops at <|endoftext|>, at the first timestamp at or past the end of the audio (less
 * END_MARGIN_S) or past the window, when the repetition guard cuts, or after MAX_SAMPLED_TOKENS.
 * Stateless: everything per call lives in this call.
 *
 * `Tensor` comes from onnxruntime-web itself, not src/runtime/ort.ts, so that Node scripts can
 * import this module (ort.ts imports ORT's .wasm through wrangler's CompiledWasm rule). In workerd
 * both resolve to the same module, so ORT's `instanceof Tensor` checks on feeds hold.
 */

import { type InferenceSession, Tensor } from "onnxruntime-web/wasm";
import { runExclusive } from "../../runtime/inference-lock.ts";
import { applyLogitRules, type LogitRules, logSumExp } from "./logit-rules.ts";
import { findRepetition } from "./repetition.ts";
import type { WhisperTokenizer } from "./tokenizer.ts";

/**
 * Cap on sampled tokens: Whisper's default sample_len, n_text_ctx / 2 = 448 / 2. The decoder's
 * positions end at 448 (prompt included); a 30-s window of fast speech is ~90 words ≈ 130 text
 * tokens plus timestamps, so reaching the cap means a loop the other stops missed.
 */
export const MAX_SAMPLED_TOKENS = 224;
/** The decoder's text positions (n_text_ctx): prompt, context and sampled tokens together. */
export const TEXT_POSITIONS = 448;
/**
 * Cap on context tokens after <|startofprev|>: Whisper's own, n_text_ctx / 2 − 1, so that with the
 * context, its marker, the three-token prompt and a full MAX_SAMPLED_TOKENS the decoder stays
 * near its TEXT_POSITIONS (the sampled cap shrinks to fit). Longer context keeps its end, the
 * text nearest the audio, as Whisper does. Callers bound it far lower (a prompt costs time).
 */
export const MAX_CONTEXT_TOKENS = 223;
/** Graph input of the prepared decoder: the prompt positions whose logits are projected. */
export const LOGIT_POSITIONS_INPUT = "logit_positions";
/**
 * A timestamp this close to the end of the audio ends decoding: on a window padded with silence
 * nothing real follows, and what Whisper writes there is invented (see WHISPER-NOTES.md).
 */
export const END_MARGIN_S = 0.5;
/** Decoder layers of Whisper tiny: past/present tensors come in 4 × {decoder, encoder} × {key, value}. */
const DECODER_LAYERS = 4;
const HEADS = 6;
const HEAD_DIM = 64;
/** Width of the encoder states (d_model of Whisper tiny). */
const D_MODEL = HEADS * HEAD_DIM;

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
  /** Token sequences to favour while decoding (keyterms; see `favoured`), and by how much. */
  bias?: TokenBias;
  /** Above 1 (temperature 0 only): beam search with this many beams. */
  beamSize?: number;
}

export interface TokenBias {
  /** Each a keyterm's text tokens, in every spelling to favour (" clubs", " Clubs"). */
  sequences: readonly (readonly number[])[];
  /** Added to a favoured token's logit (natural log units: e^bonus times as likely). */
  bonus: number;
}

/**
 * Tokens `bias` favours after `sampled`: the first token of every sequence, and the next token
 * of every sequence whose beginning `sampled` ends with (so a keyterm of several tokens, once
 * started, is favoured to its end).
 */
export function favoured(sampled: readonly number[], bias: TokenBias): Set<number> {
  const ids = new Set<number>();
  for (const sequence of bias.sequences) {
    for (let k = Math.min(sequence.length - 1, sampled.length); k >= 0; k--) {
      let matches = true;
      for (let i = 0; i < k && matches; i++) {
        matches = sampled[sampled.length - k + i] === sequence[i];
      }
      const next = sequence[k];
      if (matches && next !== undefined) ids.add(next);
    }
  }
  return ids;
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

type Feeds = Record<string, Tensor>;

const CACHE_KINDS = ["key", "value"] as const;

function pastName(layer: number, part: "decoder" | "encoder", kind: "key" | "value"): string {
  return `past_key_values.${layer}.${part}.${kind}`;
}

function presentName(layer: number, part: "decoder" | "encoder", kind: "key" | "value"): string {
  return `present.${layer}.${part}.${kind}`;
}

/** Outputs fetched from cache steps: logits and the grown self-attention cache only. */
const CACHE_STEP_FETCHES = [
  "logits",
  ...Array.from({ length: DECODER_LAYERS }, (_, layer) =>
    CACHE_KINDS.map((kind) => presentName(layer, "decoder", kind)),
  ).flat(),
];
const FIRST_STEP_FETCHES = [
  ...CACHE_STEP_FETCHES,
  ...Array.from({ length: DECODER_LAYERS }, (_, layer) =>
    CACHE_KINDS.map((kind) => presentName(layer, "encoder", kind)),
  ).flat(),
];

function idsTensor(ids: readonly number[]): Tensor {
  return new Tensor(
    "int64",
    BigInt64Array.from(ids, (id) => BigInt(id)),
    [1, ids.length],
  );
}

function emptyPast(): Tensor {
  return new Tensor("float32", new Float32Array(0), [1, HEADS, 0, HEAD_DIM]);
}

function output(outputs: InferenceSession.OnnxValueMapType, name: string): Tensor {
  const value = outputs[name];
  if (!(value instanceof Tensor)) throw new Error(`Whisper decoder returned no ${name}`);
  return value;
}

/** The per-call decoder state: both caches, replaced as decoding advances. */
interface Cache {
  self: Feeds;
  cross: Feeds;
}

interface Step {
  /** Logits of each requested position, in the order requested (views, not copies). */
  rows: Float32Array[];
  cache: Cache;
}

/**
 * One decoder run over `ids`, returning the logits of `positions` (indices into `ids`). The
 * prepared decoder projects only those positions (its `logit_positions` input; a cache run has
 * one token and ignores it); the stock file projects every position and the rows are picked here.
 */
async function runDecoder(
  model: WhisperDecoder,
  ids: readonly number[],
  encoderStates: Tensor,
  cache: Cache | undefined,
  positions: readonly number[],
): Promise<Step> {
  const { decoder, tokenizer } = model;
  const vocab = tokenizer.vocabSize;
  const feeds: Feeds = {
    input_ids: idsTensor(ids),
    encoder_hidden_states: encoderStates,
    use_cache_branch: new Tensor("bool", [cache !== undefined], [1]),
  };
  const selects = model.selectsPositions === true;
  if (selects) {
    feeds[LOGIT_POSITIONS_INPUT] = new Tensor(
      "int64",
      BigInt64Array.from(positions, (p) => BigInt(p)),
      [positions.length],
    );
  }
  for (let layer = 0; layer < DECODER_LAYERS; layer++) {
    for (const kind of CACHE_KINDS) {
      feeds[pastName(layer, "decoder", kind)] =
        cache?.self[presentName(layer, "decoder", kind)] ?? emptyPast();
      feeds[pastName(layer, "encoder", kind)] =
        cache?.cross[presentName(layer, "encoder", kind)] ?? emptyPast();
    }
  }
  const fetches = cache ? CACHE_STEP_FETCHES : FIRST_STEP_FETCHES;
  const outputs = await runExclusive(() => decoder.run(feeds, fetches));
  const logits = output(outputs, "logits");
  if (!(logits.data instanceof Float32Array) || logits.dims.length !== 3) {
    throw new Error(`Whisper decoder logits have unexpected type or shape ${logits.dims}`);
  }
  const data = logits.data;
  // Rows of the output: the requested positions when the graph selected them (a cache run
  // returns its one token's row), else every input position.
  const rowIndices = cache ? [0] : selects ? positions.map((_, i) => i) : positions;
  const rows = rowIndices.map((row) => positionLogits(data, row, vocab));
  const self: Feeds = {};
  const cross: Feeds = cache ? cache.cross : {};
  for (let layer = 0; layer < DECODER_LAYERS; layer++) {
    for (const kind of CACHE_KINDS) {
      const selfName = presentName(layer, "decoder", kind);
      self[selfName] = output(outputs, selfName);
      if (!cache) {
        const crossName = presentName(layer, "encoder", kind);
        cross[crossName] = output(outputs, crossName);
      }
    }
  }
  return { rows, cache: { self, cross } };
}

/** The first row of a step's logits (a step always asks for at least one position). */
function firstRow(step: Step): Float32Array {
  const row = step.rows[0];
  if (!row) throw new Error("decoder run returned no logits row");
  return row;
}

/** The last row of a step's logits: the position the next token is sampled from. */
function lastRow(step: Step): Float32Array {
  const row = step.rows.at(-1);
  if (!row) throw new Error("decoder run returned no logits row");
  return row;
}

/** Logits of one position of a [1, positions, vocab] output (a view, not a copy). */
function positionLogits(logits: Float32Array, position: number, vocab: number): Float32Array {
  if (logits.length < (position + 1) * vocab) {
    throw new Error(`decoder logits hold ${logits.length} values, vocabulary is ${vocab}`);
  }
  return logits.subarray(position * vocab, (position + 1) * vocab);
}

function softmaxAt(logits: Float32Array, id: number): number {
  return Math.exp((logits[id] ?? Number.NEGATIVE_INFINITY) - logSumExp(logits));
}

/** A deterministic generator of numbers in [0, 1) (mulberry32); tests use it too. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A token drawn from softmax(logits / temperature); masked (−∞) tokens are never drawn. */
function sample(logits: Float32Array, temperature: number, random: () => number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const value of logits) if (value > max) max = value;
  let total = 0;
  for (const value of logits) total += Math.exp((value - max) / temperature);
  let target = random() * total;
  let last = 0;
  for (let id = 0; id < logits.length; id++) {
    const value = logits[id] as number;
    if (value === Number.NEGATIVE_INFINITY) continue;
    last = id;
    target -= Math.exp((value - max) / temperature);
    if (target <= 0) return id;
  }
  return last;
}

function argmax(values: Float32Array, from = 0, to = values.length): number {
  let best = from;
  for (let i = from + 1; i < to; i++) {
    if ((values[i] as number) > (values[best] as number)) best = i;
  }
  return best;
}

export interface WhisperDecoder {
  decoder: InferenceSession;
  tokenizer: WhisperTokenizer;
  rules: LogitRules;
  /** The decoder has the prepared `logit_positions` input (the stock file does not). */
  selectsPositions?: boolean;
}

/**
 * Greedy transcription of one encoded window. `encoderStates` is the encoder's
 * `last_hidden_state` [1, frames / 2, 384].
 */
export async function greedyDecode(
  model: WhisperDecoder,
  encoderStates: Tensor,
  options: DecodeOptions,
): Promise<DecodeResult> {
  const { tokenizer, rules } = model;
  const { special } = tokenizer;
  const stateRows = new Tensor("float32", new Float32Array(D_MODEL), [1, 1, D_MODEL]);
  // Context: <|startofprev|> and its tokens before <|startoftranscript|>, end kept when too long.
  const context = (options.context ?? []).slice(-MAX_CONTEXT_TOKENS);
  const prefix = context.length > 0 ? [special.startOfPrev, ...context] : [];
  // Prompt, then one position per sampled token: the sampled cap leaves the decoder's positions.
  const maxTokens = Math.min(
    options.maxTokens ?? MAX_SAMPLED_TOKENS,
    MAX_SAMPLED_TOKENS,
    TEXT_POSITIONS - prefix.length - 3,
  );

  // Prompt: <|startoftranscript|><|lang|><|transcribe|>, timestamps on (no <|notimestamps|>).
  // The no-speech probability and the language are read at <|startoftranscript|>.
  const start = prefix.length;
  let language = options.language;
  let step: Step;
  let noSpeechProbability: number;
  let decoderSteps = 1;
  const started = performance.now();
  if (language === "multi") {
    // Detection needs the logits after <|startoftranscript|> alone. Language and task then go
    // in as two one-token cache steps: a single two-token cache step strayed far from the
    // three-token pass (max logit difference 4.8 with the stock file, against 0.97 for one-token
    // steps, which is the activations' dynamic 8-bit quantization seeing other ranges).
    step = await runDecoder(
      model,
      [...prefix, special.startOfTranscript],
      encoderStates,
      undefined,
      [start],
    );
    const first = firstRow(step);
    noSpeechProbability = softmaxAt(first, special.noSpeech);
    const ids = [...tokenizer.languages.values()];
    const lowest = Math.min(...ids);
    const highest = Math.max(...ids);
    const detected = tokenizer.languageOf(argmax(first, lowest, highest + 1));
    if (detected === undefined) throw new Error("language detection picked a non-language token");
    language = detected;
    for (const id of [tokenizer.languageToken(language), special.transcribe]) {
      step = await runDecoder(model, [id], stateRows, step.cache, [0]);
      decoderSteps++;
    }
  } else {
    const prompt = [
      ...prefix,
      special.startOfTranscript,
      tokenizer.languageToken(language),
      special.transcribe,
    ];
    step = await runDecoder(model, prompt, encoderStates, undefined, [start, prompt.length - 1]);
    noSpeechProbability = softmaxAt(firstRow(step), special.noSpeech);
  }
  const promptMs = performance.now() - started;

  const temperature = options.temperature ?? 0;
  if (temperature === 0 && (options.beamSize ?? 1) > 1) {
    return beamSearch(model, step, options, {
      language,
      noSpeechProbability,
      decoderSteps,
      promptMs,
      maxTokens,
    });
  }
  const random = temperature > 0 ? seeded(options.seed ?? 0) : undefined;
  const sampled: number[] = [];
  const picks: SampledToken[] = [];
  let endingLogprob: number | undefined;
  let stopReason: StopReason | undefined;
  while (stopReason === undefined) {
    if (sampled.length >= maxTokens) {
      stopReason = "max-tokens";
      break;
    }
    const logits = lastRow(step);
    applyLogitRules(logits, sampled, rules);
    // Keyterm bias moves the pick only; the log-probability below stays the model's own, so
    // confidence and the no-speech decision are not inflated by it.
    const boosted = options.bias ? favoured(sampled, options.bias) : undefined;
    const bonus = options.bias?.bonus ?? 0;
    for (const favourite of boosted ?? [])
      logits[favourite] = (logits[favourite] as number) + bonus;
    const id = random ? sample(logits, temperature, random) : argmax(logits);
    for (const favourite of boosted ?? [])
      logits[favourite] = (logits[favourite] as number) - bonus;
    // Log-probability under the untempered distribution, as Whisper's avg_logprob, so attempts
    // at different temperatures compare.
    const logprob = (logits[id] as number) - logSumExp(logits);
    if (id === special.endOfText) {
      endingLogprob = logprob;
      stopReason = "endoftext";
    } else {
      sampled.push(id);
      picks.push({ id, probability: Math.exp(logprob), logprob });
    }
    stopReason = stopAfter(sampled, picks, tokenizer, options, maxTokens, stopReason);
    if (stopReason === undefined) {
      options.signal?.throwIfAborted();
      step = await runDecoder(model, [id], stateRows, step.cache, [0]);
      decoderSteps++;
    }
  }

  let logprobSum = endingLogprob ?? 0;
  for (const pick of picks) logprobSum += pick.logprob;
  const counted = picks.length + (endingLogprob === undefined ? 0 : 1);
  return {
    language,
    tokens: picks,
    noSpeechProbability,
    avgLogprob: counted > 0 ? logprobSum / counted : 0,
    stopReason,
    temperature,
    decoderSteps,
    promptMs,
  };
}

/** Rows `rows` of a [batch, …] float tensor, as a new [rows.length, …] tensor. */
function gatherRows(tensor: Tensor, rows: readonly number[]): Tensor {
  const data = tensor.data;
  if (!(data instanceof Float32Array)) throw new Error("cache tensor is not float32");
  const batch = tensor.dims[0] ?? 1;
  const size = data.length / batch;
  const out = new Float32Array(rows.length * size);
  rows.forEach((row, i) => {
    out.set(data.subarray(row * size, (row + 1) * size), i * size);
  });
  return new Tensor("float32", out, [rows.length, ...tensor.dims.slice(1)]);
}

/** One cache run of several rows at once: row i feeds `ids[i]` after row i of `cache`. */
async function runRows(
  model: WhisperDecoder,
  ids: readonly number[],
  cache: Cache,
): Promise<{ rows: Float32Array[]; self: Feeds }> {
  const vocab = model.tokenizer.vocabSize;
  const n = ids.length;
  const feeds: Feeds = {
    input_ids: new Tensor(
      "int64",
      BigInt64Array.from(ids, (id) => BigInt(id)),
      [n, 1],
    ),
    encoder_hidden_states: new Tensor("float32", new Float32Array(n * D_MODEL), [n, 1, D_MODEL]),
    use_cache_branch: new Tensor("bool", [true], [1]),
  };
  if (model.selectsPositions === true) {
    feeds[LOGIT_POSITIONS_INPUT] = new Tensor("int64", BigInt64Array.from([0n]), [1]);
  }
  for (let layer = 0; layer < DECODER_LAYERS; layer++) {
    for (const kind of CACHE_KINDS) {
      feeds[pastName(layer, "decoder", kind)] =
        cache.self[presentName(layer, "decoder", kind)] ?? emptyPast();
      feeds[pastName(layer, "encoder", kind)] =
        cache.cross[presentName(layer, "encoder", kind)] ?? emptyPast();
    }
  }
  const outputs = await runExclusive(() => model.decoder.run(feeds, CACHE_STEP_FETCHES));
  const logits = output(outputs, "logits");
  if (!(logits.data instanceof Float32Array) || logits.dims[0] !== n) {
    throw new Error(`Whisper decoder logits have unexpected type or shape ${logits.dims}`);
  }
  const data = logits.data;
  const rows = ids.map((_, i) => positionLogits(data, i, vocab));
  const self: Feeds = {};
  for (let layer = 0; layer < DECODER_LAYERS; layer++) {
    for (const kind of CACHE_KINDS) {
      const name = presentName(layer, "decoder", kind);
      self[name] = output(outputs, name);
    }
  }
  return { rows, self };
}

/**
 * Why decoding stops after the token just sampled (the last of `sampled`), if it does; `ended` is
 * "endoftext" when the model ended it (<|endoftext|> is not in `sampled`). Cuts a repetition off
 * `sampled` and `picks` in place. The opening timestamp never ends decoding: an utterance shorter
 * than END_MARGIN_S still deserves its words.
 */
function stopAfter(
  sampled: number[],
  picks: SampledToken[],
  tokenizer: WhisperTokenizer,
  options: DecodeOptions,
  maxTokens: number,
  ended: StopReason | undefined,
): StopReason | undefined {
  let stop = ended;
  const id = sampled.at(-1);
  if (stop === undefined && id !== undefined && tokenizer.isTimestamp(id) && sampled.length > 1) {
    const seconds = tokenizer.timestampSeconds(id);
    if (seconds > options.windowSeconds) stop = "past-window";
    else if (seconds >= options.audioSeconds - END_MARGIN_S) stop = "timestamp-at-end";
  }
  // Once decoding ends, the last word is complete too.
  const cut = findRepetition(sampled, tokenizer, { final: stop !== undefined });
  if (cut) {
    sampled.length = cut.at;
    picks.length = cut.at;
    stop = "repetition";
  }
  if (stop === undefined && sampled.length >= maxTokens) stop = "max-tokens";
  return stop;
}

interface Beam {
  sampled: number[];
  picks: SampledToken[];
  /** Sum of the model's own log-probabilities of `picks`. */
  logprob: number;
  /** The same with the keyterm bias: what beams are ranked by. */
  score: number;
}

interface Finished {
  picks: SampledToken[];
  logprob: number;
  score: number;
  /** Tokens the score is averaged over: the picks, and <|endoftext|> when it ended there. */
  length: number;
  stopReason: StopReason;
}

/**
 * Beam search after the prompt (Whisper's beam_size; openai/whisper BeamSearchDecoder): every
 * live beam proposes its width + 1 best next tokens, the best `width` continuations by summed
 * log-probability live on, and a sequence ending (<|endoftext|> or any stop of greedy decoding)
 * is set aside, until `width` have ended. The winner has the best average log-probability per
 * token (Whisper's ranking without a length penalty). All live beams run as the rows of one
 * decoder run: the vocabulary projection streams its table once for all of them.
 */
async function beamSearch(
  model: WhisperDecoder,
  first: Step,
  options: DecodeOptions,
  prompt: {
    language: string;
    noSpeechProbability: number;
    decoderSteps: number;
    promptMs: number;
    maxTokens: number;
  },
): Promise<DecodeResult> {
  const { tokenizer, rules } = model;
  const { special } = tokenizer;
  const width = options.beamSize ?? 1;
  const bonus = options.bias?.bonus ?? 0;
  let decoderSteps = prompt.decoderSteps;
  let beams: Beam[] = [{ sampled: [], picks: [], logprob: 0, score: 0 }];
  let rows: Float32Array[] = [lastRow(first)];
  let self = first.cache.self;
  /** The cross-attention cache repeated for a batch of n rows (it is the same for every beam). */
  const crossFor = new Map<number, Feeds>([[1, first.cache.cross]]);
  const cross = (n: number): Feeds => {
    let feeds = crossFor.get(n);
    if (!feeds) {
      feeds = Object.fromEntries(
        Object.entries(first.cache.cross).map(([name, t]) => [
          name,
          gatherRows(t, Array(n).fill(0)),
        ]),
      );
      crossFor.set(n, feeds);
    }
    return feeds;
  };
  const finished: Finished[] = [];
  /** Whisper's ranking: log-probability per token, without a length penalty. */
  const average = (f: Finished) => f.score / Math.max(1, f.length);
  while (beams.length > 0 && finished.length < width) {
    const candidates: { parent: number; id: number; logprob: number; score: number }[] = [];
    beams.forEach((beam, b) => {
      const logits = rows[b];
      if (!logits) throw new Error("beam without logits");
      applyLogitRules(logits, beam.sampled, rules);
      const lse = logSumExp(logits);
      const boosted = options.bias ? favoured(beam.sampled, options.bias) : undefined;
      const biased = (id: number) => (logits[id] as number) + (boosted?.has(id) ? bonus : 0);
      // The width + 1 best by biased logit: enough to refill every beam if one of them ends.
      const top: number[] = [];
      for (let id = 0; id < logits.length; id++) {
        const value = biased(id);
        if (value === Number.NEGATIVE_INFINITY) continue;
        if (top.length > width && value <= biased(top[width] as number)) continue;
        let at = Math.min(top.length, width);
        while (at > 0 && biased(top[at - 1] as number) < value) at--;
        top.splice(at, 0, id);
        if (top.length > width + 1) top.pop();
      }
      for (const id of top) {
        candidates.push({
          parent: b,
          id,
          logprob: beam.logprob + (logits[id] as number) - lse,
          score: beam.score + biased(id) - lse,
        });
      }
    });
    candidates.sort((a, b) => b.score - a.score);
    const next: Beam[] = [];
    const parents: number[] = [];
    for (const c of candidates) {
      if (next.length >= width || finished.length >= width) break;
      const parent = beams[c.parent] as Beam;
      const tokenLogprob = c.logprob - parent.logprob;
      if (c.id === special.endOfText) {
        finished.push({
          picks: parent.picks,
          logprob: c.logprob,
          score: c.score,
          length: parent.picks.length + 1,
          stopReason: "endoftext",
        });
        continue;
      }
      const sampled = [...parent.sampled, c.id];
      const picks = [
        ...parent.picks,
        { id: c.id, probability: Math.exp(tokenLogprob), logprob: tokenLogprob },
      ];
      const stopReason = stopAfter(sampled, picks, tokenizer, options, prompt.maxTokens, undefined);
      if (stopReason !== undefined) {
        finished.push({
          picks,
          logprob: picks.reduce((sum, p) => sum + p.logprob, 0),
          score: c.score,
          length: picks.length,
          stopReason,
        });
        continue;
      }
      next.push({ sampled, picks, logprob: c.logprob, score: c.score });
      parents.push(c.parent);
    }
    beams = next;
    if (beams.length === 0 || finished.length >= width) break;
    // Stop early once an ended sequence beats every live beam even if that beam ended now at no
    // cost (its score over one more token): Whisper would go on until `width` sequences end,
    // which costs a final many runs for sequences that rarely win.
    const bestEnded = Math.max(...finished.map(average));
    if (beams.every((beam) => bestEnded >= beam.score / (beam.picks.length + 1))) break;
    options.signal?.throwIfAborted();
    const gathered: Feeds = Object.fromEntries(
      Object.entries(self).map(([name, t]) => [name, gatherRows(t, parents)]),
    );
    const run = await runRows(
      model,
      beams.map((beam) => beam.sampled.at(-1) as number),
      { self: gathered, cross: cross(beams.length) },
    );
    decoderSteps++;
    rows = run.rows;
    self = run.self;
  }
  const best = finished.sort((a, b) => average(b) - average(a))[0];
  if (!best) throw new Error("beam search ended no sequence");
  return {
    language: prompt.language,
    tokens: best.picks,
    noSpeechProbability: prompt.noSpeechProbability,
    avgLogprob: best.length > 0 ? best.logprob / best.length : 0,
    stopReason: best.stopReason,
    temperature: 0,
    decoderSteps,
    promptMs: prompt.promptMs,
  };
}
