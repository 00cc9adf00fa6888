/**
 * Whisper merged-decoder rewrite (see ../shared/WHISPER-NOTES.md, "Graph rewrites that worked").
 * Production prepares rewrites 4, 5, 6, 8 (`external`) and 9; 1–3 keep the table in the graph
 * and are the reference the external projection is tested against, bit for bit. (The numbers are
 * the docs' labels; 7 is retired.)
 *
 * 1. The 8-bit vocabulary table [51865, 384] is stored once, transposed to [384, 51865]. The
 *    stock graph transposes and dequantizes it to float for the output projection in each If
 *    branch: 51865 × 384 × 4 B = 80 MB of float per step, plus two 20 MB transposed copies that
 *    ORT constant-folds at load.
 * 2. The embedding lookup becomes Gather(tableᵀ, ids, axis 1) → Transpose → the existing
 *    DequantizeLinear (same rows, same bytes, read from the other layout).
 * 3. Logits stay int8 ("int8x2T"): q = DynamicQuantizeLinear(hidden); logits ≈
 *    MatMulInteger(q, tableᵀ)·s_q·s_table, plus a second pass on the quantization error of the
 *    hidden state. The table side is exact (it is the stored int8 table); only the 384 hidden
 *    values are approximated, twice, which brings logits within ~0.003 of stock.
 * 4. The 8 attention outputs (decoder_attentions.*, cross_attentions.*) are removed.
 * 5. DynamicQuantizeLinear(encoder_hidden_states) moves from the main graph into the no-cache
 *    (else) branch, its only user: with the cache it ran every step for nothing.
 * 6. The no-cache branch projects only the positions named by a new input, `logit_positions`
 *    (int64 [P]). A prompt of previous text and keyterms is tens of tokens, and projecting each
 *    of them onto the vocabulary would cost one table pass per row once the rows no longer fit
 *    the table stream (a 50-token prompt: ~1 G multiply-adds); decoding needs two rows of it,
 *    <|startoftranscript|>'s (the no-speech probability, the language) and the last one's.
 * 8. `external`: the table leaves the graph (externalProjection); the projection runs in
 *    src/stt/whisper/projection.ts's WebAssembly kernel on the same integers and float steps
 *    (docs/decoder-profile.md, "The projection kernel").
 * 9. `foldDecoderShapes` (run by prepare.ts after the rest): both branches' shape arithmetic is
 *    folded (shape-fold.ts). Same arithmetic: outputs bit-identical; ~460 fewer nodes for ORT to
 *    dispatch every step.
 * The rest of both branches is untouched; the dead nodes are pruned by the caller.
 */

import {
  LOGIT_ROWS_OUTPUT as LOGIT_ROWS,
  LOGIT_SCALES_OUTPUT as LOGIT_SCALES,
  LOGIT_ZEROS_OUTPUT as LOGIT_ZEROS,
  TOKEN_ROWS_INPUT as TOKEN_ROWS,
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
  int32Tensor,
  int64Tensor,
  intAttr,
  type Model,
  makeNode,
  type Node,
  rawBytes,
  referencedNames,
  renameInput,
  replaceNode,
  subgraph,
  type Tensor,
  tensorValueInfo,
  uint8Scalar,
  uint8Tensor,
} from "./onnx-graph.ts";
import { type FoldReport, foldShapes } from "./shape-fold.ts";

type DecoderShape = { vocabulary: number; width: number };

const ATTENTION_OUTPUT = /^(decoder|cross)_attentions\.\d+$/;
const ENCODER_STATES = "encoder_hidden_states";
/** Graph input: which positions of the no-cache run's tokens get logits (int64 [P]). */
export const LOGIT_POSITIONS = "logit_positions";
const PREFIX = "earshot";

interface DecoderRewriteOptions {
  /** The cache branch's two logit passes share one MatMulInteger (default; off: the reference). */
  sharedCachePass?: boolean;
  /** The table leaves the graph (rewrite 8); the caller writes it to vocab-table.bin. */
  external?: boolean;
}

/** The table an `external` rewrite took out of the graph: uint8 [vocabulary, width], by id. */
export type ExternalTable = { rows: Uint8Array; zeroPoint: number };

