/**
 * The merged Whisper decoder's inputs and outputs, by name: the past/present cache tensors, the
 * token feeds (ids, and each token's table row for the prepared decoder), the outputs a run
 * fetches, and the logits rows read from them (projected from the quantized hidden state by
 * projection.ts, or cut from the stock graph's logits). decoder-run.ts runs the decoder with them.
 *
 * `Tensor` comes from onnxruntime-web itself, as in decoder-run.ts (which says why).
 */

import { type InferenceSession, Tensor } from "onnxruntime-web/wasm";
import {
  DRAFT_BRANCH_INPUT,
  type ExternalVocabulary,
  type WhisperDecoder,
} from "./decode-types.ts";
import {
  LOGIT_ROWS_OUTPUT,
  LOGIT_SCALES_OUTPUT,
  LOGIT_ZEROS_OUTPUT,
  quantizedRows,
  TOKEN_ROWS_INPUT,
} from "./projection.ts";
import type { VocabularyScope } from "./vocabulary-order.ts";

/** Graph input of the prepared decoder: the prompt positions whose logits are projected. */
export const LOGIT_POSITIONS_INPUT = "logit_positions";
/** Decoder layers of Whisper tiny: past/present tensors come in 4 × {decoder, encoder} × {key, value}. */
export const DECODER_LAYERS = 4;
const HEADS = 6;
const HEAD_DIM = 64;
/** Width of the encoder states (d_model of Whisper tiny). */
export const D_MODEL = HEADS * HEAD_DIM;

export type Feeds = Record<string, Tensor>;

export const CACHE_KINDS = ["key", "value"] as const;

export function pastName(
  layer: number,
  part: "decoder" | "encoder",
  kind: "key" | "value",
): string {
  return `past_key_values.${layer}.${part}.${kind}`;
}

export function presentName(
  layer: number,
  part: "decoder" | "encoder",
  kind: "key" | "value",
): string {
  return `present.${layer}.${part}.${kind}`;
}

/** Outputs a cache step fetches besides the logits' source: the grown self-attention cache. */
const SELF_CACHE = Array.from({ length: DECODER_LAYERS }, (_, layer) =>
  CACHE_KINDS.map((kind) => presentName(layer, "decoder", kind)),
).flat();
const CROSS_CACHE = Array.from({ length: DECODER_LAYERS }, (_, layer) =>
  CACHE_KINDS.map((kind) => presentName(layer, "encoder", kind)),
).flat();
const LOGITS = ["logits"];
const QUANTIZED = [LOGIT_ROWS_OUTPUT, LOGIT_ZEROS_OUTPUT, LOGIT_SCALES_OUTPUT];

export function fetchNames(external: ExternalVocabulary | undefined, first: boolean): string[] {
  return [...(external ? QUANTIZED : LOGITS), ...SELF_CACHE, ...(first ? CROSS_CACHE : [])];
}

/** `input_ids` [batch, tokens] and, for a decoder without its table, each token's table row. */
export function tokenFeeds(
  external: ExternalVocabulary | undefined,
  ids: readonly number[],
  batch: number,
): Feeds {
  const tokens = ids.length / batch;
  const feeds: Feeds = {
    input_ids: new Tensor(
      "int64",
      BigInt64Array.from(ids, (id) => BigInt(id)),
      [batch, tokens],
    ),
  };
  if (external) {
    const rows = external.projection.tokenRows(external.order, ids);
    feeds[TOKEN_ROWS_INPUT] = new Tensor("uint8", rows, [batch, tokens, D_MODEL]);
  }
  return feeds;
}

/**
 * Logits of `wanted` rows ([batch, position] of the run's output) in token-id order: projected
 * here from the quantized hidden state (external), or cut from the graph's own logits.
 */
export function logitRows(
  model: WhisperDecoder,
  outputs: InferenceSession.OnnxValueMapType,
  wanted: readonly (readonly [number, number])[],
  scope: VocabularyScope,
): Float32Array[] {
  const { external } = model;
  const vocab = model.tokenizer.vocabSize;
  if (external) {
    const quantized = quantizedRows(
      output(outputs, LOGIT_ROWS_OUTPUT),
      output(outputs, LOGIT_ZEROS_OUTPUT),
      output(outputs, LOGIT_SCALES_OUTPUT),
    );
    return external.projection.logits(external.order, quantized, wanted, scope);
  }
  const logits = output(outputs, "logits");
  if (!(logits.data instanceof Float32Array) || logits.dims.length !== 3) {
    throw new Error(`Whisper decoder logits have unexpected type or shape ${logits.dims}`);
  }
  const perBatch = logits.dims[1] ?? 0;
  return wanted.map(([b, row]) =>
    positionLogits(logits.data as Float32Array, b * perBatch + row, vocab),
  );
}

export function emptyPast(): Tensor {
  return new Tensor("float32", new Float32Array(0), [1, HEADS, 0, HEAD_DIM]);
}

export function output(outputs: InferenceSession.OnnxValueMapType, name: string): Tensor {
  const value = outputs[name];
  if (!(value instanceof Tensor)) throw new Error(`Whisper decoder returned no ${name}`);
  return value;
}

/** The per-call decoder state: both caches, replaced as decoding advances. */
export interface Cache {
  self: Feeds;
  cross: Feeds;
}

/** Logits of one position of a [1, positions, vocab] output (a view, not a copy). */
function positionLogits(logits: Float32Array, position: number, vocab: number): Float32Array {
  if (logits.length < (position + 1) * vocab) {
    throw new Error(`decoder logits hold ${logits.length} values, vocabulary is ${vocab}`);
  }
  return logits.subarray(position * vocab, (position + 1) * vocab);
}

/** `use_draft_branch` false, for a decoder that has the input: the ordinary step (or prompt). */
export function stepPath(model: WhisperDecoder): Feeds {
  return model.takesDrafts === true
    ? { [DRAFT_BRANCH_INPUT]: new Tensor("bool", [false], [1]) }
    : {};
}

/** A cache run's past tensors (both caches) and, for the prepared decoder, its unused positions. */
export function cacheFeeds(model: WhisperDecoder, cache: Cache): Feeds {
  const feeds: Feeds = {};
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
  return feeds;
}

/** The grown self-attention cache a cache run returns. */
export function selfCache(outputs: InferenceSession.OnnxValueMapType): Feeds {
  const self: Feeds = {};
  for (let layer = 0; layer < DECODER_LAYERS; layer++) {
    for (const kind of CACHE_KINDS) {
      const name = presentName(layer, "decoder", kind);
      self[name] = output(outputs, name);
    }
  }
  return self;
}
