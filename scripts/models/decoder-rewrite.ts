/**
 * Whisper merged-decoder rewrite (see ../shared/WHISPER-NOTES.md, "Graph rewrites that worked"):
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
 *    are approximated, twice, which brings logits within ~0.003 of stock.
 * 4. The 8 attention outputs (decoder_attentions.*, cross_attentions.*) are removed.
 * 5. DynamicQuantizeLinear(encoder_hidden_states) moves from the main graph into the no-cache
 *    (else) branch, its only user: with the cache it ran every step for nothing.
 * The rest of both branches is untouched; the dead nodes are pruned by the caller.
 */
import {
  addInitializers,
  DataType,
  describe,
  dims,
  expectOne,
  expectProducer,
  type Graph,
  GraphShapeError,
  initializer,
  insertBefore,
  intAttr,
  type Model,
  makeNode,
  type Node,
  rawBytes,
  referencedNames,
  removeNode,
  subgraph,
  uint8Tensor,
} from "./onnx-graph.ts";

export interface DecoderShape {
  vocabulary: number;
  width: number;
}

const ATTENTION_OUTPUT = /^(decoder|cross)_attentions\.\d+$/;
const ENCODER_STATES = "encoder_hidden_states";
const PREFIX = "earshot";

export function rewriteDecoder(model: Model, shape: DecoderShape): void {
  const graph = model.graph;
  const branch = expectOne(
    graph.node.filter((n) => n.opType === "If"),
    "If node in the merged decoder",
  );
  const withCache = subgraph(branch, "then_branch");
  const withoutCache = subgraph(branch, "else_branch");

  removeAttentionOutputs(graph, branch, [withCache, withoutCache]);
  moveEncoderQuantizationIntoBranch(graph, withCache, withoutCache);

  const table = findVocabularyTable(graph, withoutCache, shape);
  const transposedName = `${table.name}/${PREFIX}-transposed`;
  addInitializers(graph, [
    uint8Tensor(transposedName, transpose(rawBytes(table), shape.vocabulary, shape.width), [
      shape.width,
      shape.vocabulary,
    ]),
  ]);
  for (const [name, sub] of [
    ["with-cache", withCache],
    ["without-cache", withoutCache],
  ] as const) {
    const tableRefs = { ...findTableRefs(graph, sub, shape), transposed: transposedName };
    rewriteEmbedding(sub, table.name, tableRefs, `${PREFIX}/${name}/embedding`);
    rewriteLogits(sub, tableRefs, `${PREFIX}/${name}/logits`);
  }
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

function findVocabularyTable(graph: Graph, sub: Graph, shape: DecoderShape) {
  const refs = findTableRefs(graph, sub, shape);
  return initializer(graph, refs.table);
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

/** Gather(table, ids) → Transpose(Gather(tableᵀ, ids, axis 1), [1, 2, 0]): same [B, S, width]. */
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
  insertBefore(sub, gather, [
    // [width, vocabulary] gathered on axis 1 with ids [B, S] gives [width, B, S].
    makeNode("Gather", [refs.transposed, ids], [`${p}/columns`], `${p}/Gather`, {
      axis: { int: 1 },
    }),
    makeNode("Transpose", [`${p}/columns`], [rows], `${p}/Transpose`, {
      perm: { ints: [1, 2, 0] },
    }),
  ]);
  removeNode(sub, gather);
}

function rewriteLogits(sub: Graph, refs: TableRefs & { transposed: string }, p: string): void {
  const hidden = refs.projection.input[0] ?? "";
  const pass = (input: string, name: string, output: string): Node[] => [
    makeNode(
      "DynamicQuantizeLinear",
      [input],
      [`${name}/q`, `${name}/scale`, `${name}/zero`],
      `${name}/Quantize`,
    ),
    makeNode(
      "MatMulInteger",
      [`${name}/q`, refs.transposed, `${name}/zero`, refs.zeroPoint],
      [`${name}/int`],
      `${name}/MatMulInteger`,
    ),
    makeNode("Cast", [`${name}/int`], [`${name}/float`], `${name}/Cast`, {
      to: { int: DataType.FLOAT },
    }),
    makeNode("Mul", [`${name}/scale`, refs.scale], [`${name}/scales`], `${name}/Scales`),
    makeNode("Mul", [`${name}/float`, `${name}/scales`], [output], `${name}/Scale`),
  ];
  const first = `${p}/pass1`;
  const second = `${p}/pass2`;
  const nodes = [
    ...pass(hidden, first, `${first}/logits`),
    // The part of the hidden state the first pass could not represent, quantized on its own.
    makeNode(
      "DequantizeLinear",
      [`${first}/q`, `${first}/scale`, `${first}/zero`],
      [`${first}/represented`],
      `${first}/Dequantize`,
    ),
    makeNode("Sub", [hidden, `${first}/represented`], [`${p}/residual`], `${p}/Residual`),
    ...pass(`${p}/residual`, second, `${second}/logits`),
    makeNode("Add", [`${first}/logits`, `${second}/logits`], ["logits"], `${p}/Add`),
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
