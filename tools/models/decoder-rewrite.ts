/**
 * Whisper merged-decoder rewrite (see ../shared/WHISPER-NOTES.md, "Graph rewrites that worked").
 * What production prepares is rewrites 4, 5, 6, 8 (`external`) and 9; 1–3 keep the table in the
 * graph and are the reference the external projection is tested against, bit for bit.
 *
 * 1. The 8-bit vocabulary table [51865, 384] is stored once, transposed to [384, 51865]. The
 *    stock graph transposes and dequantizes it to float for the output projection in each If
 *    branch: 51865 × 384 × 4 B = 80 MB of float per step, plus two 20 MB transposed copies that
 *    ORT constant-folds at load.
 * 2. The embedding lookup becomes Gather(tableᵀ, ids, axis 1) → Transpose → the existing
 *    DequantizeLinear (same rows, same bytes, read from the other layout).
 * 3. Logits stay int8 ("int8x2T"): q = DynamicQuantizeLinear(hidden); logits ≈
 *    MatMulInteger(q, tableᵀ)·s_q·s_table, plus a second pass on the quantization error of the
 *    hidden state (hidden − dequantize(q), quantized again, through the same MatMulInteger and
 *    added). The table side is exact (it is the stored int8 table); only the 384 hidden values
 *    are approximated, twice, which brings logits within ~0.003 of stock. In the cache branch
 *    both passes share one MatMulInteger over two rows (sharedPassLogits): the table is read
 *    once per step, and the logits stay bit-identical.
 * 4. The 8 attention outputs (decoder_attentions.*, cross_attentions.*) are removed.
 * 5. DynamicQuantizeLinear(encoder_hidden_states) moves from the main graph into the no-cache
 *    (else) branch, its only user: with the cache it ran every step for nothing.
 * 6. The no-cache branch projects only the positions named by a new input, `logit_positions`
 *    (int64 [P]): its logits are [1, P, vocabulary]. A prompt of previous text and keyterms is
 *    tens of tokens, and projecting each of them onto the vocabulary would cost one table pass
 *    per row once the rows no longer fit the table stream (a 50-token prompt: ~1 G multiply-adds);
 *    decoding needs two rows of it, <|startoftranscript|>'s (the no-speech probability, the
 *    language) and the last one's. The cache branch (one token a step) ignores the input.
 * 7. (Retired: the table split at an English head inside the graph. The head now lives in the
 *    order of the external table's rows: src/stt/whisper/projection.ts.)
 * 8. `external`: the table leaves the graph. The embedding reads each token's table row from a
 *    new input, `token_rows`, and each branch returns int8x2T's two quantizations of the hidden
 *    state instead of logits (`logit_rows`, `logit_zeros`, `logit_scales`); the projection runs
 *    in src/stt/whisper/projection.ts's WebAssembly kernel on the same integers and float steps
 *    (docs/decoder-profile.md, "The projection kernel").
 * 9. `foldDecoderShapes` (run by prepare.ts after the rest): both branches' shape arithmetic is
 *    folded (shape-fold.ts): every Reshape target a constant can express becomes one, and the
 *    attention's merges of batch and heads go, its batched matmuls running on the 4-D tensors.
 *    Same arithmetic: outputs bit-identical; ~460 fewer nodes for ORT to dispatch every step.
 * The rest of both branches is untouched; the dead nodes are pruned by the caller.
 */

import {
  LOGIT_ROWS_OUTPUT,
  LOGIT_SCALES_OUTPUT,
  LOGIT_ZEROS_OUTPUT,
  TOKEN_ROWS_INPUT,
} from "../../src/stt/whisper/projection.ts";
import {
  addInitializers,
  DataType,
  declaredDims,
  describe,
  dims,
  expectOne,
  expectProducer,
  type Graph,
  GraphShapeError,
  initializer,
  insertBefore,
  int32Tensor,
  int64Tensor,
  intAttr,
  type Model,
  makeNode,
  type Node,
  rawBytes,
  referencedNames,
  removeNode,
  subgraph,
  tensorValueInfo,
  uint8Scalar,
  uint8Tensor,
} from "./onnx-graph.ts";
import { type FoldReport, foldShapes } from "./shape-fold.ts";

