/**
 * Runs of Whisper's merged decoder with its key/value cache: the feeds, the outputs fetched, and
 * the logits rows a run returns. `runDecoder` runs one sequence (the prompt, or one token after
 * the cache); `runRows` runs several cache rows at once (the beams of beam search).
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
 * The prepared decoder has no vocabulary table (projection.ts): each token's table row is fed in
 * (`token_rows`), and the logits are projected here from the quantized hidden state it returns,
 * over the English head only when `scope` says so; every row comes back in token-id order
 * (−Infinity where not projected), so callers only ever see token ids.
 *
 * `Tensor` comes from onnxruntime-web itself, not src/runtime/ort.ts, so that Node scripts can
 * import this module (ort.ts imports ORT's .wasm through wrangler's CompiledWasm rule). In workerd
 * both resolve to the same module, so ORT's `instanceof Tensor` checks on feeds hold.
 */

import { type InferenceSession, Tensor } from "onnxruntime-web/wasm";
import { runExclusive } from "../../runtime/inference-lock.ts";
import type { ExternalVocabulary, WhisperDecoder } from "./decode-types.ts";
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
const DECODER_LAYERS = 4;
const HEADS = 6;
const HEAD_DIM = 64;
/** Width of the encoder states (d_model of Whisper tiny). */
export const D_MODEL = HEADS * HEAD_DIM;

export type Feeds = Record<string, Tensor>;

const CACHE_KINDS = ["key", "value"] as const;

function pastName(layer: number, part: "decoder" | "encoder", kind: "key" | "value"): string {
  return `past_key_values.${layer}.${part}.${kind}`;
}

function presentName(layer: number, part: "decoder" | "encoder", kind: "key" | "value"): string {
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

function fetchNames(external: ExternalVocabulary | undefined, first: boolean): string[] {
  return [...(external ? QUANTIZED : LOGITS), ...SELF_CACHE, ...(first ? CROSS_CACHE : [])];
}

/** `input_ids` [batch, tokens] and, for a decoder without its table, each token's table row. */
function tokenFeeds(
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
function logitRows(
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

export interface Step {
  /** Logits of each requested position, in the order requested (views, not copies). */
  rows: Float32Array[];
  cache: Cache;
}

/**
 * One decoder run over `ids`, returning the logits of `positions` (indices into `ids`). The
 * prepared decoder projects only those positions (its `logit_positions` input; a cache run has
 * one token and ignores it); the stock file projects every position and the rows are picked here.
 */
export async function runDecoder(
  model: WhisperDecoder,
  ids: readonly number[],
  encoderStates: Tensor,
  cache: Cache | undefined,
  positions: readonly number[],
  /** A cache run's logits: the English head only, or every id. The prompt run gives every id. */
  scope: VocabularyScope = "all",
): Promise<Step> {
  const { decoder, external } = model;
  const feeds: Feeds = {
    ...tokenFeeds(external, ids, 1),
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
  const outputs = await runExclusive(() => decoder.run(feeds, fetchNames(external, !cache)), true);
  // Rows of the output: the requested positions when the graph selected them (a cache run
  // returns its one token's row), else every input position. The prompt run gives every id.
  const rowIndices = cache ? [0] : selects ? positions.map((_, i) => i) : positions;
  const rows = logitRows(
    model,
    outputs,
    rowIndices.map((row) => [0, row] as const),
    cache ? scope : "all",
  );
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

/**
 * Called before each model run of a transcription: awaits the caller's `yieldTurn` (a session's
 * turn of the event loop, src/runtime/turns.ts says why), then throws if `signal` was aborted,
 * so an abort raised by a socket message handled in that turn lands before the run.
 */
export async function beforeRun(options: RunControl): Promise<void> {
  await options.yieldTurn?.();
  options.signal?.throwIfAborted();
}

/** What `beforeRun` reads: the abort signal and the turn a caller passes down to each decode. */
export interface RunControl {
  yieldTurn?: () => Promise<void>;
  signal?: AbortSignal;
}

/** `options`' RunControl alone, to pass on to a decode (absent fields stay absent). */
export function runControl({ signal, yieldTurn }: RunControl): RunControl {
  return { ...(signal ? { signal } : {}), ...(yieldTurn ? { yieldTurn } : {}) };
}

/** The first row of a step's logits (a step always asks for at least one position). */
export function firstRow(step: Step): Float32Array {
  const row = step.rows[0];
  if (!row) throw new Error("decoder run returned no logits row");
  return row;
}

/** The last row of a step's logits: the position the next token is sampled from. */
export function lastRow(step: Step): Float32Array {
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

/** One cache run of several rows at once: row i feeds `ids[i]` after row i of `cache`. */
export async function runRows(
  model: WhisperDecoder,
  ids: readonly number[],
  cache: Cache,
  scope: VocabularyScope = "all",
): Promise<{ rows: Float32Array[]; self: Feeds }> {
  const { external } = model;
  const n = ids.length;
  const feeds: Feeds = {
    ...tokenFeeds(external, ids, n),
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
  const outputs = await runExclusive(
    () => model.decoder.run(feeds, fetchNames(external, false)),
    true,
  );
  const rows = logitRows(
    model,
    outputs,
    ids.map((_, i) => [i, 0] as const),
    scope,
  );
  const self: Feeds = {};
  for (let layer = 0; layer < DECODER_LAYERS; layer++) {
    for (const kind of CACHE_KINDS) {
      const name = presentName(layer, "decoder", kind);
      self[name] = output(outputs, name);
    }
  }
  return { rows, self };
}
