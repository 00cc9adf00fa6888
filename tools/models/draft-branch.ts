/**
 * Rewrite 10 (prepare.ts, after foldDecoderShapes): the decoder's cache branch gets a draft path,
 * where k tokens after the cache give the logits' quantized rows and the self-attention cache that
 * k one-token steps give, bit for bit (docs/decoder-profile.md, "Drafts in the cache branch").
 *
 * The cache branch (one token a step, or one per beam) becomes an If on a new input,
 * `use_draft_branch` (DRAFT_BRANCH_INPUT):
 * - false, the step: the branch as it was, its self-attention padded to a fixed `positions`
 *   columns (Whisper's max_target_positions: no decode holds more): scores with −∞, values with
 *   0. A Softmax and attention·V over past + j + 1 columns round otherwise than over past + k,
 *   so both paths use the same width. Nothing else changes: ORT fuses its kernels as before.
 * - true, the draft path (batch 1, k tokens): the same nodes on a copy, and
 *   1. a causal mask before the self-attention Softmaxes (the export traced the branch with one
 *      token, so without it every row sees the rows after it);
 *   2. every activation quantized per row (row-quantization.ts), the two logit passes included;
 *   3. the cross-attention's attention·V with the rows in the batch axis (a matmul with M = k
 *      rounds otherwise than k with M = 1).
 * The weights are the main graph's initializers, read by both paths; only the weights' column
 * sums are added (row-quantization.ts, ~60 KB).
 *
 * `logit_zeros` and `logit_scales` become per quantized row, [batch, 2·rows] like `logit_rows`'
 * leading dims, in every branch: the draft path's differ per row; the step's and the prompt's are
 * their per-tensor values repeated (projection.ts reads either form the same way).
 *
 * The rewrite recognises what it changes (the self- and cross-attention Softmaxes and their
 * attention·V, the body's 6 quantizations a layer, the logit passes) and refuses any other graph.
 */
import { DRAFT_BRANCH_INPUT } from "../../src/stt/whisper/decode-types.ts";
import {
  LOGIT_ROWS_OUTPUT,
  LOGIT_SCALES_OUTPUT,
  LOGIT_ZEROS_OUTPUT,
} from "../../src/stt/whisper/projection.ts";
import {
  addInitializers,
  consumers,
  copyGraph,
  DataType,
  describe,
  expectOne,
  expectProducer,
  floatTensor,
  type Graph,
  GraphShapeError,
  graphAttribute,
  insertBefore,
  int64Tensor,
  intAttr,
  type Model,
  makeNode,
  type Node,
  subgraph,
  tensorValueInfo,
  type ValueInfo,
} from "./onnx-graph.ts";
import {
  addRowConstants,
  perRowLogits,
  quantizeRowsOf,
  repeatLogitParameters,
} from "./row-quantization.ts";

const PREFIX = "earshot/draft";
const SELF_VALUE = /^present\.\d+\.decoder\.value$/;
const CROSS_VALUE = /^past_key_values\.\d+\.encoder\.value$/;
/** Activations quantized per layer: self-attention, its output, cross-attention, its output, fc1, fc2. */
const QUANTIZATIONS_PER_LAYER = 6;

export interface DraftBranchShape {
  /** Decoder layers (config.json decoder_layers). */
  layers: number;
  /** Columns every self-attention is padded to (config.json max_target_positions: 448). */
  positions: number;
}

export interface DraftBranchReport {
  stepNodes: number;
  draftNodes: number;
}

interface Attention {
  softmax: Node;
  /** The MatMul of the Softmax's output with the values. */
  values: Node;
}

interface CacheBranch {
  self: Attention[];
  cross: Attention[];
  /** The body's DynamicQuantizeLinears (each feeding MatMulIntegers). */
  body: Node[];
  /** The two logit passes: the hidden state's quantization, then its residual's. */
  logitPasses: [Node, Node];
}

const C = {
  minusInfinity: `${PREFIX}/-inf`,
  zero: `${PREFIX}/0`,
  columns: `${PREFIX}/columns`,
  positions: `${PREFIX}/positions`,
  zeroIndex: `${PREFIX}/0-i64`,
  one: `${PREFIX}/1`,
  two: `${PREFIX}/2`,
  zeros7: `${PREFIX}/zeros-7`,
  zeros6: `${PREFIX}/zeros-6`,
  zeros1: `${PREFIX}/zeros-1`,
} as const;