export interface DecoderShape {
  vocabulary: number;
  width: number;
}

const ATTENTION_OUTPUT = /^(decoder|cross)_attentions\.\d+$/;
const ENCODER_STATES = "encoder_hidden_states";
/** Graph input: which positions of the no-cache run's tokens get logits (int64 [P]). */
export const LOGIT_POSITIONS = "logit_positions";
const PREFIX = "earshot";

export interface DecoderRewriteOptions {
  /**
   * The cache branch's two logit passes share one MatMulInteger (default). Off, both branches
   * keep two: the reference the shared form is tested against, bit for bit.
   */
  sharedCachePass?: boolean;
  /**
   * The table leaves the graph (src/stt/whisper/projection.ts computes with it): the embedding
   * reads `token_rows` (each token's uint8 table row, fed by the caller) instead of gathering,
   * and both branches return the hidden state quantized twice (`logit_rows`) with each pass's
   * zero point and scale (`logit_zeros`, `logit_scales`) instead of logits. The caller's table
   * file (prepare.ts, vocab-table.bin) carries the table, in the vocabulary order it chooses.
   */
  external?: boolean;
}

const TOKEN_ROWS = TOKEN_ROWS_INPUT;
const LOGIT_ROWS = LOGIT_ROWS_OUTPUT;
const LOGIT_ZEROS = LOGIT_ZEROS_OUTPUT;
const LOGIT_SCALES = LOGIT_SCALES_OUTPUT;

export function rewriteDecoder(
  model: Model,
  shape: DecoderShape,
  { sharedCachePass = true, external = false }: DecoderRewriteOptions = {},
): ExternalTable | undefined {
  const graph = model.graph;
  const branch = expectOne(
    graph.node.filter((n) => n.opType === "If"),
    "If node in the merged decoder",
  );
  const withCache = subgraph(branch, "then_branch");
  const withoutCache = subgraph(branch, "else_branch");

  removeAttentionOutputs(graph, branch, [withCache, withoutCache]);
  moveEncoderQuantizationIntoBranch(graph, withCache, withoutCache);
  // Found once, before the projection is rewritten (the table refs look for the stock MatMul).
  const promptRefs = findTableRefs(graph, withoutCache, shape);
  const table = initializer(graph, promptRefs.table);
  const zeroPoint = uint8Scalar(initializer(graph, promptRefs.zeroPoint));
  if (external) {
    const rows = rawBytes(table);
    externalProjection(graph, branch, withCache, withoutCache, shape);
    selectPromptPositions(graph, withoutCache, promptRefs.projection);
    return { rows, zeroPoint };
  }

  const transposedName = `${table.name}/${PREFIX}-transposed`;
  const columnSumsName = `${table.name}/${PREFIX}-column-sums`;
  const transposed = transpose(rawBytes(table), shape.vocabulary, shape.width);
  addInitializers(graph, [
    uint8Tensor(transposedName, transposed, [shape.width, shape.vocabulary]),
    int32Tensor(columnSumsName, columnSums(transposed, shape.width, shape.vocabulary, zeroPoint), [
      shape.vocabulary,
    ]),
  ]);
  for (const [name, sub] of [
    ["with-cache", withCache],
    ["without-cache", withoutCache],
  ] as const) {
    const tableRefs = {
      ...findTableRefs(graph, sub, shape),
      transposed: transposedName,
      columnSums: columnSumsName,
    };
    rewriteEmbedding(sub, table.name, tableRefs, `${PREFIX}/${name}/embedding`);
    // Only the cache branch, which runs once per token, shares one matmul between the passes. The
    // prompt branch runs once per utterance; sharing there too grew the heap after loading by
    // 1.2 MB and the 29-s peak past 92 MB (its [1, 2·3, vocabulary] int32 intermediates), for
    // nothing a person would notice.
    if (name === "with-cache" && sharedCachePass)
      sharedPassLogits(sub, tableRefs, `${PREFIX}/${name}/logits`);
    else twoPassLogits(sub, tableRefs, `${PREFIX}/${name}/logits`);
  }
  selectPromptPositions(graph, withoutCache, promptRefs.projection);
  return undefined;
}

