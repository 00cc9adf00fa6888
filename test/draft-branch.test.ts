/**
 * The draft path's pieces that need no real model (tools/models/row-quantization.ts,
 * draft-branch.ts), on small synthetic graphs in onnxruntime-web: a matmul on activations
 * quantized per row gives each row what the export's per-tensor quantization gives that row run
 * alone, bit for bit; and the rewrite refuses a decoder it does not recognise, before changing it.
 * The real decoder's draft rows against its steps: test/whisper-session-draft-rows.test.ts.
 */
import type { onnx as OnnxTypes } from "onnx-proto";
import { describe, expect, it } from "vitest";
import { createSession, ort } from "../src/runtime/ort";
import { DRAFT_BRANCH_INPUT } from "../src/stt/whisper/decode-types";
import { addDraftBranch } from "../tools/models/draft-branch.ts";
import {
  assertTopological,
  DataType,
  decodeModel,
  encodeModel,
  floatTensor,
  GraphShapeError,
  graphAttribute,
  type Model,
  makeNode,
  type Node,
  onnx,
  prune,
  type Tensor,
  tensorValueInfo,
} from "../tools/models/onnx-graph.ts";
import { addRowConstants, quantizeRowsOf } from "../tools/models/row-quantization.ts";

const WIDTH = 16;
const COLUMNS = 5;
const ROWS = 6;

function model(nodes: Node[], inputs: string[], outputs: string[], initializers: Tensor[]): Model {
  const proto = onnx.ModelProto.create({
    irVersion: 6,
    opsetImport: [{ domain: "", version: 11 }],
    graph: onnx.GraphProto.create({
      name: "test",
      node: nodes as unknown as OnnxTypes.INodeProto[],
      input: inputs.map((name) => tensorValueInfo(name, DataType.FLOAT, ["b", "rows", WIDTH])),
      output: outputs.map((name) => tensorValueInfo(name, DataType.FLOAT, ["b", "rows", COLUMNS])),
      initializer: initializers as unknown as OnnxTypes.ITensorProto[],
    }),
  });
  return decodeModel(onnx.ModelProto.encode(proto).finish());
}