export function addDraftBranch(model: Model, shape: DraftBranchShape): DraftBranchReport {
  const graph = model.graph;
  const branch = expectOne(
    graph.node.filter((n) => n.opType === "If"),
    "If node in the merged decoder",
  );
  const step = subgraph(branch, "then_branch");
  const prompt = subgraph(branch, "else_branch");
  if (graph.input.some((i) => i.name === DRAFT_BRANCH_INPUT)) {
    throw new GraphShapeError(`the decoder already has ${DRAFT_BRANCH_INPUT}`);
  }
  // Both paths recognised before anything changes, so a refusal leaves the model as it was.
  const parts = recognise(step, shape);
  const draft = copyGraph(step);
  const draftParts = recognise(draft, shape);
  addConstants(graph, shape);
  padSelfAttention(step, parts.self);
  padSelfAttention(draft, draftParts.self);
  maskSelfAttention(draft, draftParts.self);
  for (const { values } of draftParts.cross) rowsInBatch(draft, values);
  draftParts.body.forEach((quantize, i) => {
    quantizeRowsOf(graph, draft, quantize, `${PREFIX}/rows/${i}`);
  });
  perRowLogits(draft, draftParts.logitPasses);
  repeatLogitParameters(step);
  repeatLogitParameters(prompt);

  const stepNodes = step.node.length;
  const ordinary = copyGraph(step);
  ordinary.name = "step";
  draft.name = "draft";
  const names = step.output.map((o) => o.name);
  const inner = makeNode("If", [DRAFT_BRANCH_INPUT], names, `${PREFIX}/If`);
  inner.attribute = [graphAttribute("then_branch", draft), graphAttribute("else_branch", ordinary)];
  // The inner branches hold their copies of the branch's own initializers (the folded Reshape
  // targets) and value infos; the cache branch keeps only the If.
  step.node = [inner];
  step.initializer = [];
  step.valueInfo = [];
  graph.input = [...graph.input, tensorValueInfo(DRAFT_BRANCH_INPUT, DataType.BOOL, [1])];
  for (const g of [graph, step, prompt, draft, ordinary]) g.output = perRowOutputs(g.output);
  return { stepNodes, draftNodes: draft.node.length };
}

function recognise(sub: Graph, shape: DraftBranchShape): CacheBranch {
  const self: Attention[] = [];
  const cross: Attention[] = [];
  for (const softmax of sub.node.filter((n) => n.opType === "Softmax")) {
    const values = expectOne(consumers(sub, softmax.output[0] ?? ""), `reader of ${softmax.name}`);
    const v = values.input[1] ?? "";
    if (values.opType !== "MatMul" || values.input[0] !== softmax.output[0]) {
      throw new GraphShapeError(`${describe(softmax)} is not followed by attention·V`);
    }
    // Axis −1 (opset 11: flattened to [rows, last]) or 3 of the 4-D scores: the last axis.
    if (![-1, 3].includes(intAttr(softmax, "axis", 1))) {
      throw new GraphShapeError(`${describe(softmax)} is not over the last axis`);
    }
    if (SELF_VALUE.test(v)) self.push({ softmax, values });
    else if (CROSS_VALUE.test(v)) cross.push({ softmax, values });
    else throw new GraphShapeError(`${describe(values)} reads values ${v}`);
  }
  if (self.length !== shape.layers || cross.length !== shape.layers) {
    throw new GraphShapeError(
      `expected ${shape.layers} self- and ${shape.layers} cross-attention Softmaxes, found ` +
        `${self.length} and ${cross.length}`,
    );
  }
  for (const { softmax } of self) {
    // The scores are Q · Transpose(present key, [0, 1, 3, 2]): 4-D, as the padding assumes.
    const scores = expectProducer(sub, softmax.input[0] ?? "", "MatMul");
    const keys = expectProducer(sub, scores.input[1] ?? "", "Transpose");
    if (!/^present\.\d+\.decoder\.key$/.test(keys.input[0] ?? "")) {
      throw new GraphShapeError(`${describe(scores)} does not read a present key`);
    }
  }
  const rows = expectProducer(sub, LOGIT_ROWS_OUTPUT, "Concat");
  const passes = rows.input.map((q) => expectProducer(sub, q, "DynamicQuantizeLinear"));
  const [first, second] = passes;
  if (!first || !second || passes.length !== 2) {
    throw new GraphShapeError(`${LOGIT_ROWS_OUTPUT} is not two quantizations`);
  }
  const body = sub.node.filter(
    (n) => n.opType === "DynamicQuantizeLinear" && n !== first && n !== second,
  );
  if (body.length !== QUANTIZATIONS_PER_LAYER * shape.layers) {
    throw new GraphShapeError(
      `expected ${QUANTIZATIONS_PER_LAYER * shape.layers} quantized activations, found ${body.length}`,
    );
  }
  return { self, cross, body, logitPasses: [first, second] };
}

function addConstants(graph: Graph, shape: DraftBranchShape): void {
  addRowConstants(graph);
  addInitializers(graph, [
    floatTensor(C.minusInfinity, [Number.NEGATIVE_INFINITY], []),
    floatTensor(C.zero, [0], []),
    int64Tensor(
      C.columns,
      Array.from({ length: shape.positions }, (_, i) => i),
      [shape.positions],
    ),
    int64Tensor(C.positions, [shape.positions], []),
    int64Tensor(C.zeroIndex, [0], []),
    int64Tensor(C.one, [1], []),
    int64Tensor(C.two, [2], []),
    int64Tensor(C.zeros7, [0, 0, 0, 0, 0, 0, 0], [7]),
    int64Tensor(C.zeros6, [0, 0, 0, 0, 0, 0], [6]),
    int64Tensor(C.zeros1, [0], [1]),
  ]);
}