/** The table an `external` rewrite took out of the graph: uint8 [vocabulary, width], by id. */
export interface ExternalTable {
  rows: Uint8Array;
  zeroPoint: number;
}

/**
 * Rewrite 8 (`external`): the table leaves the graph. In each branch the embedding's Gather is
 * removed and its readers read the graph input `token_rows` (the same uint8 rows, gathered by the
 * caller), and the projection is replaced by int8x2T's two quantizations of the hidden state,
 * returned as they are: `logit_rows` = Concat(q₁, q₂) on the position axis, `logit_zeros` =
 * [z₁, z₂], `logit_scales` = [s₁·s_T, s₂·s_T] (the products the graph multiplied by before, so the
 * caller's float steps are the graph's own). Nothing reads the table afterwards; prune drops it.
 */
function externalProjection(
  graph: Graph,
  branch: Node,
  withCache: Graph,
  withoutCache: Graph,
  shape: DecoderShape,
): void {
  const one = `${PREFIX}/shape-one`;
  addInitializers(graph, [int64Tensor(one, [1], [1])]);
  graph.input = [
    ...graph.input,
    tensorValueInfo(TOKEN_ROWS, DataType.UINT8, ["batch", "tokens", shape.width]),
  ];
  for (const [name, sub] of [
    ["with-cache", withCache],
    ["without-cache", withoutCache],
  ] as const) {
    const refs = findTableRefs(graph, sub, shape);
    const gather = expectOne(
      sub.node.filter((n) => n.opType === "Gather" && n.input[0] === refs.table),
      "embedding Gather",
    );
    const rows = gather.output[0] ?? "";
    for (const node of sub.node) node.input = node.input.map((n) => (n === rows ? TOKEN_ROWS : n));
    removeNode(sub, gather);

    const p = `${PREFIX}/${name}/logits`;
    const hidden = refs.projection.input[0] ?? "";
    const first = `${p}/pass1`;
    const second = `${p}/pass2`;
    const vector = (scalar: string, output: string, label: string): Node =>
      makeNode("Reshape", [scalar, one], [output], label);
    const perPass = (pass: string): Node[] => [
      makeNode("Mul", [`${pass}/scale`, refs.scale], [`${pass}/scales`], `${pass}/Scales`),
      vector(`${pass}/scales`, `${pass}/scales-1`, `${pass}/ScalesVector`),
      vector(`${pass}/zero`, `${pass}/zero-1`, `${pass}/ZeroVector`),
    ];
    insertBefore(sub, refs.projection, [
      quantize(hidden, first),
      ...residual(hidden, first, p),
      quantize(`${p}/residual`, second),
      ...perPass(first),
      ...perPass(second),
      makeNode("Concat", [`${first}/q`, `${second}/q`], [LOGIT_ROWS], `${p}/Rows`, {
        axis: { int: 1 },
      }),
      makeNode("Concat", [`${first}/zero-1`, `${second}/zero-1`], [LOGIT_ZEROS], `${p}/Zeros`, {
        axis: { int: 0 },
      }),
      makeNode(
        "Concat",
        [`${first}/scales-1`, `${second}/scales-1`],
        [LOGIT_SCALES],
        `${p}/ScalesAll`,
        { axis: { int: 0 } },
      ),
    ]);
    removeNode(sub, refs.projection);
  }
  const outputs = () => [
    tensorValueInfo(LOGIT_ROWS, DataType.UINT8, ["batch", "rows", shape.width]),
    tensorValueInfo(LOGIT_ZEROS, DataType.UINT8, [2]),
    tensorValueInfo(LOGIT_SCALES, DataType.FLOAT, [2]),
  ];
  const replaceLogits = <T extends { name: string }>(list: T[], added: T[]): T[] => {
    const at = list.findIndex((o) => o.name === "logits");
    if (at < 0) throw new GraphShapeError("decoder has no logits output");
    return [...list.slice(0, at), ...added, ...list.slice(at + 1)];
  };
  graph.output = replaceLogits(graph.output, outputs());
  for (const sub of [withCache, withoutCache]) sub.output = replaceLogits(sub.output, outputs());
  const names = [LOGIT_ROWS, LOGIT_ZEROS, LOGIT_SCALES];
  const at = branch.output.indexOf("logits");
  if (at < 0) throw new GraphShapeError("decoder If has no logits output");
  branch.output = [...branch.output.slice(0, at), ...names, ...branch.output.slice(at + 1)];
}

