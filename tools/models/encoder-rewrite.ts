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
 * 4. The stale value_info (which pins T = 1500) goes; prepare.ts prunes the nodes left dead.
 *
 * The per-head graph does the same arithmetic on the same operands as the batched one, so at
 * 3000 frames the output is bit-identical to stock (test/graph-rewrite.test.ts).
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
  renameInput,
  replaceNode,
} from "./onnx-graph.ts";

/** `positions`: rows of the positional table, 1500 = 3000 mel frames / conv stride 2. */
type EncoderShape = { heads: number; positions: number };

const KEEP_OUTPUT = "last_hidden_state";
const POSITIONS = "embed_positions.weight";
const PREFIX = "earshot";

export function rewriteEncoder(model: Model, shape: EncoderShape): void {
  const graph = model.graph;
  graph.output = [
    expectOne(
      graph.output.filter((o) => o.name === KEEP_OUTPUT),
      KEEP_OUTPUT,
    ),
  ];
  slicePositionalTable(graph, shape);
  const softmaxes = graph.node.filter((n) => n.opType === "Softmax");
  if (softmaxes.length === 0) throw new GraphShapeError("encoder has no attention Softmax");
  softmaxes.forEach((softmax, layer) => {
    attentionPerHead(graph, softmax.output[0] ?? "", layer, shape.heads);
  });
  // T is no longer 1500 everywhere: drop shape annotations rather than keep wrong ones.
  graph.valueInfo = [];
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
    graph.node.filter((n) => n.opType === "Add" && n.input.includes(POSITIONS)),
    `Add reading ${POSITIONS}`,
  );
  const sequence = add.input.find((name) => name !== POSITIONS) ?? "";
  const p = `${PREFIX}/positions`;
  const constant = (name: string, value: number) => int64Tensor(`${p}/${name}`, [value], [1]);
  addInitializers(graph, [constant("zero", 0), constant("one", 1), constant("two", 2)]);
  const slice = (inputs: string[], output: string, name: string) =>
    makeNode("Slice", inputs, [`${p}/${output}`], `${p}/${name}`);
  insertBefore(graph, add, [
    // [batch, T, 384] → [T]: the sequence length as a 1-element tensor, as Slice wants it.
    makeNode("Shape", [sequence], [`${p}/shape`], `${p}/Shape`),
    slice([`${p}/shape`, `${p}/one`, `${p}/two`, `${p}/zero`], "length", "SliceShape"),
    slice([POSITIONS, `${p}/zero`, `${p}/length`, `${p}/zero`], "table", "SliceTable"),
  ]);
  renameInput([add], POSITIONS, `${p}/table`);
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
  replaceNode(graph, toHeads, nodes);
}

/** Reshape([B, H, T, 64] → [B·H, T, 64]) ← Transpose(perm 0,2,1,3): returns the 4-D input. */
function headSplitSource(graph: Graph, reshape: { input: string[] }): string {
  const source = reshape.input[0] ?? "";
  expectPerm(expectProducer(graph, source, "Transpose"), [0, 2, 1, 3]);
  return source;
}
