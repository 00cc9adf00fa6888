/**
 * The offline graph rewrites (tools/models/) on small synthetic graphs built like the stock
 * Whisper export, run before and after in onnxruntime-web: the rewritten graphs must compute the
 * same thing (bit for bit where the arithmetic is the same, within tolerance for the int8
 * logits). The real files are compared by test/whisper-session-prepared-vs-stock.test.ts.
 */
import type { onnx as OnnxTypes } from "onnx-proto";
import { describe, expect, it } from "vitest";
import { createSession, ort } from "../src/runtime/ort";
import {
  LOGIT_ROWS_OUTPUT,
  LOGIT_SCALES_OUTPUT,
  LOGIT_ZEROS_OUTPUT,
  TOKEN_ROWS_INPUT,
} from "../src/stt/whisper/projection";
import { LOGIT_POSITIONS, rewriteDecoder } from "../tools/models/decoder-rewrite.ts";
import { rewriteEncoder } from "../tools/models/encoder-rewrite.ts";
import {
  assertTopological,
  DataType,
  decodeModel,
  encodeModel,
  externalizeWeights,
  type Graph,
  GraphShapeError,
  int64Tensor,
  type Model,
  makeNode,
  type Node,
  onnx,
  opCounts,
  prune,
  type Tensor,
  uint8Tensor,
} from "../tools/models/onnx-graph.ts";
import { foldShapes } from "../tools/models/shape-fold.ts";
import { referenceLogits } from "./helpers/projection-reference";

const BOOL = 9;

// ---------------------------------------------------------------------------------------------
// Building small models

function valueInfo(name: string, elemType: number, dims?: (number | string)[]) {
  const shape = dims && {
    dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })),
  };
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape } } });
}

function floatTensor(name: string, values: Float32Array, dims: number[]): Tensor {
  const rawData = new Uint8Array(values.buffer.slice(0));
  return onnx.TensorProto.create({
    name,
    dataType: DataType.FLOAT,
    dims,
    rawData,
  }) as unknown as Tensor;
}

interface GraphParts {
  nodes: Node[];
  inputs?: ReturnType<typeof valueInfo>[];
  outputs: ReturnType<typeof valueInfo>[];
  initializers?: Tensor[];
}

function graph(name: string, parts: GraphParts) {
  return onnx.GraphProto.create({
    name,
    // The helpers' structural types describe the same decoded messages (see onnx-graph.ts).
    node: parts.nodes as unknown as OnnxTypes.INodeProto[],
    input: parts.inputs ?? [],
    output: parts.outputs,
    initializer: (parts.initializers ?? []) as unknown as OnnxTypes.ITensorProto[],
  });
}

/** Encoded, then decoded again: every test works on an independent copy, as the pipeline does. */
function model(parts: GraphParts): Model {
  const proto = onnx.ModelProto.create({
    irVersion: 6,
    opsetImport: [{ domain: "", version: 11 }],
    graph: graph("test", parts),
  });
  return decodeModel(onnx.ModelProto.encode(proto).finish());
}

function ifNode(
  condition: string,
  outputs: string[],
  thenBranch: GraphParts,
  elseBranch: GraphParts,
): Node {
  const node = makeNode("If", [condition], outputs, "if");
  node.attribute = [
    onnx.AttributeProto.create({ name: "then_branch", type: 5, g: graph("then", thenBranch) }),
    onnx.AttributeProto.create({ name: "else_branch", type: 5, g: graph("else", elseBranch) }),
  ] as unknown as Node["attribute"];
  return node;
}

/** Deterministic values in [-1, 1). */
function random(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

async function run(
  target: Model | { model: Uint8Array; data: Uint8Array; path: string },
  feeds: Record<string, ort.Tensor>,
): Promise<Record<string, Float32Array>> {
  const session =
    "graph" in target
      ? await createSession(encodeModel(target))
      : await createSession(target.model, {
          externalData: [{ path: target.path, data: target.data }],
        });
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await session.release();
  }
}

/** What the pipeline does after a rewrite: prune, check order, weights to an external file. */
function finish(rewritten: Model, path: string) {
  prune(rewritten.graph);
  assertTopological(rewritten.graph);
  const data = externalizeWeights(rewritten, path, 64);
  return { model: encodeModel(rewritten), data, path };
}

function maxDifference(a: Float32Array | undefined, b: Float32Array | undefined): number {
  if (!a || !b || a.length !== b.length) throw new Error("outputs differ in length");
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return max;
}

function allNodes(g: Graph): Node[] {
  return g.node.flatMap((n) => [n, ...n.attribute.flatMap((a) => (a.g ? allNodes(a.g) : []))]);
}