/**
 * Rewrite 6: the no-cache branch's hidden state [1, S, width] is cut to the positions in
 * `logit_positions` before anything of the projection reads it, so every logit node after it
 * (quantization, both passes) sees [1, P, width]. Run after the logits rewrite: it renames the
 * hidden state where the new projection nodes read it.
 */
function selectPromptPositions(graph: Graph, sub: Graph, stockProjection: Node): void {
  const hidden = stockProjection.input[0] ?? "";
  const selected = `${PREFIX}/without-cache/logit-rows`;
  // Only the projection's nodes read the selected rows; anything else keeps every position.
  const readers = sub.node.filter(
    (n) => n.input.includes(hidden) && n.name.startsWith(`${PREFIX}/without-cache/logits/`),
  );
  const first = readers[0];
  if (!first) {
    throw new GraphShapeError(`no rewritten projection node reads the prompt's hidden ${hidden}`);
  }
  for (const reader of readers) {
    reader.input = reader.input.map((name) => (name === hidden ? selected : name));
  }
  insertBefore(sub, first, [
    makeNode("Gather", [hidden, LOGIT_POSITIONS], [selected], `${PREFIX}/without-cache/Rows`, {
      axis: { int: 1 },
    }),
  ]);
  graph.input = [...graph.input, tensorValueInfo(LOGIT_POSITIONS, DataType.INT64, ["positions"])];
}

function removeAttentionOutputs(graph: Graph, branch: Node, branches: Graph[]): void {
  const before = graph.output.length;
  graph.output = graph.output.filter((o) => !ATTENTION_OUTPUT.test(o.name));
  if (graph.output.length !== before - 8) {
    throw new GraphShapeError(
      `expected 8 attention outputs, found ${before - graph.output.length}`,
    );
  }
  const keep = branch.output.map((name) => !ATTENTION_OUTPUT.test(name));
  branch.output = branch.output.filter((_, i) => keep[i]);
  for (const sub of branches) {
    if (sub.output.length !== keep.length) {
      throw new GraphShapeError("If branches and If node disagree on outputs");
    }
    sub.output = sub.output.filter((_, i) => keep[i]);
  }
}

function moveEncoderQuantizationIntoBranch(graph: Graph, withCache: Graph, withoutCache: Graph) {
  const quantize = expectOne(
    graph.node.filter((n) => n.opType === "DynamicQuantizeLinear" && n.input[0] === ENCODER_STATES),
    `DynamicQuantizeLinear of ${ENCODER_STATES}`,
  );
  const readers = (sub: Graph) =>
    sub.node.filter((n) => quantize.output.some((name) => referencedNames(n).has(name)));
  const mainReaders = graph.node.filter(
    (n) => n !== quantize && n.opType !== "If" && quantize.output.some((o) => n.input.includes(o)),
  );
  if (
    readers(withCache).length > 0 ||
    mainReaders.length > 0 ||
    readers(withoutCache).length === 0
  ) {
    throw new GraphShapeError(`${describe(quantize)} is not used only by the no-cache branch`);
  }
  removeNode(graph, quantize);
  withoutCache.node = [quantize, ...withoutCache.node];
}