/** One If branch and the stock projection onto the table in it. */
interface Branch {
  name: "with-cache" | "without-cache";
  graph: Graph;
  /** uint8 [vocabulary, width] */
  table: string;
  scale: string;
  zeroPoint: string;
  /** The MatMul producing `logits` (hidden × dequantized tableᵀ). */
  projection: Node;
  /** Its hidden-state input. */
  hidden: string;
}

export function rewriteDecoder(
  model: Model,
  shape: DecoderShape,
  { sharedCachePass = true, external = false }: DecoderRewriteOptions = {},
): ExternalTable | undefined {
  const graph = model.graph;
  const ifNode = expectOne(
    graph.node.filter((n) => n.opType === "If"),
    "If node in the merged decoder",
  );
  const withCache = subgraph(ifNode, "then_branch");
  const withoutCache = subgraph(ifNode, "else_branch");
  removeAttentionOutputs(graph, ifNode, [withCache, withoutCache]);
  moveEncoderQuantizationIntoBranch(graph, withCache, withoutCache);
  // Found before anything is rewritten (they look for the stock MatMul).
  const cached = findBranch(graph, "with-cache", withCache, shape);
  const prompt = findBranch(graph, "without-cache", withoutCache, shape);
  const branches = [cached, prompt];
  const table = initializer(graph, prompt.table);
  const zeroPoint = uint8Scalar(initializer(graph, prompt.zeroPoint));
  if (external) externalProjection(graph, ifNode, branches, shape);
  else inGraphProjection(graph, branches, table, zeroPoint, shape, sharedCachePass);
  graph.input = [...graph.input, tensorValueInfo(LOGIT_POSITIONS, DataType.INT64, ["positions"])];
  return external ? { rows: rawBytes(table), zeroPoint } : undefined;
}

/** Rewrites 1–3: the table stays in the graph, stored once, transposed. */
function inGraphProjection(
  graph: Graph,
  branches: Branch[],
  table: Tensor,
  zeroPoint: number,
  shape: DecoderShape,
  sharedCachePass: boolean,
): void {
  const transposedName = `${table.name}/${PREFIX}-transposed`;
  const columnSumsName = `${table.name}/${PREFIX}-column-sums`;
  const transposed = transpose(rawBytes(table), shape.vocabulary, shape.width);
  const sums = columnSums(rawBytes(table), shape.width, zeroPoint);
  addInitializers(graph, [
    uint8Tensor(transposedName, transposed, [shape.width, shape.vocabulary]),
    int32Tensor(columnSumsName, sums, [shape.vocabulary]),
  ]);
  for (const branch of branches) {
    rewriteEmbedding(branch, transposedName);
    // Only the cache branch, which runs once per token, shares one matmul between the passes. The
    // prompt branch runs once per utterance; sharing there too grew the heap after loading by
    // 1.2 MB and the 29-s peak past 92 MB (its [1, 2·3, vocabulary] int32 intermediates), for
    // nothing a person would notice.
    if (branch.name === "with-cache" && sharedCachePass) {
      sharedPassLogits(branch, transposedName, columnSumsName);
    } else {
      twoPassLogits(branch, transposedName);
    }
  }
}

/** logits = MatMul(hidden, DequantizeLinear(Transpose(table), scale, zeroPoint)). */
function findBranch(graph: Graph, name: Branch["name"], sub: Graph, shape: DecoderShape): Branch {
  const projection = expectProducer(sub, "logits", "MatMul");
  const dequantize = expectProducer(sub, projection.input[1] ?? "", "DequantizeLinear");
  const transposeNode = expectProducer(sub, dequantize.input[0] ?? "", "Transpose");
  const table = initializer(graph, transposeNode.input[0] ?? "");
  const scale = initializer(graph, dequantize.input[1] ?? "");
  const zeroPoint = initializer(graph, dequantize.input[2] ?? "");
  const tableDims = dims(table);
  if (
    table.dataType !== DataType.UINT8 ||
    tableDims.join() !== `${shape.vocabulary},${shape.width}` ||
    dims(scale).length !== 0 ||
    dims(zeroPoint).length !== 0
  ) {
    throw new GraphShapeError(
      `vocabulary table ${table.name} is ${tableDims} of type ${table.dataType}, expected uint8 ` +
        `[${shape.vocabulary}, ${shape.width}] with scalar scale and zero point`,
    );
  }
  return {
    name,
    graph: sub,
    table: table.name,
    scale: scale.name,
    zeroPoint: zeroPoint.name,
    projection,
    hidden: projection.input[0] ?? "",
  };
}

