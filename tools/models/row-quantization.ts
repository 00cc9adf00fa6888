/**
 * Per-row dynamic quantization, for the decoder's draft path (draft-branch.ts).
 *
 * The export quantizes every activation per tensor (DynamicQuantizeLinear: one scale and zero
 * point for the whole [batch, rows, width] tensor). In a run of k draft rows that lets each row's
 * range set every other row's step, so the rows differ from k one-token steps. Here each row gets
 * its own scale and zero point, computed with DynamicQuantizeLinear's own arithmetic (the ONNX
 * definition, which ORT's kernels follow, fused or not):
 *
 *   lo = min(0, min x)   hi = max(0, max x)   s = (hi − lo) / 255
 *   z = round(clip(0 − lo / s, 0, 255))      q = clip(round(x / s) + z, 0, 255)
 *
 * with Round halving to even, as ORT's std::nearbyint does. On one row this is the per-tensor
 * quantization, so a row's integers are the one-token step's. (A row of zeros only, s = 0, is
 * where ORT substitutes s = 1; no row of a layer norm's or GELU's output is all zeros, so it is
 * not reproduced.)
 *
 * ORT's `MatMulInteger` takes only a scalar zero point for A, so the matmuls run without it and
 * each row's is subtracted afterwards, exactly, in int32 (as decoder-rewrite.ts sharedPassLogits
 * does for the two logit passes):
 *   Σₖ (aₖ − z)(wₖ − z_w) = Σₖ aₖ(wₖ − z_w) − z · Σₖ (wₖ − z_w)
 * with the weights' column sums Σₖ (wₖ − z_w) computed here once, from the stored weights.
 */

import {
  LOGIT_ROWS_OUTPUT,
  LOGIT_SCALES_OUTPUT,
  LOGIT_ZEROS_OUTPUT,
} from "../../src/stt/whisper/projection.ts";
import {
  addInitializers,
  byteScalar,
  consumers,
  DataType,
  describe,
  dims,
  expectOne,
  expectProducer,
  floatTensor,
  type Graph,
  GraphShapeError,
  initializer,
  insertBefore,
  int32Tensor,
  int64Tensor,
  makeNode,
  type Node,
  rawBytes,
  removeNode,
} from "./onnx-graph.ts";

const PREFIX = "earshot/rows";
/** uint8's levels: DynamicQuantizeLinear maps [lo, hi] onto 0..255. */
const LEVELS = 255;
/** Main-graph constants the nodes below read (added once by `addRowConstants`). */
export const ROW_CONSTANTS = {
  zero: `${PREFIX}/0`,
  levels: `${PREFIX}/255`,
  /** Reshape target: [1, rows, 1] → [1, rows] (the draft path's batch is 1). */
  rowVector: `${PREFIX}/row-vector`,
  startZero: `${PREFIX}/start-0`,
  endTwo: `${PREFIX}/end-2`,
} as const;

export function addRowConstants(graph: Graph): void {
  addInitializers(graph, [
    floatTensor(ROW_CONSTANTS.zero, [0], []),
    floatTensor(ROW_CONSTANTS.levels, [LEVELS], []),
    int64Tensor(ROW_CONSTANTS.rowVector, [1, -1], [2]),
    int64Tensor(ROW_CONSTANTS.startZero, [0], [1]),
    int64Tensor(ROW_CONSTANTS.endTwo, [2], [1]),
  ]);
}

/** What `quantizeRows` produces besides q, scale and zero (uint8), for callers that need them. */
export interface RowQuantization {
  nodes: Node[];
  /** The zero point as float [.., rows, 1] (exact: an integer 0..255). */
  zeroFloat: string;
  /** The zero point as int32 [.., rows, 1], for the int32 correction. */
  zero32: string;
}

/**
 * Nodes quantizing `x` [.., rows, width] per row into `q` (uint8, x's shape), `scale` (float
 * [.., rows, 1]) and `zero` (uint8 [.., rows, 1]), named under `p`.
 */