interface TableRefs {
  /** uint8 [vocabulary, width] */
  table: string;
  scale: string;
  zeroPoint: string;
  /** The MatMul producing `logits` (hidden × dequantized tableᵀ). */
  projection: Node;
}

/** logits = MatMul(hidden, DequantizeLinear(Transpose(table), scale, zeroPoint)). */
function findTableRefs(graph: Graph, sub: Graph, shape: DecoderShape): TableRefs {
  const projection = expectProducer(sub, "logits", "MatMul");
  const dequantize = expectProducer(sub, projection.input[1] ?? "", "DequantizeLinear");
  const transposeNode = expectProducer(sub, dequantize.input[0] ?? "", "Transpose");
  const [table, scale, zeroPoint] = [
    initializer(graph, transposeNode.input[0] ?? ""),
    initializer(graph, dequantize.input[1] ?? ""),
    initializer(graph, dequantize.input[2] ?? ""),
  ];
  const tableDims = dims(table);
  if (
    table.dataType !== DataType.UINT8 ||
    tableDims[0] !== shape.vocabulary ||
    tableDims[1] !== shape.width ||
    dims(scale).length !== 0 ||
    dims(zeroPoint).length !== 0
  ) {
    throw new GraphShapeError(
      `vocabulary table ${table.name} is ${tableDims} of type ${table.dataType}, expected uint8 ` +
        `[${shape.vocabulary}, ${shape.width}] with scalar scale and zero point`,
    );
  }
  return { table: table.name, scale: scale.name, zeroPoint: zeroPoint.name, projection };
}

/**
 * Gather(table, ids) → Transpose(Gather(tableᵀ, ids, axis 1), [1, 2, 0]): same [B, S, width].
 */
function rewriteEmbedding(
  sub: Graph,
  table: string,
  refs: TableRefs & { transposed: string },
  p: string,
): void {
  const gather = expectOne(
    sub.node.filter((n) => n.opType === "Gather" && n.input[0] === table),
    "embedding Gather",
  );
  if (intAttr(gather, "axis", 0) !== 0) throw new GraphShapeError("embedding Gather axis is not 0");
  const ids = gather.input[1] ?? "";
  const rows = gather.output[0] ?? "";
  // [width, vocabulary] gathered on axis 1 with ids [B, S] gives [width, B, S].
  const columns = (from: string, index: string, output: string, name: string): Node =>
    makeNode("Gather", [from, index], [output], name, { axis: { int: 1 } });
  insertBefore(sub, gather, [
    columns(refs.transposed, ids, `${p}/columns`, `${p}/Gather`),
    makeNode("Transpose", [`${p}/columns`], [rows], `${p}/Transpose`, {
      perm: { ints: [1, 2, 0] },
    }),
  ]);
  removeNode(sub, gather);
}

/** DynamicQuantizeLinear of `input` into `${name}/q`, `${name}/scale` and `${name}/zero`. */
function quantize(input: string, name: string): Node {
  return makeNode(
    "DynamicQuantizeLinear",
    [input],
    [`${name}/q`, `${name}/scale`, `${name}/zero`],
    `${name}/Quantize`,
  );
}

/**
 * int8x2T's second pass: the part of the hidden state the first pass (named `first`) could not
 * represent, `${p}/residual`, which the second pass quantizes on its own.
 */
function residual(hidden: string, first: string, p: string): Node[] {
  return [
    makeNode(
      "DequantizeLinear",
      [`${first}/q`, `${first}/scale`, `${first}/zero`],
      [`${first}/represented`],
      `${first}/Dequantize`,
    ),
    makeNode("Sub", [hidden, `${first}/represented`], [`${p}/residual`], `${p}/Residual`),
  ];
}