/** The branch's embedding lookup: the Gather reading the table. */
function embeddingGather(branch: Branch): Node {
  return expectOne(
    branch.graph.node.filter((n) => n.opType === "Gather" && n.input[0] === branch.table),
    "embedding Gather",
  );
}

/**
 * The hidden state quantized twice, as int8x2T does: pass 1 (`${p}/pass1/q`, its `scale` and
 * `zero`), then pass 2 of what pass 1 could not represent, `${p}/residual`.
 *
 * Rewrite 6: in the no-cache branch the hidden state [1, S, width] is first cut to the positions
 * in `logit_positions`, so every logit node after it (quantization, both passes) sees
 * [1, P, width]; anything else in the branch keeps every position.
 */
function quantizeTwice(branch: Branch, p: string): Node[] {
  const quantize = (input: string, pass: string): Node =>
    makeNode(
      "DynamicQuantizeLinear",
      [input],
      [`${pass}/q`, `${pass}/scale`, `${pass}/zero`],
      `${pass}/Quantize`,
    );
  const select = branch.name === "without-cache";
  const hidden = select ? `${PREFIX}/without-cache/logit-rows` : branch.hidden;
  const selection = makeNode(
    "Gather",
    [branch.hidden, LOGIT_POSITIONS],
    [hidden],
    `${PREFIX}/without-cache/Rows`,
    { axis: { int: 1 } },
  );
  const first = `${p}/pass1`;
  return [
    ...(select ? [selection] : []),
    quantize(hidden, first),
    makeNode(
      "DequantizeLinear",
      [`${first}/q`, `${first}/scale`, `${first}/zero`],
      [`${first}/represented`],
      `${first}/Dequantize`,
    ),
    makeNode("Sub", [hidden, `${first}/represented`], [`${p}/residual`], `${p}/Residual`),
    quantize(`${p}/residual`, `${p}/pass2`),
  ];
}

/** A pass's scale times the table's: `${pass}/scales`. */
function passScales(pass: string, branch: Branch): Node {
  return makeNode("Mul", [`${pass}/scale`, branch.scale], [`${pass}/scales`], `${pass}/Scales`);
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
  ifNode: Node,
  branches: Branch[],
  shape: DecoderShape,
): void {
  const one = `${PREFIX}/shape-one`;
  addInitializers(graph, [int64Tensor(one, [1], [1])]);
  graph.input = [
    ...graph.input,
    tensorValueInfo(TOKEN_ROWS, DataType.UINT8, ["batch", "tokens", shape.width]),
  ];
  for (const branch of branches) {
    const gather = embeddingGather(branch);
    renameInput(branch.graph.node, gather.output[0] ?? "", TOKEN_ROWS);
    replaceNode(branch.graph, gather);

    const p = `${PREFIX}/${branch.name}/logits`;
    const [first, second] = [`${p}/pass1`, `${p}/pass2`];
    const perPass = (pass: string): Node[] => [
      passScales(pass, branch),
      makeNode("Reshape", [`${pass}/scales`, one], [`${pass}/scales-1`], `${pass}/ScalesVector`),
      makeNode("Reshape", [`${pass}/zero`, one], [`${pass}/zero-1`], `${pass}/ZeroVector`),
    ];
    const concat = (part: string, output: string, label: string, axis: number): Node =>
      makeNode("Concat", [`${first}/${part}`, `${second}/${part}`], [output], `${p}/${label}`, {
        axis: { int: axis },
      });
    replaceNode(branch.graph, branch.projection, [
      ...quantizeTwice(branch, p),
      ...perPass(first),
      ...perPass(second),
      concat("q", LOGIT_ROWS, "Rows", 1),
      concat("zero-1", LOGIT_ZEROS, "Zeros", 0),
      concat("scales-1", LOGIT_SCALES, "ScalesAll", 0),
    ]);
  }
  const outputs = () => [
    tensorValueInfo(LOGIT_ROWS, DataType.UINT8, ["batch", "rows", shape.width]),
    tensorValueInfo(LOGIT_ZEROS, DataType.UINT8, [2]),
    tensorValueInfo(LOGIT_SCALES, DataType.FLOAT, [2]),
  ];
  const replaceLogits = <T>(list: T[], added: T[], name: (item: T) => string): T[] => {
    const at = list.findIndex((item) => name(item) === "logits");
    if (at < 0) throw new GraphShapeError("decoder has no logits output");
    return [...list.slice(0, at), ...added, ...list.slice(at + 1)];
  };
  for (const g of [graph, ...branches.map((b) => b.graph)]) {
    g.output = replaceLogits(g.output, outputs(), (o) => o.name);
  }
  ifNode.output = replaceLogits(ifNode.output, [LOGIT_ROWS, LOGIT_ZEROS, LOGIT_SCALES], (o) => o);
}

