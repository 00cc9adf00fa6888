/**
 * Whisper encoder rewrite (see ../shared/WHISPER-NOTES.md, "Graph rewrites that worked"):
 *
 * 1. Only `last_hidden_state` stays a graph output. The stock file also returns the four
 *    self-attention maps (heads × T × T floats each), which ORT allocates even when not asked for.
 * 2. The fixed [1500, 384] positional table is sliced to the conv output's length, so any even
 *    mel frame count ≤ 3000 works (a 2-s utterance costs a 2-s pass, not a 30-s one).
 * 3. Self-attention is computed one head at a time: Q, Kᵀ and V are split along the head axis
 *    and each head runs MatMul → Softmax → MatMul on its own, then the heads are concatenated.
 *    Only one head's T × T map is alive at a time (at 30 s: 1500² × 4 B = 9 MB instead of 54 MB
 *    for the six heads, several times over with the intermediate copies).
 * 4. The nodes this leaves dead are pruned, and the stale value_info (which pins T = 1500) goes.
 *
 * The per-head graph does the same arithmetic on the same operands as the batched one, so at
 * 3000 frames the output is expected to be bit-identical to stock (checked by compare.ts).
 */
import {
  addInitializers,
  dims,
  expectOne,
  expectOnlyConsumer,
  expectPerm,
  expectProducer,
  type Graph,
  GraphShapeError,
  initializer,
  insertBefore,
  int64Tensor,
  intAttr,
  type Model,
  makeNode,
  removeNode,
  replaceInput,
} from "./onnx-graph.ts";

export interface EncoderShape {
  heads: number;
  /** Rows of the positional table: 1500 encoder positions = 3000 mel frames / conv stride 2. */
  positions: number;
}

const KEEP_OUTPUT = "last_hidden_state";
const POSITIONS = "embed_positions.weight";
const PREFIX = "earshot";

export function rewriteEncoder(model: Model, shape: EncoderShape): void {
  const graph = model.graph;
  keepOnlyHiddenState(graph);
  slicePositionalTable(graph, shape);
  const softmaxes = graph.node.filter((n) => n.opType === "Softmax");
  if (softmaxes.length === 0) throw new GraphShapeError("encoder has no attention Softmax");
  softmaxes.forEach((softmax, layer) => {
    attentionPerHead(graph, softmax.output[0] ?? "", layer, shape.heads);
  });
  // T is no longer 1500 everywhere: drop shape annotations rather than keep wrong ones.
  graph.valueInfo = [];
}

function keepOnlyHiddenState(graph: Graph): void {
  const kept = graph.output.filter((o) => o.name === KEEP_OUTPUT);
  if (kept.length !== 1) throw new GraphShapeError(`encoder has no output ${KEEP_OUTPUT}`);
  graph.output = kept;
}

/** Add(x, table[1500, 384]) → Add(x, Slice(table, 0, Shape(x)[1])). */
function slicePositionalTable(graph: Graph, shape: EncoderShape): void {
  const table = initializer(graph, POSITIONS);
  if (dims(table)[0] !== shape.positions) {
    throw new GraphShapeError(
      `${POSITIONS} has shape ${dims(table)}, expected ${shape.positions} rows`,
    );
  }
  const add = expectOne(
    graph.node.filter((n) => n.input.includes(POSITIONS)),
    `node reading ${POSITIONS}`,
  );
  if (add.opType !== "Add") throw new GraphShapeError(`${POSITIONS} feeds ${add.opType}, not Add`);
  const sequence = add.input.find((name) => name !== POSITIONS) ?? "";
  const p = `${PREFIX}/positions`;
  addInitializers(graph, [
    int64Tensor(`${p}/zero`, [0], [1]),
    int64Tensor(`${p}/one`, [1], [1]),
    int64Tensor(`${p}/two`, [2], [1]),
  ]);
  insertBefore(graph, add, [
    // [batch, T, 384] → [T]: the sequence length as a 1-element tensor, as Slice wants it.
    makeNode("Shape", [sequence], [`${p}/shape`], `${p}/Shape`),
    makeNode(
      "Slice",
      [`${p}/shape`, `${p}/one`, `${p}/two`, `${p}/zero`],
      [`${p}/length`],
      `${p}/SliceShape`,
    ),
    makeNode(
      "Slice",
      [POSITIONS, `${p}/zero`, `${p}/length`, `${p}/zero`],
      [`${p}/table`],
      `${p}/SliceTable`,
    ),
  ]);
  replaceInput(add, POSITIONS, `${p}/table`);
}