/**
 * int8x2T with one integer matmul (the cache branch): both quantized rows (the hidden state and its quantization
 * error) go through a single MatMulInteger, so the 20 MB table is streamed once per step instead
 * of twice (the profile: docs/decoder-profile.md). ORT's MatMulInteger takes only one zero point
 * for A, and the two rows have their own, so A's zero point is left at 0 and subtracted
 * afterwards, exactly, in int32:
 *   Σₖ (aₖ − z)(bₖ − z_b) = Σₖ aₖ(bₖ − z_b) − z · Σₖ (bₖ − z_b) = row − z · columnSums
 * where columnSums [vocabulary] is computed here from the table. Each pass's int32 is therefore
 * the same integer as a MatMulInteger with its own zero point, and the float steps after it (Cast,
 * × its two scales, the Add) are the same as before: the logits are bit-identical.
 */
function sharedPassLogits(
  sub: Graph,
  refs: TableRefs & { transposed: string; columnSums: string },
  p: string,
): void {
  const hidden = refs.projection.input[0] ?? "";
  const first = `${p}/pass1`;
  const second = `${p}/pass2`;
  // Per pass, once: its zero point as int32 and its two scales' product.
  const prepare = (name: string): Node[] => [
    makeNode("Cast", [`${name}/zero`], [`${name}/zero32`], `${name}/CastZero`, {
      to: { int: DataType.INT32 },
    }),
    makeNode("Mul", [`${name}/scale`, refs.scale], [`${name}/scales`], `${name}/Scales`),
  ];
  // One pass's logits from its half of the shared product: (row − z·columnSums) · s · s_table.
  const finish = (name: string, part: string, sums: string, output: string): Node[] => {
    const q = `${name}/${part}`;
    return [
      makeNode("Mul", [`${name}/zero32`, sums], [`${q}/offset`], `${q}/Offset`),
      makeNode("Sub", [`${q}/row`, `${q}/offset`], [`${q}/int`], `${q}/Center`),
      makeNode("Cast", [`${q}/int`], [`${q}/float`], `${q}/Cast`, { to: { int: DataType.FLOAT } }),
      makeNode("Mul", [`${q}/float`, `${name}/scales`], [output], `${q}/Scale`),
    ];
  };
  // Both passes' rows through one MatMulInteger with `table`, then each pass finished and added.
  const project = (part: string, table: string, sums: string, rows: string, output: string) => [
    makeNode(
      "MatMulInteger",
      [rows, table, "", refs.zeroPoint],
      [`${p}/${part}/products`],
      `${p}/${part}/MatMulInteger`,
    ),
    makeNode(
      "Split",
      [`${p}/${part}/products`],
      [`${first}/${part}/row`, `${second}/${part}/row`],
      `${p}/${part}/Split`,
      { axis: { int: 1 } },
    ),
    ...finish(first, part, sums, `${first}/${part}/logits`),
    ...finish(second, part, sums, `${second}/${part}/logits`),
    makeNode(
      "Add",
      [`${first}/${part}/logits`, `${second}/${part}/logits`],
      [output],
      `${p}/${part}/Add`,
    ),
  ];
  const nodes = [
    quantize(hidden, first),
    ...residual(hidden, first, p),
    quantize(`${p}/residual`, second),
    ...prepare(first),
    ...prepare(second),
    // [1, S, width] twice → [1, 2S, width]: positions of pass 1, then those of pass 2.
    makeNode("Concat", [`${first}/q`, `${second}/q`], [`${p}/rows`], `${p}/Rows`, {
      axis: { int: 1 },
    }),
    ...project("all", refs.transposed, refs.columnSums, `${p}/rows`, "logits"),
  ];
  insertBefore(sub, refs.projection, nodes);
  removeNode(sub, refs.projection);
}

/** Σ over the width of (table − zeroPoint), per vocabulary entry, from the transposed table. */
export function columnSums(
  transposed: Uint8Array,
  width: number,
  vocabulary: number,
  zeroPoint: number,
): Int32Array {
  const sums = new Int32Array(vocabulary);
  for (let k = 0; k < width; k++) {
    const row = k * vocabulary;
    for (let v = 0; v < vocabulary; v++) {
      sums[v] = (sums[v] ?? 0) + (transposed[row + v] ?? 0) - zeroPoint;
    }
  }
  return sums;
}