function removeAttentionOutputs(graph: Graph, ifNode: Node, branches: Graph[]): void {
  const before = graph.output.length;
  graph.output = graph.output.filter((o) => !ATTENTION_OUTPUT.test(o.name));
  if (graph.output.length !== before - 8) {
    throw new GraphShapeError(
      `expected 8 attention outputs, found ${before - graph.output.length}`,
    );
  }
  const keep = ifNode.output.map((name) => !ATTENTION_OUTPUT.test(name));
  ifNode.output = ifNode.output.filter((_, i) => keep[i]);
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
  const readsIt = (n: Node) => quantize.output.some((name) => referencedNames(n).has(name));
  const mainReaders = graph.node.filter((n) => n !== quantize && n.opType !== "If" && readsIt(n));
  if (withCache.node.some(readsIt) || mainReaders.length > 0 || !withoutCache.node.some(readsIt)) {
    throw new GraphShapeError(`${describe(quantize)} is not used only by the no-cache branch`);
  }
  replaceNode(graph, quantize);
  withoutCache.node = [quantize, ...withoutCache.node];
}

/**
 * Rewrite 2: Gather(table, ids) → Transpose(Gather(tableᵀ, ids, axis 1), [1, 2, 0]): the same
 * [B, S, width].
 */
function rewriteEmbedding(branch: Branch, transposed: string): void {
  const gather = embeddingGather(branch);
  if (intAttr(gather, "axis", 0) !== 0) throw new GraphShapeError("embedding Gather axis is not 0");
  const p = `${PREFIX}/${branch.name}/embedding`;
  // [width, vocabulary] gathered on axis 1 with ids [B, S] gives [width, B, S].
  replaceNode(branch.graph, gather, [
    makeNode("Gather", [transposed, gather.input[1] ?? ""], [`${p}/columns`], `${p}/Gather`, {
      axis: { int: 1 },
    }),
    makeNode("Transpose", [`${p}/columns`], [gather.output[0] ?? ""], `${p}/Transpose`, {
      perm: { ints: [1, 2, 0] },
    }),
  ]);
}

/**
 * int8x2T with one integer matmul (the cache branch): both quantized rows (the hidden state and
 * its quantization error) go through a single MatMulInteger, so the 20 MB table is streamed once
 * per step instead of twice (the profile: docs/decoder-profile.md). ORT's MatMulInteger takes
 * only one zero point for A, and the two rows have their own, so A's zero point is left at 0 and
 * subtracted afterwards, exactly, in int32:
 *   Σₖ (aₖ − z)(bₖ − z_b) = Σₖ aₖ(bₖ − z_b) − z · Σₖ (bₖ − z_b) = row − z · columnSums
 * where columnSums [vocabulary] is computed here from the table. Each pass's int32 is therefore
 * the same integer as a MatMulInteger with its own zero point, and the float steps after it
 * (Cast, × its two scales, the Add) are the same as before: the logits are bit-identical.
 */