/** The size of `value`'s dim `axis`, as an int64 scalar named `output`. */
function dimOf(value: string, axis: string, output: string): Node[] {
  return [
    makeNode("Shape", [value], [`${output}/shape`], `${output}/Shape`),
    makeNode("Gather", [`${output}/shape`, axis], [output], `${output}/Gather`, {
      axis: { int: 0 },
    }),
  ];
}

/**
 * Scores [b, heads, rows, S] → [.., positions] with −∞, values [b, heads, S, d] → [.., positions,
 * d] with 0 (S = past + rows, the same for every layer): exp(−∞) = 0, and 0 × value adds nothing.
 */
function padSelfAttention(sub: Graph, self: Attention[]): void {
  const first = self[0]?.softmax;
  if (!first) throw new GraphShapeError("no self-attention to pad");
  const p = `${PREFIX}/pad`;
  insertBefore(sub, first, [
    ...dimOf("present.0.decoder.key", C.two, `${p}/columns`),
    makeNode("Sub", [C.positions, `${p}/columns`], [`${p}/extra`], `${p}/Extra`),
    makeNode("Unsqueeze", [`${p}/extra`], [`${p}/extra-1`], `${p}/Extra1`, { axes: { ints: [0] } }),
    makeNode("Concat", [C.zeros7, `${p}/extra-1`], [`${p}/scores`], `${p}/ScorePads`, {
      axis: { int: 0 },
    }),
    makeNode("Concat", [C.zeros6, `${p}/extra-1`, C.zeros1], [`${p}/values`], `${p}/ValuePads`, {
      axis: { int: 0 },
    }),
  ]);
  for (const { softmax, values } of self) {
    const scores = softmax.input[0] ?? "";
    const v = values.input[1] ?? "";
    insertBefore(sub, softmax, [
      makeNode(
        "Pad",
        [scores, `${p}/scores`, C.minusInfinity],
        [`${scores}/padded`],
        `${softmax.name}/Pad`,
      ),
    ]);
    softmax.input = [`${scores}/padded`];
    insertBefore(sub, values, [
      makeNode("Pad", [v, `${p}/values`, C.zero], [`${v}/padded`], `${values.name}/Pad`),
    ]);
    values.input = [values.input[0] ?? "", `${v}/padded`];
  }
}

/** Row j of k (at position past + j) sees columns 0..past + j: the rest of its scores are −∞. */
function maskSelfAttention(sub: Graph, self: Attention[]): void {
  const first = self[0]?.softmax;
  if (!first) throw new GraphShapeError("no self-attention to mask");
  const m = `${PREFIX}/mask`;
  insertBefore(sub, first, [
    ...dimOf("past_key_values.0.decoder.key", C.two, `${m}/past`),
    ...dimOf("input_ids", C.one, `${m}/rows`),
    makeNode("Range", [C.zeroIndex, `${m}/rows`, C.one], [`${m}/row`], `${m}/Row`),
    makeNode("Unsqueeze", [`${m}/row`], [`${m}/row-1`], `${m}/Row1`, { axes: { ints: [1] } }),
    makeNode("Add", [`${m}/row-1`, `${m}/past`], [`${m}/last`], `${m}/Last`),
    makeNode("Greater", [C.columns, `${m}/last`], [`${m}/hidden`], `${m}/Hidden`),
  ]);
  for (const { softmax } of self) {
    const scores = softmax.input[0] ?? "";
    insertBefore(sub, softmax, [
      makeNode(
        "Where",
        [`${m}/hidden`, C.minusInfinity, scores],
        [`${scores}/masked`],
        `${softmax.name}/Mask`,
      ),
    ]);
    softmax.input = [`${scores}/masked`];
  }
}

/** probs [1, heads, k, F] → [k, heads, 1, F] through the matmul, and back: k products of M = 1. */
function rowsInBatch(sub: Graph, values: Node): void {
  const perm = { perm: { ints: [2, 1, 0, 3] } };
  const probs = values.input[0] ?? "";
  const out = values.output[0] ?? "";
  insertBefore(sub, values, [
    makeNode("Transpose", [probs], [`${probs}/rows-in-batch`], `${values.name}/RowsIn`, perm),
  ]);
  values.input = [`${probs}/rows-in-batch`, values.input[1] ?? ""];
  values.output = [`${out}/rows-in-batch`];
  const at = sub.node.indexOf(values) + 1;
  sub.node = [
    ...sub.node.slice(0, at),
    makeNode("Transpose", [`${out}/rows-in-batch`], [out], `${values.name}/RowsOut`, perm),
    ...sub.node.slice(at),
  ];
}

/** `logit_zeros` and `logit_scales` declared [batch, 2·rows], as every branch now returns them. */
function perRowOutputs(outputs: ValueInfo[]): ValueInfo[] {
  return outputs.map((o) =>
    o.name === LOGIT_ZEROS_OUTPUT || o.name === LOGIT_SCALES_OUTPUT
      ? tensorValueInfo(o.name, o.name === LOGIT_ZEROS_OUTPUT ? DataType.UINT8 : DataType.FLOAT, [
          "batch",
          "quantized_rows",
        ])
      : o,
  );
}
