/**
 * Beam search after the prompt (`beamSize` above 1 at temperature 0; greedyDecode in decode.ts
 * runs the prompt and hands over): the live beams run as the rows of one cache run
 * (decoder-run.ts `runRows`), with the keyterm bias and the stop rules of greedy decoding.
 *
 * `Tensor` comes from onnxruntime-web itself, as in decoder-run.ts (which says why).
 */

import { Tensor } from "onnxruntime-web/wasm";
import type {
  DecodeOptions,
  DecodeResult,
  SampledToken,
  StopReason,
  WhisperDecoder,
} from "./decode-types.ts";
import { beforeRun, type Feeds, lastRow, runRows, type Step } from "./decoder-run.ts";
import { favoured } from "./keyterm-bias.ts";
import { applyLogitRules } from "./logit-rules.ts";
import { logNormalizer } from "./projection.ts";
import { stopAfter } from "./stop-rules.ts";

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

/**
 * The `count` best token ids by biased logit (the logit, plus `bonus` for the ids in `boosted`),
 * best first, the lower id first among equal values; never an id whose logit is −∞. One pass
 * with the values inline: it runs over the whole vocabulary for every beam at every step, and a
 * per-id closure and Set lookup cost ~1 ms a beam (Node, 51 865 logits).
 */
export function topBiased(
  logits: Float32Array,
  count: number,
  bonus: number,
  boosted?: ReadonlySet<number>,
): number[] {
  const ids: number[] = [];
  const values: number[] = [];
  // Ascending, ended by +∞ so the scan never reads past the end (slow in V8).
  const favouredIds = [...(boosted ?? [])].filter((id) => id >= 0).sort((a, b) => a - b);
  favouredIds.push(Number.POSITIVE_INFINITY);
  let k = 0;
  let nextFavoured = favouredIds[0] as number;
  /** The count-th best value once `count` are held: nothing at or below it gets in. */
  let threshold = Number.NEGATIVE_INFINITY;
  for (let id = 0; id < logits.length; id++) {
    let value = logits[id] as number;
    if (id === nextFavoured) {
      value += bonus;
      k += 1;
      nextFavoured = favouredIds[k] as number;
    }
    if (value <= threshold) continue;
    let at = ids.length;
    while (at > 0 && (values[at - 1] as number) < value) at--;
    ids.splice(at, 0, id);
    values.splice(at, 0, value);
    if (ids.length > count) {
      ids.pop();
      values.pop();
    }
    if (ids.length === count) threshold = values[count - 1] as number;
  }
  return ids;
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
export async function beamSearch(
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
  const normalizer = logNormalizer(model.external?.projection);
  const bonus = options.bias?.bonus ?? 0;
  let decoderSteps = prompt.decoderSteps;
  let beams: Beam[] = [{ sampled: [...(options.forced ?? [])], picks: [], logprob: 0, score: 0 }];
  let rows: Float32Array[] = [lastRow(first)];
  let self = first.cache.self;
  /**
   * The cross-attention cache, one row for every beam: the prepared decoder's attention broadcasts
   * it over the query rows (its batch-and-heads reshapes are folded away, shape-fold.ts), so the
   * beams share one copy instead of feeding it once per row. The stock export does not (it takes
   * the batch from this input and silently computes something else): beams need the prepared
   * decoder, which is what the service loads (test/whisper-session-prepared-vs-stock.test.ts).
   */
  const cross = first.cache.cross;
  const finished: Finished[] = [];
  /** Whisper's ranking: log-probability per token, without a length penalty. */
  const average = (f: Finished) => f.score / Math.max(1, f.length);
  while (beams.length > 0 && finished.length < width) {
    const candidates: { parent: number; id: number; logprob: number; score: number }[] = [];
    beams.forEach((beam, b) => {
      const logits = rows[b];
      if (!logits) throw new Error("beam without logits");
      applyLogitRules(logits, beam.sampled, rules);
      const lse = normalizer(logits);
      const boosted = options.bias ? favoured(beam.sampled, options.bias) : undefined;
      const biased = (id: number) => (logits[id] as number) + (boosted?.has(id) ? bonus : 0);
      // The width + 1 best by biased logit: enough to refill every beam if one of them ends.
      for (const id of topBiased(logits, width + 1, bonus, boosted)) {
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
    await beforeRun(options);
    const gathered: Feeds = Object.fromEntries(
      Object.entries(self).map(([name, t]) => [name, gatherRows(t, parents)]),
    );
    const run = await runRows(
      model,
      beams.map((beam) => beam.sampled.at(-1) as number),
      { self: gathered, cross },
      // Every id, not the English head: beams are ranked by summed log-probabilities, and a
      // sum over the head alone ranks them otherwise (greedy's argmax is the same either way).
      "all",
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