function sharedPassLogits(branch: Branch, transposed: string, sums: string): void {
  const p = `${PREFIX}/${branch.name}/logits`;
  const [first, second] = [`${p}/pass1`, `${p}/pass2`];
  // Per pass, once: its zero point as int32 and its two scales' product.
  const prepare = (pass: string): Node[] => [
    makeNode("Cast", [`${pass}/zero`], [`${pass}/zero32`], `${pass}/CastZero`, {
      to: { int: DataType.INT32 },
    }),
    passScales(pass, branch),
  ];
  // One pass's logits from its half of the shared product: (row − z·columnSums) · s · s_table.
  const finish = (pass: string): Node[] => {
    const q = `${pass}/all`;
    return [
      makeNode("Mul", [`${pass}/zero32`, sums], [`${q}/offset`], `${q}/Offset`),
      makeNode("Sub", [`${q}/row`, `${q}/offset`], [`${q}/int`], `${q}/Center`),
      makeNode("Cast", [`${q}/int`], [`${q}/float`], `${q}/Cast`, { to: { int: DataType.FLOAT } }),
      makeNode("Mul", [`${q}/float`, `${pass}/scales`], [`${q}/logits`], `${q}/Scale`),
    ];
  };
  replaceNode(branch.graph, branch.projection, [
    ...quantizeTwice(branch, p),
    ...prepare(first),
    ...prepare(second),
    // [1, S, width] twice → [1, 2S, width]: positions of pass 1, then those of pass 2.
    makeNode("Concat", [`${first}/q`, `${second}/q`], [`${p}/rows`], `${p}/Rows`, {
      axis: { int: 1 },
    }),
    makeNode(
      "MatMulInteger",
      [`${p}/rows`, transposed, "", branch.zeroPoint],
      [`${p}/all/products`],
      `${p}/all/MatMulInteger`,
    ),
    makeNode(
      "Split",
      [`${p}/all/products`],
      [`${first}/all/row`, `${second}/all/row`],
      `${p}/all/Split`,
      { axis: { int: 1 } },
    ),
    ...finish(first),
    ...finish(second),
    makeNode("Add", [`${first}/all/logits`, `${second}/all/logits`], ["logits"], `${p}/all/Add`),
  ]);
}

/** Σ over the width of (table − zeroPoint), per vocabulary entry. */
function columnSums(table: Uint8Array, width: number, zeroPoint: number): Int32Array {
  return Int32Array.from({ length: table.length / width }, (_, v) =>
    table.subarray(v * width, (v + 1) * width).reduce((sum, x) => sum + x - zeroPoint, 0),
  );
}

/** int8x2T as two MatMulInteger passes, each with its own zero point (the prompt branch). */
function twoPassLogits(branch: Branch, transposed: string): void {
  const p = `${PREFIX}/${branch.name}/logits`;
  const [first, second] = [`${p}/pass1`, `${p}/pass2`];
  const project = (pass: string): Node[] => [
    makeNode(
      "MatMulInteger",
      [`${pass}/q`, transposed, `${pass}/zero`, branch.zeroPoint],
      [`${pass}/int`],
      `${pass}/MatMulInteger`,
    ),
    makeNode("Cast", [`${pass}/int`], [`${pass}/float`], `${pass}/Cast`, {
      to: { int: DataType.FLOAT },
    }),
    passScales(pass, branch),
    makeNode("Mul", [`${pass}/float`, `${pass}/scales`], [`${pass}/logits`], `${pass}/Scale`),
  ];
  replaceNode(branch.graph, branch.projection, [
    ...quantizeTwice(branch, p),
    ...project(first),
    ...project(second),
    makeNode("Add", [`${first}/logits`, `${second}/logits`], ["logits"], `${p}/Add`),
  ]);
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

/**
 * Where the shape folder looks: beams (batch 3) and single decodes, one-token steps and
 * multi-token runs, short and long caches and windows; every dim takes distinct values from sample
 * to sample, so no relation between dims holds on all of them by coincidence.
 */
const DIM_SAMPLES = [
  { batch: 1, tokens: 1, past: 7, frames: 150, positions: 1 },
  { batch: 3, tokens: 1, past: 19, frames: 1500, positions: 2 },
  { batch: 2, tokens: 4, past: 3, frames: 77, positions: 3 },
  { batch: 5, tokens: 2, past: 30, frames: 40, positions: 4 },
  { batch: 4, tokens: 3, past: 1, frames: 23, positions: 5 },
];
type DimSample = (typeof DIM_SAMPLES)[number];

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

/** Rewrite 9: the shape arithmetic of both branches folded (shape-fold.ts). */
export function foldDecoderShapes(model: Model): FoldReport {
  const dimValue = (input: string, dim: number | string, sample: DimSample): number => {
    if (typeof dim === "number") return dim;
    const key = DYNAMIC_DIMS[dim];
    if (!key) throw new GraphShapeError(`decoder input "${input}" has an unknown dim "${dim}"`);
    return sample[key];
  };
  const samples = DIM_SAMPLES.map(
    (sample) =>
      new Map(
        model.graph.input.map((input) => [
          input.name,
          declaredDims(input).map((dim) => dimValue(input.name, dim, sample)),
        ]),
      ),
  );
  return foldShapes(model.graph, samples);
}