/**
 * The stock attention of one layer, from the Softmax outwards:
 *   q4, k4, v4: [B, H, T, 64] (Transpose perm 0,2,1,3 of the projections)
 *   scores = MatMul(Reshape(q4 → [B·H, T, 64]), Transpose(Reshape(k4 → [B·H, T, 64]), 0,2,1))
 *   probs  = Softmax(scores, axis 2) → Reshape → encoder_attentions.L → Reshape
 *   ctx    = MatMul(probs, Reshape(v4 → [B·H, T, 64])) → Reshape → ctx4 [B, H, T, 64]
 * is replaced by, per head h: MatMul(q4[:, h], k4[:, h]ᵀ) → Softmax(axis 3) → MatMul(·, v4[:, h]),
 * concatenated on the head axis into ctx4 (same name, so the rest of the layer is untouched).
 * Splitting the 4-D tensors on axis 1 keeps the graph correct for any batch size.
 */
function attentionPerHead(graph: Graph, probs: string, layer: number, heads: number): void {
  const softmax = expectProducer(graph, probs, "Softmax");
  if (intAttr(softmax, "axis", 1) !== 2) throw new GraphShapeError("unexpected Softmax axis");
  const scores = expectProducer(graph, softmax.input[0] ?? "", "MatMul");
  const q4 = headSplitSource(graph, expectProducer(graph, scores.input[0] ?? "", "Reshape"));
  const kT = expectProducer(graph, scores.input[1] ?? "", "Transpose");
  expectPerm(kT, [0, 2, 1]);
  const k4 = headSplitSource(graph, expectProducer(graph, kT.input[0] ?? "", "Reshape"));

  const toMap = expectOnlyConsumer(graph, probs, "Reshape");
  const fromMap = expectOnlyConsumer(graph, toMap.output[0] ?? "", "Reshape");
  const context = expectOnlyConsumer(graph, fromMap.output[0] ?? "", "MatMul");
  const v4 = headSplitSource(graph, expectProducer(graph, context.input[1] ?? "", "Reshape"));
  const toHeads = expectOnlyConsumer(graph, context.output[0] ?? "", "Reshape");
  const ctx4 = toHeads.output[0] ?? "";
  expectPerm(expectOnlyConsumer(graph, ctx4, "Transpose"), [0, 2, 1, 3]);

  const p = `${PREFIX}/layers.${layer}/attention`;
  const names = (what: string) => Array.from({ length: heads }, (_, h) => `${p}/${what}.${h}`);
  const [qs, ks, vs] = [names("q"), names("k"), names("v")];
  const nodes = [
    makeNode("Split", [q4], qs, `${p}/SplitQ`, { axis: { int: 1 } }),
    makeNode("Split", [k4], ks, `${p}/SplitK`, { axis: { int: 1 } }),
    makeNode("Split", [v4], vs, `${p}/SplitV`, { axis: { int: 1 } }),
  ];
  const contexts: string[] = [];
  for (let h = 0; h < heads; h++) {
    const head = `${p}/head.${h}`;
    // Node order is head by head, so ORT's topological order runs one head to the end before
    // starting the next, and each T × T map is freed before the next one is allocated.
    // Kᵀ per head, next to its MatMul as in the stock graph, so ORT can fold the Transpose into
    // the MatMul (transB) exactly as it does there.
    nodes.push(
      makeNode("Transpose", [ks[h] ?? ""], [`${head}/kT`], `${head}/TransposeK`, {
        perm: { ints: [0, 1, 3, 2] },
      }),
      makeNode("MatMul", [qs[h] ?? "", `${head}/kT`], [`${head}/scores`], `${head}/MatMul`),
      makeNode("Softmax", [`${head}/scores`], [`${head}/probs`], `${head}/Softmax`, {
        axis: { int: 3 },
      }),
      makeNode("MatMul", [`${head}/probs`, vs[h] ?? ""], [`${head}/context`], `${head}/MatMulV`),
    );
    contexts.push(`${head}/context`);
  }
  nodes.push(makeNode("Concat", contexts, [ctx4], `${p}/ConcatHeads`, { axis: { int: 1 } }));
  insertBefore(graph, toHeads, nodes);
  removeNode(graph, toHeads);
}

/** Reshape([B, H, T, 64] → [B·H, T, 64]) ← Transpose(perm 0,2,1,3): returns the 4-D input. */
function headSplitSource(graph: Graph, reshape: { input: string[] }): string {
  const source = reshape.input[0] ?? "";
  expectPerm(expectProducer(graph, source, "Transpose"), [0, 2, 1, 3]);
  return source;
}
