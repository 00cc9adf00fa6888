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
 * 7. With a `head` (prepare.ts passes the English head of src/stt/whisper/vocabulary-order.ts),
 *    the table's columns are reordered head first and split in two; the graph takes and returns
 *    ids in that order, and a cache step projects the second half only for the rows `tail_rows`
 *    names (DecoderRewriteOptions.head; docs/decoder-profile.md, "The English head").
 * The rest of both branches is untouched; the dead nodes are pruned by the caller.
 */

import { LOGITS_TAIL_OUTPUT, TAIL_ROWS_INPUT } from "../../src/stt/whisper/vocabulary-order.ts";
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
   * Token ids (ascending) whose logits come first, apart from the rest: the table's columns are
   * reordered to these ids, then every other id ascending, and split in two at the head's size.
   * The graph then works in that order (input_ids and logits), takes `tail_rows` (which rows of
   * the cache branch's quantized pair, pass 1's S tokens then pass 2's, also get the rest's
   * logits: [] for none, 0 … 2S − 1 for all; a cache step has S = 1) and returns `logits` (the
   * head) and `logits_tail` (the rest). The prompt branch projects every id.
   */
  head?: readonly number[];
}

const TAIL_ROWS = TAIL_ROWS_INPUT;
const LOGITS_TAIL = LOGITS_TAIL_OUTPUT;

/** The table split at the head: names of both halves and their column sums, and the head size. */
interface Halves {
  head: string;
  tail: string;
  headSums: string;
  tailSums: string;
  size: number;
  /** int64 scalar initializers: the head size, and 0. */
  sizeName: string;
  zeroName: string;
  /** Every id: head and tail together. */
  vocabulary: number;
}

export function rewriteDecoder(
  model: Model,
  shape: DecoderShape,
  { sharedCachePass = true, head }: DecoderRewriteOptions = {},
): void {
  const graph = model.graph;
  const branch = expectOne(
    graph.node.filter((n) => n.opType === "If"),
    "If node in the merged decoder",
  );
  const withCache = subgraph(branch, "then_branch");
  const withoutCache = subgraph(branch, "else_branch");

  removeAttentionOutputs(graph, branch, [withCache, withoutCache]);
  moveEncoderQuantizationIntoBranch(graph, withCache, withoutCache);
  // Found before the projection is rewritten (the table refs look for the stock MatMul).
  const promptProjection = findTableRefs(graph, withoutCache, shape).projection;

  const table = findVocabularyTable(graph, withoutCache, shape);
  const transposedName = `${table.name}/${PREFIX}-transposed`;
  const columnSumsName = `${table.name}/${PREFIX}-column-sums`;
  const transposed = transpose(rawBytes(table), shape.vocabulary, shape.width);
  const zeroPoint = uint8Scalar(
    initializer(graph, findTableRefs(graph, withoutCache, shape).zeroPoint),
  );
  addInitializers(graph, [
    uint8Tensor(transposedName, transposed, [shape.width, shape.vocabulary]),
    int32Tensor(columnSumsName, columnSums(transposed, shape.width, shape.vocabulary, zeroPoint), [
      shape.vocabulary,
    ]),
  ]);
  const halves = head
    ? splitTable(graph, transposed, shape, zeroPoint, head, `${table.name}/${PREFIX}`)
    : undefined;
  if (halves) addHeadIo(graph, branch, [withCache, withoutCache], halves.size);
  for (const [name, sub] of [
    ["with-cache", withCache],
    ["without-cache", withoutCache],
  ] as const) {
    const tableRefs = {
      ...findTableRefs(graph, sub, shape),
      transposed: transposedName,
      columnSums: columnSumsName,
    };
    rewriteEmbedding(sub, table.name, tableRefs, `${PREFIX}/${name}/embedding`, halves);
    // Only the cache branch, which runs once per token, shares one matmul between the passes. The
    // prompt branch runs once per utterance; sharing there too grew the heap after loading by
    // 1.2 MB and the 29-s peak past 92 MB (its [1, 2·3, vocabulary] int32 intermediates), for
    // nothing a person would notice.
    if (name === "with-cache" && sharedCachePass)
      sharedPassLogits(sub, tableRefs, `${PREFIX}/${name}/logits`, halves);
    else twoPassLogits(sub, tableRefs, `${PREFIX}/${name}/logits`, halves);
  }
  selectPromptPositions(graph, withoutCache, promptProjection);
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

/**
 * Gather(table, ids) → Transpose(Gather(tableᵀ, ids, axis 1), [1, 2, 0]): same [B, S, width];
 * with `halves`, gathered from the half each id's column is in.
 */
function rewriteEmbedding(
  sub: Graph,
  table: string,
  refs: TableRefs & { transposed: string },
  p: string,
  halves?: Halves,
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
    ...(halves
      ? [
          // Ids (in head-then-rest order) below the head size read the head, the others the
          // tail, and Where picks per id: the same rows, the same bytes as one table. Each Gather
          // gets an index it can read (ONNX 11 has no int64 Min/Max; Where has).
          makeNode("Less", [ids, halves.sizeName], [`${p}/in-head`], `${p}/InHead`),
          makeNode(
            "Where",
            [`${p}/in-head`, ids, halves.zeroName],
            [`${p}/head-ids`],
            `${p}/HeadIds`,
          ),
          makeNode("Sub", [ids, halves.sizeName], [`${p}/tail-offset`], `${p}/TailOffset`),
          makeNode(
            "Where",
            [`${p}/in-head`, halves.zeroName, `${p}/tail-offset`],
            [`${p}/tail-ids`],
            `${p}/TailIds`,
          ),
          columns(halves.head, `${p}/head-ids`, `${p}/head-columns`, `${p}/GatherHead`),
          columns(halves.tail, `${p}/tail-ids`, `${p}/tail-columns`, `${p}/GatherTail`),
          makeNode(
            "Where",
            [`${p}/in-head`, `${p}/head-columns`, `${p}/tail-columns`],
            [`${p}/columns`],
            `${p}/Where`,
          ),
        ]
      : [columns(refs.transposed, ids, `${p}/columns`, `${p}/Gather`)]),
    makeNode("Transpose", [`${p}/columns`], [rows], `${p}/Transpose`, {
      perm: { ints: [1, 2, 0] },
    }),
  ]);
  removeNode(sub, gather);
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
 *
 * With the table split at a head (`halves`), the head's columns give `logits` and the tail's give
 * `logits_tail`, for the rows `tail_rows` names only: with none, the tail is never read.
 */