// ---------------------------------------------------------------------------------------------
// A one-layer encoder shaped like the stock export: heads × head size = width, a positional
// table of POSITIONS rows added to the input, attention through the same Reshape/Transpose chain,
// and the attention map as a second graph output.

const HEADS = 2;
const HEAD_SIZE = 4;
const WIDTH = HEADS * HEAD_SIZE;
const POSITIONS = 6;

function encoderModel(positionRows: number): Model {
  const i64 = (name: string, values: number[]) => int64Tensor(name, values, [values.length]);
  const split = (x: string) => [
    makeNode("Reshape", [x, "bthd"], [`${x}_r`], `${x}_reshape`),
    makeNode("Transpose", [`${x}_r`], [`${x}4`], `${x}_heads`, { perm: { ints: [0, 2, 1, 3] } }),
    makeNode("Reshape", [`${x}4`, "hTd"], [`${x}_flat`], `${x}_flatten`),
  ];
  return model({
    inputs: [valueInfo("input_features", DataType.FLOAT, [1, "T", WIDTH])],
    outputs: [
      valueInfo("last_hidden_state", DataType.FLOAT, [1, "T", WIDTH]),
      valueInfo("encoder_attentions.0", DataType.FLOAT, [1, HEADS, "T", "T"]),
    ],
    initializers: [
      floatTensor("embed_positions.weight", random(positionRows * WIDTH, 1), [positionRows, WIDTH]),
      floatTensor("wq", random(WIDTH * WIDTH, 2), [WIDTH, WIDTH]),
      floatTensor("wk", random(WIDTH * WIDTH, 3), [WIDTH, WIDTH]),
      floatTensor("wv", random(WIDTH * WIDTH, 4), [WIDTH, WIDTH]),
      i64("bthd", [1, -1, HEADS, HEAD_SIZE]),
      i64("hTd", [HEADS, -1, HEAD_SIZE]),
      i64("context_shape", [1, HEADS, -1, HEAD_SIZE]),
      i64("out_shape", [1, -1, WIDTH]),
      i64("one", [1]),
    ],
    nodes: [
      makeNode("Add", ["input_features", "embed_positions.weight"], ["h"], "positions"),
      makeNode("MatMul", ["h", "wq"], ["q"], "q_proj"),
      makeNode("MatMul", ["h", "wk"], ["k"], "k_proj"),
      makeNode("MatMul", ["h", "wv"], ["v"], "v_proj"),
      ...split("q"),
      ...split("k"),
      ...split("v"),
      makeNode("Transpose", ["k_flat"], ["kT"], "k_transpose", { perm: { ints: [0, 2, 1] } }),
      makeNode("MatMul", ["q_flat", "kT"], ["scores"], "scores"),
      makeNode("Softmax", ["scores"], ["probs"], "softmax", { axis: { int: 2 } }),
      makeNode("Shape", ["scores"], ["scores_shape"], "scores_shape"),
      makeNode("Concat", ["one", "scores_shape"], ["map_shape"], "map_shape", { axis: { int: 0 } }),
      makeNode("Reshape", ["probs", "map_shape"], ["encoder_attentions.0"], "to_map"),
      makeNode("Reshape", ["encoder_attentions.0", "scores_shape"], ["probs2"], "from_map"),
      makeNode("MatMul", ["probs2", "v_flat"], ["context"], "context"),
      makeNode("Reshape", ["context", "context_shape"], ["context4"], "to_heads"),
      makeNode("Transpose", ["context4"], ["contextT"], "merge", { perm: { ints: [0, 2, 1, 3] } }),
      makeNode("Reshape", ["contextT", "out_shape"], ["attention"], "attention"),
      makeNode("Add", ["h", "attention"], ["last_hidden_state"], "residual"),
    ],
  });
}

const features = (frames: number) => ({
  input_features: new ort.Tensor("float32", random(frames * WIDTH, 7), [1, frames, WIDTH]),
});