export function quantizeRows(
  x: string,
  [q, scale, zero]: readonly [string, string, string],
  p: string,
): RowQuantization {
  const { zero: f0, levels } = ROW_CONSTANTS;
  const lastAxis = { axes: { ints: [-1] }, keepdims: { int: 1 } };
  const nodes = [
    makeNode("ReduceMax", [x], [`${p}/max`], `${p}/ReduceMax`, lastAxis),
    makeNode("ReduceMin", [x], [`${p}/min`], `${p}/ReduceMin`, lastAxis),
    makeNode("Max", [`${p}/max`, f0], [`${p}/hi`], `${p}/Hi`),
    makeNode("Min", [`${p}/min`, f0], [`${p}/lo`], `${p}/Lo`),
    makeNode("Sub", [`${p}/hi`, `${p}/lo`], [`${p}/range`], `${p}/Range`),
    makeNode("Div", [`${p}/range`, levels], [scale], `${p}/Scale`),
    makeNode("Div", [`${p}/lo`, scale], [`${p}/lo-steps`], `${p}/LoSteps`),
    makeNode("Sub", [f0, `${p}/lo-steps`], [`${p}/zero-raw`], `${p}/ZeroRaw`),
    makeNode("Clip", [`${p}/zero-raw`, f0, levels], [`${p}/zero-clipped`], `${p}/ZeroClip`),
    makeNode("Round", [`${p}/zero-clipped`], [`${p}/zero-float`], `${p}/ZeroRound`),
    makeNode("Cast", [`${p}/zero-float`], [zero], `${p}/Zero`, { to: { int: DataType.UINT8 } }),
    makeNode("Cast", [`${p}/zero-float`], [`${p}/zero32`], `${p}/Zero32`, {
      to: { int: DataType.INT32 },
    }),
    makeNode("Div", [x, scale], [`${p}/steps`], `${p}/Steps`),
    makeNode("Round", [`${p}/steps`], [`${p}/rounded`], `${p}/Round`),
    makeNode("Add", [`${p}/rounded`, `${p}/zero-float`], [`${p}/shifted`], `${p}/Shift`),
    makeNode("Clip", [`${p}/shifted`, f0, levels], [`${p}/clipped`], `${p}/Clip`),
    makeNode("Cast", [`${p}/clipped`], [q], `${p}/Q`, { to: { int: DataType.UINT8 } }),
  ];
  return { nodes, zeroFloat: `${p}/zero-float`, zero32: `${p}/zero32` };
}

/**
 * Makes `quantize`, a DynamicQuantizeLinear of the body whose outputs feed only MatMulIntegers (as
 * A, with its zero point) and Muls (its scale), quantize per row: the same output names, now
 * [.., rows, 1] for scale and zero; each MatMulInteger runs without A's zero point and its int32
 * result is corrected under its old name. The weights (B, an initializer of `graph` with a scalar
 * zero point) are untouched; their column sums are added to `graph` once per weight.
 */
export function quantizeRowsOf(graph: Graph, sub: Graph, quantize: Node, p: string): void {
  const [x, q, scale, zero] = [quantize.input[0], ...quantize.output];
  if (x === undefined || q === undefined || scale === undefined || zero === undefined) {
    throw new GraphShapeError(`${describe(quantize)} lacks an input or output`);
  }
  const matmuls = consumers(sub, q);
  const readers = [...new Set([...matmuls, ...consumers(sub, zero), ...consumers(sub, scale)])];
  for (const reader of readers) {
    const asA =
      reader.opType === "MatMulInteger" && reader.input[0] === q && reader.input[2] === zero;
    const asScale = reader.opType === "Mul" && reader.input.includes(scale);
    if (!asA && !asScale) {
      throw new GraphShapeError(`${describe(quantize)} is read by ${describe(reader)}`);
    }
  }
  if (matmuls.length === 0) throw new GraphShapeError(`${describe(quantize)} feeds no matmul`);
  const rows = quantizeRows(x, [q, scale, zero], p);
  insertBefore(sub, quantize, rows.nodes);
  removeNode(sub, quantize);
  for (const matmul of matmuls) {
    const sums = weightColumnSums(graph, matmul);
    const out = matmul.output[0] ?? "";
    const raw = `${out}/${PREFIX}-without-zero`;
    matmul.input = [q, matmul.input[1] ?? "", "", matmul.input[3] ?? ""];
    matmul.output = [raw];
    const at = sub.node.indexOf(matmul) + 1;
    sub.node = [
      ...sub.node.slice(0, at),
      makeNode("Mul", [rows.zero32, sums], [`${raw}/offset`], `${matmul.name}/${PREFIX}-Offset`),
      makeNode("Sub", [raw, `${raw}/offset`], [out], `${matmul.name}/${PREFIX}-Center`),
      ...sub.node.slice(at),
    ];
  }
}

/** The int32 column sums of a MatMulInteger's weights (its B), added to `graph` if new. */
function weightColumnSums(graph: Graph, matmul: Node): string {
  const weights = initializer(graph, matmul.input[1] ?? "");
  const zeroPoint = initializer(graph, matmul.input[3] ?? "");
  const name = `${weights.name}/${PREFIX}-column-sums`;
  if (graph.initializer.some((t) => t.name === name)) return name;
  const shape = dims(weights);
  const [depth, columns] = shape;
  const signed = weights.dataType === DataType.INT8;
  if (
    !(signed || weights.dataType === DataType.UINT8) ||
    zeroPoint.dataType !== weights.dataType ||
    depth === undefined ||
    columns === undefined ||
    shape.length !== 2
  ) {
    throw new GraphShapeError(
      `${describe(matmul)}: weights ${weights.name} are not 8-bit [K, N] with a scalar zero point`,
    );
  }
  const bytes = rawBytes(weights);
  const values = signed ? new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
  const zero = byteScalar(zeroPoint);
  const sums = new Int32Array(columns);
  for (let k = 0; k < depth; k++) {
    for (let n = 0; n < columns; n++) {
      sums[n] = (sums[n] ?? 0) + (values[k * columns + n] ?? 0) - zero;
    }
  }
  addInitializers(graph, [int32Tensor(name, sums, [columns])]);
  return name;
}

