/**
 * Greedy decoding of Whisper's merged decoder with its key/value cache, with timestamp tokens:
 * `greedyDecode` runs the prompt, then samples one token per decoder run; beam search
 * (`beamSize`, beam-search.ts) takes over after the prompt and runs its beams as the rows of one
 * cache run. The decoder runs themselves (feeds, caches, the decoder's two branches) are in
 * decoder-run.ts.
 *
 * Stops at <|endoftext|>, at the first timestamp at or past the end of the audio (less
 * END_MARGIN_S) or past the window, when the repetition guard cuts, or after MAX_SAMPLED_TOKENS
 * (stop-rules.ts). Stateless: everything per call lives in this call.
 *
 * `Tensor` comes from onnxruntime-web itself, as in decoder-run.ts (which says why).
 */

import { Tensor } from "onnxruntime-web/wasm";
import { beamSearch } from "./beam-search.ts";
import type {
  DecodeOptions,
  DecodeResult,
  SampledToken,
  StopReason,
  WhisperDecoder,
} from "./decode-types.ts";
import { beforeRun, D_MODEL, firstRow, lastRow, runDecoder, type Step } from "./decoder-run.ts";
import { favoured } from "./keyterm-bias.ts";
import { applyLogitRules } from "./logit-rules.ts";
import { logNormalizer } from "./projection.ts";
import type { SharedPrompt } from "./shared-prompt.ts";
import { stopAfter } from "./stop-rules.ts";
import { keepHead, scopeFor } from "./vocabulary-order.ts";

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

function softmaxAt(logits: Float32Array, id: number, lse: (row: Float32Array) => number): number {
  return Math.exp((logits[id] ?? Number.NEGATIVE_INFINITY) - lse(logits));
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

/**
 * Greedy transcription of one encoded window. `encoderStates` is the encoder's
 * `last_hidden_state` [1, frames / 2, 384].
 */
export async function greedyDecode(
  model: WhisperDecoder,
  encoderStates: Tensor,
  options: DecodeOptions,
  /** The window's prompt run, shared with its other decodes; absent: this decode runs its own. */
  sharedPrompt?: SharedPrompt,
): Promise<DecodeResult> {
  const { tokenizer, rules } = model;
  const { special } = tokenizer;
  const lse = logNormalizer(model.external?.projection);
  const stateRows = new Tensor("float32", new Float32Array(D_MODEL), [1, 1, D_MODEL]);
  // Context: <|startofprev|> and its tokens before <|startoftranscript|>, end kept when too long.
  const context = (options.context ?? []).slice(-MAX_CONTEXT_TOKENS);
  const prefix = context.length > 0 ? [special.startOfPrev, ...context] : [];
  const forced = options.forced ?? [];
  // Prompt, then one position per sampled token: the sampled cap leaves the decoder's positions.
  const maxTokens = Math.min(
    options.maxTokens ?? MAX_SAMPLED_TOKENS,
    MAX_SAMPLED_TOKENS,
    TEXT_POSITIONS - prefix.length - 3 - forced.length,
  );

  // Prompt: <|startoftranscript|><|lang|><|transcribe|>, timestamps on (no <|notimestamps|>).
  // The no-speech probability and the language are read at <|startoftranscript|>.
  const start = prefix.length;
  let language = options.language;
  let step: Step;
  let noSpeechProbability: number;
  let decoderSteps = 1;
  await beforeRun(options);
  const started = performance.now();
  if (language === "multi") {
    if (forced.length > 0) throw new Error("forced tokens need a known language");
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
    noSpeechProbability = softmaxAt(first, special.noSpeech, lse);
    const ids = [...tokenizer.languages.values()];
    const lowest = Math.min(...ids);
    const highest = Math.max(...ids);
    const detected = tokenizer.languageOf(argmax(first, lowest, highest + 1));
    if (detected === undefined) throw new Error("language detection picked a non-language token");
    language = detected;
    for (const id of [tokenizer.languageToken(language), special.transcribe]) {
      await beforeRun(options);
      step = await runDecoder(
        model,
        [id],
        stateRows,
        step.cache,
        [0],
        scopeFor(model.external?.order, language, options.bias?.sequences),
      );
      decoderSteps++;
    }
  } else {
    const prompt = [
      ...prefix,
      special.startOfTranscript,
      tokenizer.languageToken(language),
      special.transcribe,
      ...forced,
    ];
    const positions = [start, prompt.length - 1];
    if (sharedPrompt) {
      const shared = await sharedPrompt.run(model, prompt, encoderStates, positions);
      step = shared.step;
      if (!shared.ran) decoderSteps = 0;
    } else {
      step = await runDecoder(model, prompt, encoderStates, undefined, positions);
    }
    noSpeechProbability = softmaxAt(firstRow(step), special.noSpeech, lse);
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
  // The prompt run projects every id; an English decode (greedy, or sampled on a retry) picks
  // from the head from its first token. Beams rank by log-probability: every id (beam-search.ts).
  const scope = scopeFor(model.external?.order, language, options.bias?.sequences);
  if (model.external && scope === "head") keepHead(model.external.order, lastRow(step));
  const random = temperature > 0 ? seeded(options.seed ?? 0) : undefined;
  // The forced tokens open `sampled` (the rules see them); `picks` are what this decode chose.
  const sampled: number[] = [...forced];
  const picks: SampledToken[] = [];
  let endingLogprob: number | undefined;
  let stopReason: StopReason | undefined;
  while (stopReason === undefined) {
    if (picks.length >= maxTokens) {
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
    const logprob = (logits[id] as number) - lse(logits);
    if (id === special.endOfText) {
      endingLogprob = logprob;
      stopReason = "endoftext";
    } else {
      sampled.push(id);
      picks.push({ id, probability: Math.exp(logprob), logprob });
    }
    stopReason = stopAfter(sampled, picks, tokenizer, options, maxTokens, stopReason);
    if (stopReason === undefined) {
      await beforeRun(options);
      step = await runDecoder(model, [id], stateRows, step.cache, [0], scope);
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