describe("encoder rewrite", () => {
  it("computes the same hidden state bit for bit at full length, with one output", async () => {
    const stock = await run(encoderModel(POSITIONS), features(POSITIONS));
    const rewritten = encoderModel(POSITIONS);
    rewriteEncoder(rewritten, { heads: HEADS, positions: POSITIONS });
    expect(rewritten.graph.output.map((o) => o.name)).toEqual(["last_hidden_state"]);
    const prepared = await run(finish(rewritten, "encoder.data"), features(POSITIONS));
    expect(Object.keys(prepared)).toEqual(["last_hidden_state"]);
    expect(prepared.last_hidden_state).toEqual(stock.last_hidden_state);
  });

  it("computes attention one head at a time and leaves no attention map alive", () => {
    const rewritten = encoderModel(POSITIONS);
    rewriteEncoder(rewritten, { heads: HEADS, positions: POSITIONS });
    prune(rewritten.graph);
    const counts = opCounts(rewritten.graph);
    expect(counts.get("Softmax")).toBe(HEADS);
    expect(counts.get("Split")).toBe(3);
    const softmaxInputs = rewritten.graph.node.filter((n) => n.opType === "Softmax");
    expect(new Set(softmaxInputs.map((n) => n.input[0])).size).toBe(HEADS);
    // The old batched chain is gone: nothing reads the attention map any more.
    expect(rewritten.graph.node.some((n) => n.input.includes("encoder_attentions.0"))).toBe(false);
  });

  it("accepts a shorter input, as if the positional table had that many rows", async () => {
    const frames = POSITIONS - 2;
    // The stock graph cannot add a 6-row table to 4 frames.
    await expect(run(encoderModel(POSITIONS), features(frames))).rejects.toThrow();
    const reference = await run(encoderModel(frames), features(frames));
    const rewritten = encoderModel(POSITIONS);
    rewriteEncoder(rewritten, { heads: HEADS, positions: POSITIONS });
    const prepared = await run(finish(rewritten, "encoder.data"), features(frames));
    expect(prepared.last_hidden_state).toEqual(reference.last_hidden_state);
  });

  it("refuses a graph whose positional table has another length", () => {
    expect(() => rewriteEncoder(encoderModel(POSITIONS), { heads: HEADS, positions: 5 })).toThrow(
      GraphShapeError,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// A merged decoder shaped like the stock export: the encoder states quantized in the main graph,
// an If on use_cache_branch whose branches embed tokens from the 8-bit table and project onto
// its transposed, dequantized copy, plus eight attention outputs.

const VOCABULARY = 40;
const ENCODER_POSITIONS = 5;
const ATTENTION_OUTPUTS = ["decoder", "cross"].flatMap((kind) =>
  [0, 1, 2, 3].map((i) => `${kind}_attentions.${i}`),
);
const BRANCH_OUTPUTS = ["logits", "present.0.decoder.key", ...ATTENTION_OUTPUTS];

function branch(withCache: boolean): GraphParts {
  const nodes = [
    makeNode("Gather", ["table", "input_ids"], ["embedded_q"], "embed"),
    makeNode(
      "DequantizeLinear",
      ["embedded_q", "table_scale", "table_zero"],
      ["embedded"],
      "embed_dq",
    ),
    makeNode("Identity", ["embedded"], ["present.0.decoder.key"], "present"),
  ];
  if (withCache) {
    nodes.push(makeNode("Add", ["embedded", "bias"], ["hidden"], "hidden"));
  } else {
    nodes.push(
      makeNode(
        "DequantizeLinear",
        ["states_q", "states_scale", "states_zero"],
        ["states"],
        "states_dq",
      ),
      makeNode("ReduceMean", ["states"], ["context"], "context", { axes: { ints: [1] } }),
      makeNode("Add", ["embedded", "context"], ["hidden"], "hidden"),
    );
  }
  nodes.push(
    makeNode("Transpose", ["table"], ["table_t"], "table_transpose"),
    makeNode("DequantizeLinear", ["table_t", "table_scale", "table_zero"], ["weights"], "table_dq"),
    makeNode("MatMul", ["hidden", "weights"], ["logits"], "proj_out"),
    ...ATTENTION_OUTPUTS.map((name) => makeNode("Identity", ["hidden"], [name], name)),
  );
  return { nodes, outputs: BRANCH_OUTPUTS.map((name) => valueInfo(name, DataType.FLOAT)) };
}

/** The toy decoder's uint8 [VOCABULARY, WIDTH] table (zero point 128). */
function decoderTable(): Uint8Array {
  return new Uint8Array(VOCABULARY * WIDTH).map((_, i) => (i * 97 + 13) % 256);
}

function decoderModel(): Model {
  const table = decoderTable();
  const scalar = (name: string, value: number) => floatTensor(name, Float32Array.of(value), []);
  return model({
    inputs: [
      valueInfo("input_ids", DataType.INT64, [1, "S"]),
      valueInfo("encoder_hidden_states", DataType.FLOAT, [1, "E", WIDTH]),
      valueInfo("use_cache_branch", BOOL, [1]),
    ],
    outputs: BRANCH_OUTPUTS.map((name) => valueInfo(name, DataType.FLOAT)),
    initializers: [
      uint8Tensor("table", table, [VOCABULARY, WIDTH]),
      scalar("table_scale", 0.02),
      uint8Tensor("table_zero", Uint8Array.of(128), []),
      floatTensor("bias", random(WIDTH, 11), [WIDTH]),
    ],
    nodes: [
      makeNode(
        "DynamicQuantizeLinear",
        ["encoder_hidden_states"],
        ["states_q", "states_scale", "states_zero"],
        "states_quantize",
      ),
      ifNode("use_cache_branch", BRANCH_OUTPUTS, branch(true), branch(false)),
    ],
  });
}

const decoderFeeds = (withCache: boolean) => ({
  input_ids: new ort.Tensor("int64", BigInt64Array.of(3n, 17n, 39n), [1, 3]),
  encoder_hidden_states: new ort.Tensor("float32", random(ENCODER_POSITIONS * WIDTH, 5), [
    1,
    ENCODER_POSITIONS,
    WIDTH,
  ]),
  use_cache_branch: new ort.Tensor("bool", [withCache], [1]),
});

/** The prepared decoder's feeds: the stock ones plus the positions to project (all by default). */
const preparedFeeds = (withCache: boolean, positions: bigint[] = [0n, 1n, 2n]) => ({
  ...decoderFeeds(withCache),
  [LOGIT_POSITIONS]: new ort.Tensor("int64", BigInt64Array.from(positions), [positions.length]),
});

/** Rows `positions` of a [1, S, VOCABULARY] logits array. */
function logitRows(logits: Float32Array | undefined, positions: number[]): Float32Array {
  if (!logits) throw new Error("no logits");
  return Float32Array.from(
    positions.flatMap((p) => [...logits.subarray(p * VOCABULARY, (p + 1) * VOCABULARY)]),
  );
}

function rewrittenDecoder(sharedCachePass = true): Model {
  const rewritten = decoderModel();
  rewriteDecoder(rewritten, { vocabulary: VOCABULARY, width: WIDTH }, { sharedCachePass });
  return rewritten;
}

function externalDecoder(): Model {
  const rewritten = decoderModel();
  const table = rewriteDecoder(
    rewritten,
    { vocabulary: VOCABULARY, width: WIDTH },
    { external: true },
  );
  // The table it hands back is the stock one, by id, with its zero point.
  expect(new Uint8Array(table?.rows ?? [])).toEqual(decoderTable());
  expect(table?.zeroPoint).toBe(128);
  return rewritten;
}

/** The table rows of ids 3, 17, 39 (decoderFeeds' input_ids), as `token_rows` takes them. */
function tokenRowsFeed(): ort.Tensor {
  const table = decoderTable();
  const rows = new Uint8Array(3 * WIDTH);
  [3, 17, 39].forEach((id, i) => {
    rows.set(table.subarray(id * WIDTH, (id + 1) * WIDTH), i * WIDTH);
  });
  return new ort.Tensor("uint8", rows, [1, 3, WIDTH]);
}

/** The external decoder's outputs projected by the reference: [S, VOCABULARY] logits. */
function projected(out: Record<string, Float32Array>): Float32Array {
  const rows = out[LOGIT_ROWS_OUTPUT] as unknown as Uint8Array;
  const logits = referenceLogits(decoderTable(), 128, WIDTH, {
    rows,
    batch: 1,
    perBatch: rows.length / (2 * WIDTH),
    zeros: out[LOGIT_ZEROS_OUTPUT] as unknown as Uint8Array,
    scales: out[LOGIT_SCALES_OUTPUT] ?? new Float32Array(0),
  });
  return Float32Array.from(logits.flatMap((row) => [...row]));
}

describe("decoder rewrite", () => {
  for (const withCache of [true, false]) {
    it(`embeds exactly and keeps int8 logits close (${withCache ? "with" : "without"} cache)`, async () => {
      const stock = await run(decoderModel(), decoderFeeds(withCache));
      const prepared = await run(
        finish(rewrittenDecoder(), "decoder.data"),
        preparedFeeds(withCache),
      );
      expect(Object.keys(prepared)).toEqual(["logits", "present.0.decoder.key"]);
      // Same table rows, read from the transposed copy: identical embeddings.
      expect(prepared["present.0.decoder.key"]).toEqual(stock["present.0.decoder.key"]);
      const largest = Math.max(...(stock.logits ?? []).map(Math.abs));
      expect(largest).toBeGreaterThan(0.1);
      expect(maxDifference(prepared.logits, stock.logits)).toBeLessThan(0.01);
    });
  }

  it("shares one matmul between the cache step's two passes with bit-identical logits", async () => {
    // Both branches, several tokens: the zero points of the two passes differ per position.
    for (const withCache of [true, false]) {
      const twoPasses = await run(
        finish(rewrittenDecoder(false), "decoder.data"),
        preparedFeeds(withCache),
      );
      const shared = await run(
        finish(rewrittenDecoder(true), "decoder.data"),
        preparedFeeds(withCache),
      );
      expect(Math.max(...(twoPasses.logits ?? []).map(Math.abs))).toBeGreaterThan(0.1);
      expect(shared.logits).toEqual(twoPasses.logits);
    }
    const cacheBranch = rewrittenDecoder(true).graph.node[0]?.attribute.find(
      (a) => a.name === "then_branch",
    )?.g;
    expect(cacheBranch?.node.filter((n) => n.opType === "MatMulInteger")).toHaveLength(1);
  });

  it("projects only the prompt positions asked for, in the order asked", async () => {
    const prepared = finish(rewrittenDecoder(), "decoder.data");
    const stock = await run(decoderModel(), decoderFeeds(false));
    const all = await run(prepared, preparedFeeds(false));
    const two = await run(prepared, preparedFeeds(false, [2n, 0n]));
    expect(two.logits).toHaveLength(2 * VOCABULARY);
    // The int8 passes quantize only the rows they project, so a subset is close to, not equal
    // to, the same rows of the full projection; both stay close to the stock float logits.
    expect(maxDifference(two.logits, logitRows(stock.logits, [2, 0]))).toBeLessThan(0.01);
    expect(maxDifference(two.logits, logitRows(all.logits, [2, 0]))).toBeLessThan(0.01);
    // Row order follows the input: position 0's logits differ from position 2's.
    expect(maxDifference(logitRows(two.logits, [0]), logitRows(two.logits, [1]))).toBeGreaterThan(
      0.05,
    );
    // The cache branch projects its one token whatever the input says.
    const cached = await run(prepared, preparedFeeds(true, [0n]));
    expect(cached.logits).toHaveLength(3 * VOCABULARY);
  });

  it("with the table outside, gives the in-graph int8x2T logits and embedding bit for bit", async () => {
    for (const withCache of [true, false]) {
      const inGraph = await run(
        finish(rewrittenDecoder(), "decoder.data"),
        preparedFeeds(withCache),
      );
      const external = await run(finish(externalDecoder(), "decoder.data"), {
        ...preparedFeeds(withCache),
        [TOKEN_ROWS_INPUT]: tokenRowsFeed(),
      });
      expect(Object.keys(external)).toEqual([
        LOGIT_ROWS_OUTPUT,
        LOGIT_ZEROS_OUTPUT,
        LOGIT_SCALES_OUTPUT,
        "present.0.decoder.key",
      ]);
      // Three tokens, two passes each.
      expect(external[LOGIT_ROWS_OUTPUT]).toHaveLength(2 * 3 * WIDTH);
      expect(Math.max(...(inGraph.logits ?? []).map(Math.abs))).toBeGreaterThan(0.1);
      // The same integers and float steps, done outside the graph.
      expect(projected(external)).toEqual(inGraph.logits);
      // The rows fed are the rows the graph gathered: identical embeddings.
      expect(external["present.0.decoder.key"]).toEqual(inGraph["present.0.decoder.key"]);
    }
    // The prompt branch quantizes only the positions asked for, as the in-graph one projects.
    const two = await run(finish(externalDecoder(), "decoder.data"), {
      ...preparedFeeds(false, [2n, 0n]),
      [TOKEN_ROWS_INPUT]: tokenRowsFeed(),
    });
    const inGraphTwo = await run(
      finish(rewrittenDecoder(), "decoder.data"),
      preparedFeeds(false, [2n, 0n]),
    );
    expect(projected(two)).toEqual(inGraphTwo.logits);
  });

  it("with the table outside, keeps no table and reads the embedding from token_rows", () => {
    const rewritten = externalDecoder();
    prune(rewritten.graph);
    expect(
      rewritten.graph.initializer.filter(
        (t) => t.dataType === DataType.UINT8 && t.dims.length === 2,
      ),
    ).toEqual([]);
    const nodes = allNodes(rewritten.graph);
    expect(
      nodes.some(
        (n) =>
          ["MatMul", "MatMulInteger", "Gather"].includes(n.opType) && n.input.includes("table"),
      ),
    ).toBe(false);
    expect(nodes.filter((n) => n.input.includes(TOKEN_ROWS_INPUT)).map((n) => n.opType)).toEqual([
      "DequantizeLinear",
      "DequantizeLinear",
    ]);
    expect(rewritten.graph.input.map((i) => i.name)).toContain(TOKEN_ROWS_INPUT);
  });

  it("stores the table once, transposed, and reads it only through integer matmuls", () => {
    const rewritten = rewrittenDecoder();
    prune(rewritten.graph);
    const tables = rewritten.graph.initializer.filter(
      (t) => t.dataType === DataType.UINT8 && t.dims.length === 2,
    );
    expect(tables.map((t) => t.dims.map(Number))).toEqual([[WIDTH, VOCABULARY]]);
    const readers = allNodes(rewritten.graph).filter((n) =>
      n.input.includes(tables[0]?.name ?? ""),
    );
    // Per branch the embedding Gather; the two passes: one shared MatMulInteger with the cache,
    // two without.
    expect(readers.map((n) => n.opType).sort()).toEqual([
      "Gather",
      "Gather",
      "MatMulInteger",
      "MatMulInteger",
      "MatMulInteger",
    ]);
    expect(allNodes(rewritten.graph).some((n) => n.opType === "MatMul")).toBe(false);
  });

  it("quantizes the encoder states only in the no-cache branch", () => {
    const rewritten = rewrittenDecoder();
    expect(rewritten.graph.node.map((n) => n.opType)).toEqual(["If"]);
    const [ifNodeAfter] = rewritten.graph.node;
    const elseBranch = ifNodeAfter?.attribute.find((a) => a.name === "else_branch")?.g;
    expect(elseBranch?.node[0]?.opType).toBe("DynamicQuantizeLinear");
    expect(elseBranch?.node[0]?.input).toEqual(["encoder_hidden_states"]);
  });
});

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Self-attention over a cache, shaped like the stock decoder's: every Reshape target computed from
// Shape → Gather → Unsqueeze → Concat (× heads by Mul), batch and heads merged into one dim
// around the batched matmuls, and the attention map split out to 4-D and merged back.

function attentionModel({ mapAsOutput = false, softmaxAxis = true } = {}): Model {
  const i64 = (name: string, values: number[]) => int64Tensor(name, values, [values.length]);
  const dim = (from: string, index: number, name: string) => [
    makeNode("Gather", [from, `at${index}`], [name], `${name}_gather`, { axis: { int: 0 } }),
    makeNode("Unsqueeze", [name], [`${name}_1`], `${name}_unsqueeze`, { axes: { ints: [0] } }),
  ];
  const heads = (x: string) => [
    makeNode("Reshape", [x, "bshd"], [`${x}_r`], `${x}_reshape`),
    makeNode("Transpose", [`${x}_r`], [`${x}4`], `${x}_heads`, { perm: { ints: [0, 2, 1, 3] } }),
  ];
  return model({
    inputs: [
      valueInfo("x", DataType.FLOAT, ["batch", "tokens", WIDTH]),
      valueInfo("past_key", DataType.FLOAT, ["batch", HEADS, "past", HEAD_SIZE]),
      valueInfo("past_value", DataType.FLOAT, ["batch", HEADS, "past", HEAD_SIZE]),
    ],
    outputs: [
      valueInfo("y", DataType.FLOAT),
      valueInfo("present_key", DataType.FLOAT),
      valueInfo("present_value", DataType.FLOAT),
      ...(mapAsOutput ? [valueInfo("probs", DataType.FLOAT)] : []),
    ],
    initializers: [
      floatTensor("wq", random(WIDTH * WIDTH, 2), [WIDTH, WIDTH]),
      floatTensor("wk", random(WIDTH * WIDTH, 3), [WIDTH, WIDTH]),
      floatTensor("wv", random(WIDTH * WIDTH, 4), [WIDTH, WIDTH]),
      int64Tensor("at0", [0], []),
      int64Tensor("at1", [1], []),
      int64Tensor("at2", [2], []),
      int64Tensor("heads", [HEADS], []),
      i64("heads_1", [HEADS]),
      i64("head_size", [HEAD_SIZE]),
      i64("width", [WIDTH]),
      i64("minus_one", [-1]),
    ],
    nodes: [
      makeNode("MatMul", ["x", "wq"], ["q"], "q_proj"),
      makeNode("MatMul", ["x", "wk"], ["k"], "k_proj"),
      makeNode("MatMul", ["x", "wv"], ["v"], "v_proj"),
      makeNode("Shape", ["x"], ["x_shape"], "x_shape"),
      ...dim("x_shape", 0, "b"),
      ...dim("x_shape", 1, "s"),
      makeNode("Concat", ["b_1", "s_1", "heads_1", "head_size"], ["bshd"], "bshd", {
        axis: { int: 0 },
      }),
      ...heads("q"),
      ...heads("k"),
      ...heads("v"),
      makeNode("Concat", ["past_key", "k4"], ["present_key"], "cache_k", { axis: { int: 2 } }),
      makeNode("Concat", ["past_value", "v4"], ["present_value"], "cache_v", { axis: { int: 2 } }),
      makeNode("Mul", ["b", "heads"], ["bh"], "bh"),
      makeNode("Unsqueeze", ["bh"], ["bh_1"], "bh_unsqueeze", { axes: { ints: [0] } }),
      makeNode("Concat", ["bh_1", "minus_one", "head_size"], ["flat"], "flat", {
        axis: { int: 0 },
      }),
      makeNode("Reshape", ["q4", "flat"], ["q3"], "q_merge"),
      makeNode("Reshape", ["present_key", "flat"], ["k3"], "k_merge"),
      makeNode("Reshape", ["present_value", "flat"], ["v3"], "v_merge"),
      makeNode("Transpose", ["k3"], ["kT"], "k_transpose", { perm: { ints: [0, 2, 1] } }),
      makeNode("MatMul", ["q3", "kT"], ["scores"], "scores"),
      makeNode(
        "Softmax",
        ["scores"],
        ["probs"],
        "softmax",
        softmaxAxis ? { axis: { int: 2 } } : {},
      ),
      makeNode("Shape", ["probs"], ["probs_shape"], "probs_shape"),
      ...dim("probs_shape", 2, "t"),
      makeNode("Concat", ["b_1", "heads_1", "s_1", "t_1"], ["map_shape"], "map_shape", {
        axis: { int: 0 },
      }),
      makeNode("Reshape", ["probs", "map_shape"], ["map"], "map_split"),
      makeNode("Concat", ["bh_1", "s_1", "t_1"], ["flat_map"], "flat_map", { axis: { int: 0 } }),
      makeNode("Reshape", ["map", "flat_map"], ["probs3"], "map_merge"),
      makeNode("MatMul", ["probs3", "v3"], ["context"], "context"),
      makeNode("Concat", ["b_1", "heads_1", "s_1", "head_size"], ["bhsd"], "bhsd", {
        axis: { int: 0 },
      }),
      makeNode("Reshape", ["context", "bhsd"], ["context4"], "context_split"),
      makeNode("Transpose", ["context4"], ["contextT"], "merge", { perm: { ints: [0, 2, 1, 3] } }),
      makeNode("Concat", ["b_1", "s_1", "width"], ["bsw"], "bsw", { axis: { int: 0 } }),
      makeNode("Reshape", ["contextT", "bsw"], ["y"], "y"),
    ],
  });
}

/** Shapes of the attention model's inputs for batch, tokens and cached tokens. */
function attentionShapes(batch: number, tokens: number, past: number): Map<string, number[]> {
  return new Map([
    ["x", [batch, tokens, WIDTH]],
    ["past_key", [batch, HEADS, past, HEAD_SIZE]],
    ["past_value", [batch, HEADS, past, HEAD_SIZE]],
  ]);
}

const FOLD_SAMPLES = [
  attentionShapes(1, 1, 3),
  attentionShapes(3, 1, 5),
  attentionShapes(2, 4, 2),
  attentionShapes(5, 2, 7),
];

function attentionFeeds(batch: number, tokens: number, past: number) {
  const cache = batch * HEADS * past * HEAD_SIZE;
  return {
    x: new ort.Tensor("float32", random(batch * tokens * WIDTH, 11), [batch, tokens, WIDTH]),
    past_key: new ort.Tensor("float32", random(cache, 12), [batch, HEADS, past, HEAD_SIZE]),
    past_value: new ort.Tensor("float32", random(cache, 13), [batch, HEADS, past, HEAD_SIZE]),
  };
}

/** Shapes the samples did not hold, as well as one they did. */
const FOLD_CHECKS = [
  [1, 1, 1],
  [3, 1, 9],
  [4, 3, 6],
  [2, 4, 2],
] as const;

describe("shape folding", () => {
  it("makes every Reshape target constant and runs the attention on 4-D tensors, bit for bit", async () => {
    const folded = attentionModel();
    const report = foldShapes(folded.graph, FOLD_SAMPLES);
    expect(report).toMatchObject({ folded: 4, collapsed: 6, kept: 0 });
    const counts = opCounts(folded.graph);
    for (const op of ["Shape", "Gather", "Unsqueeze", "Mul"])
      expect(counts.get(op)).toBeUndefined();
    expect(counts.get("Concat")).toBe(2); // the cache's own
    expect(counts.get("Reshape")).toBe(4);
    for (const node of folded.graph.node.filter((n) => n.opType === "Reshape")) {
      expect(folded.graph.initializer.map((t) => t.name)).toContain(node.input[1]);
    }
    for (const [batch, tokens, past] of FOLD_CHECKS) {
      const feeds = attentionFeeds(batch, tokens, past);
      const reference = await run(attentionModel(), feeds);
      const out = await run(folded, feeds);
      for (const name of ["y", "present_key", "present_value"]) {
        expect(out[name], `${name} at ${batch}×${tokens}+${past}`).toEqual(reference[name]);
      }
    }
  });

  it("keeps the merges of a graph where a merged value leaves it, and still folds the rest", async () => {
    const folded = attentionModel({ mapAsOutput: true });
    const report = foldShapes(folded.graph, FOLD_SAMPLES);
    expect(report).toMatchObject({ folded: 4, collapsed: 0, kept: 6 });
    const feeds = attentionFeeds(4, 3, 6);
    const reference = await run(attentionModel({ mapAsOutput: true }), feeds);
    const out = await run(folded, feeds);
    expect(out.probs).toEqual(reference.probs);
    expect(out.y).toEqual(reference.y);
  });

  it("keeps the merges around a Softmax whose axis is the opset's default", async () => {
    // Opset 11 (these models'): the default axis is 1, which over [b·h, s, t] is not the last one.
    const folded = attentionModel({ softmaxAxis: false });
    expect(foldShapes(folded.graph, FOLD_SAMPLES)).toMatchObject({ collapsed: 0, kept: 6 });
    const feeds = attentionFeeds(3, 2, 4);
    const reference = await run(attentionModel({ softmaxAxis: false }), feeds);
    expect((await run(folded, feeds)).y).toEqual(reference.y);
  });

  it("refuses an op it cannot follow, before folding anything", () => {
    const m = model({
      inputs: [valueInfo("x", DataType.FLOAT, ["n", 2])],
      outputs: [valueInfo("y", DataType.FLOAT)],
      initializers: [int64Tensor("repeats", [2, 1], [2])],
      nodes: [makeNode("Tile", ["x", "repeats"], ["y"], "tile")],
    });
    const samples = [new Map([["x", [1, 2]]]), new Map([["x", [3, 2]]])];
    expect(() => foldShapes(m.graph, samples)).toThrow(GraphShapeError);
    expect(m.graph.node.map((n) => n.opType)).toEqual(["Tile"]);
  });
});

describe("graph helpers", () => {
  it("prunes dead nodes but keeps what a subgraph reads from the outer graph", () => {
    const inner = {
      nodes: [makeNode("Identity", ["kept"], ["y"], "inner")],
      outputs: [valueInfo("y", 1)],
    };
    const m = model({
      inputs: [valueInfo("x", DataType.FLOAT, [1]), valueInfo("c", BOOL, [1])],
      outputs: [valueInfo("y", DataType.FLOAT)],
      initializers: [floatTensor("unused", Float32Array.of(1), [1])],
      nodes: [
        makeNode("Relu", ["x"], ["kept"], "read-by-subgraph"),
        makeNode("Neg", ["x"], ["dead"], "dead"),
        ifNode("c", ["y"], inner, inner),
      ],
    });
    expect(prune(m.graph)).toBe(1);
    expect(m.graph.node.map((n) => n.name)).toEqual(["read-by-subgraph", "if"]);
    expect(m.graph.initializer).toEqual([]);
  });

  it("rejects a node that reads a value before it is produced", () => {
    const m = model({
      inputs: [valueInfo("x", DataType.FLOAT, [1])],
      outputs: [valueInfo("z", DataType.FLOAT)],
      nodes: [makeNode("Neg", ["y"], ["z"], "early"), makeNode("Relu", ["x"], ["y"], "late")],
    });
    expect(() => assertTopological(m.graph)).toThrow(GraphShapeError);
  });

  it("moves large weights to 64-byte aligned external data and keeps small ones inline", async () => {
    const big = random(100, 3);
    const m = model({
      inputs: [valueInfo("x", DataType.FLOAT, [100])],
      outputs: [valueInfo("y", DataType.FLOAT)],
      initializers: [
        floatTensor("small", Float32Array.of(2), [1]),
        floatTensor("big", big, [100]),
        floatTensor("big2", big, [100]),
      ],
      nodes: [
        makeNode("Add", ["x", "big"], ["a"], "a"),
        makeNode("Mul", ["a", "small"], ["b"], "b"),
        makeNode("Sub", ["b", "big2"], ["y"], "y"),
      ],
    });
    const feeds = { x: new ort.Tensor("float32", random(100, 9), [100]) };
    const inline = await run(m, feeds);
    const data = externalizeWeights(m, "weights.bin", 64);
    const [small, first, second] = m.graph.initializer;
    expect(small?.rawData.byteLength).toBe(4);
    expect(first?.externalData.map((e) => [e.key, e.value])).toEqual([
      ["location", "weights.bin"],
      ["offset", "0"],
      ["length", "400"],
    ]);
    expect(second?.externalData[1]?.value).toBe("448"); // 400 rounded up to 64 × 7
    expect(data.byteLength).toBe(448 + 400);
    expect(new Float32Array(data.buffer, 448, 100)).toEqual(big);
    const external = await run({ model: encodeModel(m), data, path: "weights.bin" }, feeds);
    expect(external.y).toEqual(inline.y);
  });
});
