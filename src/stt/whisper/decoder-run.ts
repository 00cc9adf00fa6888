/**
 * Runs of Whisper's merged decoder with its key/value cache (the tensors' names, the feeds and the
 * logits rows read from the outputs are decoder-feeds.ts's). `runDecoder` runs one sequence (the
 * prompt, or one token after the cache); `runRows` runs several cache rows at once (the beams of
 * beam search); `runDrafts` k draft tokens of one sequence.
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
 * The prepared decoder's cache branch has a draft path besides the step (`use_draft_branch`,
 * tools/models/draft-branch.ts): `runDrafts` runs k tokens after the cache at once and gets the
 * rows and the cache k steps would give, bit for bit, each row projected only when asked for.
 * Every other run feeds it false.
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

import { Tensor } from "onnxruntime-web/wasm";
import { runExclusive } from "../../runtime/inference-lock.ts";
import { DRAFT_BRANCH_INPUT, type WhisperDecoder } from "./decode-types.ts";
import {
  CACHE_KINDS,
  type Cache,
  cacheFeeds,
  D_MODEL,
  DECODER_LAYERS,
  emptyPast,
  type Feeds,
  fetchNames,
  LOGIT_POSITIONS_INPUT,
  logitRows,
  output,
  pastName,
  presentName,
  selfCache,
  stepPath,
  tokenFeeds,
} from "./decoder-feeds.ts";
import {
  LOGIT_ROWS_OUTPUT,
  LOGIT_SCALES_OUTPUT,
  LOGIT_ZEROS_OUTPUT,
  quantizedRows,
} from "./projection.ts";
import type { VocabularyScope } from "./vocabulary-order.ts";

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
    ...stepPath(model),
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
  const outputs = await runExclusive(() => decoder.run(feeds, fetchNames(external, !cache)));
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
    ...stepPath(model),
    ...cacheFeeds(model, cache),
  };
  const outputs = await runExclusive(() => model.decoder.run(feeds, fetchNames(external, false)));
  const rows = logitRows(
    model,
    outputs,
    ids.map((_, i) => [i, 0] as const),
    scope,
  );
  return { rows, self: selfCache(outputs) };
}

/**
 * A draft run's result: the grown self-attention cache, and its rows' logits, each projected only
 * when asked for (`row`), so a row the decode never uses costs only its share of the ORT run.
 */
export interface DraftRows {
  /** Rows the run computed, one per draft token fed. */
  count: number;
  cache: Cache;
  /** Row j's logits (the step after the run's j-th token), projected now: a fresh array. */
  row(j: number): Float32Array;
}

/**
 * k draft tokens after `cache` in one run of the decoder's draft path: row j is the logits after
 * `ids[j]`, and the self-attention cache grows by k positions, both bit for bit what k one-token
 * `runDecoder` steps feeding `ids` in turn would give (test/whisper-session-draft-rows.test.ts).
 * One sequence (the cross-attention cache's batch of 1), the prepared decoder only.
 *
 * The run's quantized rows are kept for `row`: ORT-web copies every CPU output out of its heap
 * into a fresh typed array (wasm-core-impl.ts, `run`), so a later run cannot overwrite them; they
 * are ~0.8 KB a row (two uint8 rows of 384 and their zero points and scales).
 */
export async function runDrafts(
  model: WhisperDecoder,
  ids: readonly number[],
  cache: Cache,
  scope: VocabularyScope = "all",
): Promise<DraftRows> {
  const { external } = model;
  if (model.takesDrafts !== true || !external) {
    throw new Error("the Whisper decoder has no draft path (a prepared decoder has)");
  }
  if (ids.length === 0) throw new RangeError("no draft tokens to run");
  const feeds: Feeds = {
    ...tokenFeeds(external, ids, 1),
    encoder_hidden_states: new Tensor("float32", new Float32Array(D_MODEL), [1, 1, D_MODEL]),
    use_cache_branch: new Tensor("bool", [true], [1]),
    [DRAFT_BRANCH_INPUT]: new Tensor("bool", [true], [1]),
    ...cacheFeeds(model, cache),
  };
  const outputs = await runExclusive(() => model.decoder.run(feeds, fetchNames(external, false)));
  const quantized = quantizedRows(
    output(outputs, LOGIT_ROWS_OUTPUT),
    output(outputs, LOGIT_ZEROS_OUTPUT),
    output(outputs, LOGIT_SCALES_OUTPUT),
  );
  if (quantized.batch !== 1 || quantized.perBatch !== ids.length) {
    throw new Error(
      `draft run of ${ids.length} tokens returned ${quantized.batch} × ${quantized.perBatch} rows`,
    );
  }
  const row = (j: number): Float32Array => {
    const [logits] = external.projection.logits(external.order, quantized, [[0, j]], scope);
    if (!logits) throw new Error(`draft row ${j} was not projected`);
    return logits;
  };
  return { count: ids.length, cache: { self: selfCache(outputs), cross: cache.cross }, row };
}