/**
 * int8x2T as two MatMulInteger passes, each with its own zero point (the prompt branch).
 */
function twoPassLogits(sub: Graph, refs: TableRefs & { transposed: string }, p: string): void {
  const hidden = refs.projection.input[0] ?? "";
  const matmul = (name: string, table: string, output: string, label: string): Node =>
    makeNode(
      "MatMulInteger",
      [`${name}/q`, table, `${name}/zero`, refs.zeroPoint],
      [`${name}/${output}`],
      `${name}/${label}`,
    );
  const products = (name: string): Node[] => [
    matmul(name, refs.transposed, "int", "MatMulInteger"),
  ];
  const pass = (input: string, name: string, output: string): Node[] => [
    quantize(input, name),
    ...products(name),
    makeNode("Cast", [`${name}/int`], [`${name}/float`], `${name}/Cast`, {
      to: { int: DataType.FLOAT },
    }),
    makeNode("Mul", [`${name}/scale`, refs.scale], [`${name}/scales`], `${name}/Scales`),
    makeNode("Mul", [`${name}/float`, `${name}/scales`], [output], `${name}/Scale`),
  ];
  const first = `${p}/pass1`;
  const second = `${p}/pass2`;
  const sum = "logits";
  const nodes = [
    ...pass(hidden, first, `${first}/logits`),
    ...residual(hidden, first, p),
    ...pass(`${p}/residual`, second, `${second}/logits`),
    makeNode("Add", [`${first}/logits`, `${second}/logits`], [sum], `${p}/Add`),
  ];
  insertBefore(sub, refs.projection, nodes);
  removeNode(sub, refs.projection);
}

function transpose(data: Uint8Array, rows: number, columns: number): Uint8Array {
  if (data.byteLength !== rows * columns) {
    throw new GraphShapeError(`table has ${data.byteLength} bytes, expected ${rows} × ${columns}`);
  }
  const out = new Uint8Array(data.byteLength);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) out[c * rows + r] = data[r * columns + c] ?? 0;
  }
  return out;
}

/** The decoder's dynamic dims, as the export names them, and the sample each takes its value from. */
const DYNAMIC_DIMS: Record<string, keyof DimSample> = {
  batch_size: "batch",
  batch: "batch",
  decoder_sequence_length: "tokens",
  tokens: "tokens",
  past_decoder_sequence_length: "past",
  "encoder_sequence_length / 2": "frames",
  encoder_sequence_length_out: "frames",
  positions: "positions",
};

interface DimSample {
  batch: number;
  tokens: number;
  past: number;
  frames: number;
  positions: number;
}

/**
 * Where the shape folder looks: beams (batch 3) and single decodes, one-token steps and
 * multi-token runs, short and long caches and windows; every dim takes distinct values from sample
 * to sample, so no relation between dims holds on all of them by coincidence.
 */
const DIM_SAMPLES: DimSample[] = [
  { batch: 1, tokens: 1, past: 7, frames: 150, positions: 1 },
  { batch: 3, tokens: 1, past: 19, frames: 1500, positions: 2 },
  { batch: 2, tokens: 4, past: 3, frames: 77, positions: 3 },
  { batch: 5, tokens: 2, past: 30, frames: 40, positions: 4 },
  { batch: 4, tokens: 3, past: 1, frames: 23, positions: 5 },
];

/** Rewrite 9: the shape arithmetic of both branches folded (shape-fold.ts). */
export function foldDecoderShapes(model: Model): FoldReport {
  const samples = DIM_SAMPLES.map(
    (sample) =>
      new Map(
        model.graph.input.map((input) => [
          input.name,
          declaredDims(input).map((d) => {
            if (typeof d === "number") return d;
            const key = DYNAMIC_DIMS[d];
            if (!key)
              throw new GraphShapeError(`decoder input "${input.name}" has an unknown dim "${d}"`);
            return sample[key];
          }),
        ]),
      ),
  );
  return foldShapes(model.graph, samples);
}