/**
 * The draft path's two logit passes (decoder-rewrite.ts rewrite 8: the hidden state quantized,
 * then the part of it the first quantization missed) per row: `logit_rows` as before, and
 * `logit_zeros` / `logit_scales` [1, 2·rows], each row's pass-1 values then its pass-2 values.
 * Pass 1's DequantizeLinear (which takes a scalar zero point in opset 11) becomes its arithmetic,
 * (float(q) − z) · s, per row: q − z is an integer below 2⁸, exact in float, so the one rounding is
 * the product's, as in ORT's kernel.
 */
export function perRowLogits(sub: Graph, [first, second]: readonly [Node, Node]): void {
  const [q1, s1, z1] = first.output;
  const dequantize = expectOne(
    consumers(sub, q1 ?? "").filter((n) => n.opType === "DequantizeLinear"),
    "dequantization of the first logit pass",
  );
  const p = `${PREFIX}/logits`;
  const pass1 = quantizeRows(first.input[0] ?? "", outputs(first), `${p}/pass1`);
  insertBefore(sub, first, pass1.nodes);
  removeNode(sub, first);
  const represented = dequantize.output[0] ?? "";
  insertBefore(sub, dequantize, [
    makeNode("Cast", [q1 ?? ""], [`${p}/pass1/q-float`], `${p}/pass1/QFloat`, {
      to: { int: DataType.FLOAT },
    }),
    makeNode(
      "Sub",
      [`${p}/pass1/q-float`, pass1.zeroFloat],
      [`${p}/pass1/q-centered`],
      `${p}/pass1/QCentered`,
    ),
    makeNode("Mul", [`${p}/pass1/q-centered`, s1 ?? ""], [represented], `${p}/pass1/Represented`),
  ]);
  removeNode(sub, dequantize);
  insertBefore(
    sub,
    second,
    quantizeRows(second.input[0] ?? "", outputs(second), `${p}/pass2`).nodes,
  );
  removeNode(sub, second);
  // Each pass's [1, rows, 1] zero point and scale product → [1, rows], side by side on axis 1.
  for (const name of [LOGIT_ZEROS_OUTPUT, LOGIT_SCALES_OUTPUT]) {
    const concat = expectProducer(sub, name, "Concat");
    for (const input of concat.input) {
      const vector = expectProducer(sub, input, "Reshape");
      vector.input = [vector.input[0] ?? "", ROW_CONSTANTS.rowVector];
    }
    concat.attribute = makeNode("Concat", [], [], "", { axis: { int: 1 } }).attribute;
  }
  if (z1 === undefined) throw new GraphShapeError(`${describe(first)} has no zero point`);
}

/**
 * The step's and the prompt's per-tensor zero points and scales, repeated per quantized row
 * ([batch, rows] per pass, from `logit_rows`' pass-1 shape), so that every branch returns
 * `logit_zeros` / `logit_scales` as [batch, 2·rows].
 */
export function repeatLogitParameters(sub: Graph): void {
  const rows = expectProducer(sub, LOGIT_ROWS_OUTPUT, "Concat");
  const p = `${PREFIX}/${sub.name}/logit-parameters`;
  const concats = [LOGIT_ZEROS_OUTPUT, LOGIT_SCALES_OUTPUT].map((name) =>
    expectProducer(sub, name, "Concat"),
  );
  const vectors = concats.flatMap((concat) =>
    concat.input.map((input) => expectProducer(sub, input, "Reshape")),
  );
  const earliest = vectors.reduce((a, b) => (sub.node.indexOf(a) < sub.node.indexOf(b) ? a : b));
  insertBefore(sub, earliest, [
    makeNode("Shape", [rows.input[0] ?? ""], [`${p}/q-shape`], `${p}/QShape`),
    makeNode(
      "Slice",
      [`${p}/q-shape`, ROW_CONSTANTS.startZero, ROW_CONSTANTS.endTwo],
      [`${p}/shape`],
      `${p}/Shape`,
    ),
  ]);
  for (const vector of vectors) {
    const out = vector.output[0] ?? "";
    const scalar = vector.input[0] ?? "";
    insertBefore(sub, vector, [makeNode("Expand", [scalar, `${p}/shape`], [out], `${out}/Repeat`)]);
    removeNode(sub, vector);
  }
  for (const concat of concats) {
    concat.attribute = makeNode("Concat", [], [], "", { axis: { int: 1 } }).attribute;
  }
}

function outputs(quantize: Node): [string, string, string] {
  const [q, scale, zero] = quantize.output;
  if (q === undefined || scale === undefined || zero === undefined) {
    throw new GraphShapeError(`${describe(quantize)} lacks an output`);
  }
  return [q, scale, zero];
}