function sharedPassLogits(
  sub: Graph,
  refs: TableRefs & { transposed: string; columnSums: string },
  p: string,
  halves?: Halves,
): void {
  const hidden = refs.projection.input[0] ?? "";
  const first = `${p}/pass1`;
  const second = `${p}/pass2`;
  const quantize = (input: string, name: string): Node =>
    makeNode(
      "DynamicQuantizeLinear",
      [input],
      [`${name}/q`, `${name}/scale`, `${name}/zero`],
      `${name}/Quantize`,
    );
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
    ...(halves
      ? [
          ...project("head", halves.head, halves.headSums, `${p}/rows`, "logits"),
          makeNode("Gather", [`${p}/rows`, TAIL_ROWS], [`${p}/tail-rows`], `${p}/TailRows`, {
            axis: { int: 1 },
          }),
          ...project("tail", halves.tail, halves.tailSums, `${p}/tail-rows`, LOGITS_TAIL),
        ]
      : project("all", refs.transposed, refs.columnSums, `${p}/rows`, "logits")),
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
 * int8x2T as two MatMulInteger passes, each with its own zero point (the prompt branch). With the
 * table split at a head (`halves`), each pass multiplies by both halves and joins them, and the
 * sum is split again into `logits` (the head) and `logits_tail`: the prompt projects every id.
 */
function twoPassLogits(
  sub: Graph,
  refs: TableRefs & { transposed: string },
  p: string,
  halves?: Halves,
): void {
  const hidden = refs.projection.input[0] ?? "";
  const matmul = (name: string, table: string, output: string, label: string): Node =>
    makeNode(
      "MatMulInteger",
      [`${name}/q`, table, `${name}/zero`, refs.zeroPoint],
      [`${name}/${output}`],
      `${name}/${label}`,
    );
  const products = (name: string): Node[] =>
    halves
      ? [
          matmul(name, halves.head, "head-int", "MatMulIntegerHead"),
          matmul(name, halves.tail, "tail-int", "MatMulIntegerTail"),
          makeNode(
            "Concat",
            [`${name}/head-int`, `${name}/tail-int`],
            [`${name}/int`],
            `${name}/Concat`,
            { axis: { int: -1 } },
          ),
        ]
      : [matmul(name, refs.transposed, "int", "MatMulInteger")];
  const pass = (input: string, name: string, output: string): Node[] => [
    makeNode(
      "DynamicQuantizeLinear",
      [input],
      [`${name}/q`, `${name}/scale`, `${name}/zero`],
      `${name}/Quantize`,
    ),
    ...products(name),
    makeNode("Cast", [`${name}/int`], [`${name}/float`], `${name}/Cast`, {
      to: { int: DataType.FLOAT },
    }),
    makeNode("Mul", [`${name}/scale`, refs.scale], [`${name}/scales`], `${name}/Scales`),
    makeNode("Mul", [`${name}/float`, `${name}/scales`], [output], `${name}/Scale`),
  ];
  const first = `${p}/pass1`;
  const second = `${p}/pass2`;
  const sum = halves ? `${p}/all` : "logits";
  const nodes = [
    ...pass(hidden, first, `${first}/logits`),
    ...residual(hidden, first, p),
    ...pass(`${p}/residual`, second, `${second}/logits`),
    makeNode("Add", [`${first}/logits`, `${second}/logits`], [sum], `${p}/Add`),
    ...(halves
      ? [
          makeNode("Split", [sum], ["logits", LOGITS_TAIL], `${p}/SplitHead`, {
            axis: { int: -1 },
            split: { ints: [halves.size, halves.vocabulary - halves.size] },
          }),
        ]
      : []),
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

/** The transposed table's columns in head-then-rest order, split in two, with column sums. */
function splitTable(
  graph: Graph,
  transposed: Uint8Array,
  shape: DecoderShape,
  zeroPoint: number,
  head: readonly number[],
  p: string,
): Halves {
  const { vocabulary, width } = shape;
  const inHead = new Uint8Array(vocabulary);
  for (const id of head) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabulary || inHead[id]) {
      throw new GraphShapeError(`vocabulary head id ${id} is out of range or repeated`);
    }
    inHead[id] = 1;
  }
  const order = [...head];
  for (let id = 0; id < vocabulary; id++) if (!inHead[id]) order.push(id);
  const size = head.length;
  const half = (from: number, to: number): Uint8Array => {
    const columns = to - from;
    const out = new Uint8Array(width * columns);
    for (let k = 0; k < width; k++) {
      const row = k * vocabulary;
      for (let j = 0; j < columns; j++)
        out[k * columns + j] = transposed[row + (order[from + j] ?? 0)] ?? 0;
    }
    return out;
  };
  const headTable = half(0, size);
  const tailTable = half(size, vocabulary);
  const names: Halves = {
    head: `${p}-head`,
    tail: `${p}-tail`,
    headSums: `${p}-head-column-sums`,
    tailSums: `${p}-tail-column-sums`,
    size,
    sizeName: `${p}-head-size`,
    zeroName: `${p}-zero`,
    vocabulary,
  };
  addInitializers(graph, [
    uint8Tensor(names.head, headTable, [width, size]),
    uint8Tensor(names.tail, tailTable, [width, vocabulary - size]),
    int32Tensor(names.headSums, columnSums(headTable, width, size, zeroPoint), [size]),
    int32Tensor(names.tailSums, columnSums(tailTable, width, vocabulary - size, zeroPoint), [
      vocabulary - size,
    ]),
    int64Tensor(names.sizeName, [size], []),
    int64Tensor(names.zeroName, [0], []),
  ]);
  return names;
}

/** `tail_rows` in, `logits_tail` out, through the If and both branches. */
function addHeadIo(graph: Graph, branch: Node, branches: Graph[], headSize: number): void {
  graph.input = [...graph.input, tensorValueInfo(TAIL_ROWS, DataType.INT64, ["tail"])];
  // `logits` now holds the head's columns only.
  const head = () => tensorValueInfo("logits", DataType.FLOAT, ["batch", "rows", headSize]);
  graph.output = graph.output.map((o) => (o.name === "logits" ? head() : o));
  for (const sub of branches)
    sub.output = sub.output.map((o) => (o.name === "logits" ? head() : o));
  const out = () => tensorValueInfo(LOGITS_TAIL, DataType.FLOAT, ["batch", "rows", "rest"]);
  graph.output = [...graph.output, out()];
  branch.output = [...branch.output, LOGITS_TAIL];
  for (const sub of branches) sub.output = [...sub.output, out()];
}