/** Deterministic values in [-1, 1). */
function random(length: number, seed: number): number[] {
  let state = seed >>> 0;
  return Array.from({ length }, () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

function int8Tensor(name: string, values: number[], dims: number[]): Tensor {
  return onnx.TensorProto.create({
    name,
    dataType: DataType.INT8,
    dims,
    rawData: new Uint8Array(Int8Array.from(values).buffer),
  }) as unknown as Tensor;
}

/** The export's quantized linear layer: DynamicQuantizeLinear → MatMulInteger → Cast → × scales. */
function quantizedLayer(): Model {
  const weights = random(WIDTH * COLUMNS, 7).map((v) => Math.round(v * 127));
  return model(
    [
      makeNode("DynamicQuantizeLinear", ["x"], ["q", "s", "z"], "quantize"),
      makeNode("MatMulInteger", ["q", "w", "z", "w_zero"], ["int"], "matmul"),
      makeNode("Cast", ["int"], ["float"], "cast", { to: { int: DataType.FLOAT } }),
      makeNode("Mul", ["s", "w_scale"], ["scales"], "scales"),
      makeNode("Mul", ["float", "scales"], ["y"], "scale"),
    ],
    ["x"],
    ["y"],
    [
      int8Tensor("w", weights, [WIDTH, COLUMNS]),
      int8Tensor("w_zero", [3], []),
      floatTensor("w_scale", [0.0123], []),
    ],
  );
}

/** Rows of very different ranges (row r spans about ±(r + 1)³), as a batched run's rows can. */
function rowsInput(): Float32Array {
  const values = random(ROWS * WIDTH, 11);
  return Float32Array.from(values, (v, i) => v * (Math.floor(i / WIDTH) + 1) ** 3 + 0.25);
}

async function run(m: Model, x: Float32Array, rows: number): Promise<Float32Array> {
  const session = await createSession(encodeModel(m));
  try {
    const out = await session.run({ x: new ort.Tensor("float32", x, [1, rows, WIDTH]) });
    return out.y?.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe("per-row quantization", () => {
  it("gives every row of a batched run what the per-tensor layer gives that row alone", async () => {
    const perRow = quantizedLayer();
    addRowConstants(perRow.graph);
    const quantize = perRow.graph.node.find((n) => n.opType === "DynamicQuantizeLinear") as Node;
    quantizeRowsOf(perRow.graph, perRow.graph, quantize, "rows");
    prune(perRow.graph);
    assertTopological(perRow.graph);
    expect(perRow.graph.node.some((n) => n.opType === "DynamicQuantizeLinear")).toBe(false);

    const x = rowsInput();
    const batched = await run(perRow, x, ROWS);
    const shared = await run(quantizedLayer(), x, ROWS);
    for (let r = 0; r < ROWS; r++) {
      const alone = await run(quantizedLayer(), x.slice(r * WIDTH, (r + 1) * WIDTH), 1);
      const row = batched.subarray(r * COLUMNS, (r + 1) * COLUMNS);
      expect(Array.from(row), `row ${r}`).toEqual(Array.from(alone));
      // The per-tensor layer run on all rows gives the small rows the widest row's step.
      if (r === 0) expect(Array.from(shared.subarray(0, COLUMNS))).not.toEqual(Array.from(alone));
    }
  });
});

/** A decoder-like model whose cache branch holds `self` and `cross` attention pairs. */
function decoderLike(self: number, cross: number, extraInputs: string[] = []): Model {
  const pair = (kind: "self" | "cross", i: number): Node[] => [
    makeNode("Softmax", [`${kind}${i}/scores`], [`${kind}${i}/p`], `${kind}${i}/Softmax`, {
      axis: { int: -1 },
    }),
    makeNode(
      "MatMul",
      [
        `${kind}${i}/p`,
        kind === "self" ? `present.${i}.decoder.value` : `past_key_values.${i}.encoder.value`,
      ],
      [`${kind}${i}/out`],
      `${kind}${i}/MatMul`,
    ),
  ];
  const body = [
    ...Array.from({ length: self }, (_, i) => pair("self", i)),
    ...Array.from({ length: cross }, (_, i) => pair("cross", i)),
  ].flat();
  const branch = onnx.GraphProto.create({
    name: "branch",
    node: body as unknown as OnnxTypes.INodeProto[],
  });
  const ifNode = makeNode("If", ["use_cache_branch"], [], "if");
  ifNode.attribute = [
    graphAttribute("then_branch", branch as never),
    graphAttribute("else_branch", onnx.GraphProto.create({ name: "prompt" }) as never),
  ];
  const m = model([ifNode], [], [], []);
  m.graph.input = ["use_cache_branch", ...extraInputs].map((name) =>
    tensorValueInfo(name, DataType.BOOL, [1]),
  );
  return m;
}

describe("the draft path rewrite", () => {
  const shape = { layers: 4, positions: 448 };

  it("refuses a cache branch with another number of self-attention Softmaxes, unchanged", () => {
    const m = decoderLike(3, 4);
    const before = encodeModel(m);
    expect(() => addDraftBranch(m, shape)).toThrow(GraphShapeError);
    expect(() => addDraftBranch(m, shape)).toThrow(/expected 4 self- and 4 cross-attention/);
    expect(encodeModel(m)).toEqual(before);
  });

  it("refuses a cache branch whose attention reads values it does not know", () => {
    const m = decoderLike(4, 4);
    const branch = m.graph.node[0]?.attribute[0]?.g;
    const matmul = branch?.node.find((n) => n.name === "self2/MatMul");
    if (!matmul) throw new Error("test graph has no self2/MatMul");
    matmul.input = ["self2/p", "some/other/value"];
    expect(() => addDraftBranch(m, shape)).toThrow(/reads values some\/other\/value/);
  });

  it("refuses a decoder that already has the draft path", () => {
    expect(() => addDraftBranch(decoderLike(4, 4, [DRAFT_BRANCH_INPUT]), shape)).toThrow(
      /already has use_draft_branch/,
    );
  });
});
