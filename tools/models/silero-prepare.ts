/**
 * The VAD model as the worker runs it (src/generated/silero_vad_v5.prepared.onnx, written by
 * generated.ts): Silero v5 as @ricky0123/vad-web ships it with its control flow resolved for the
 * one way Earshot calls it: 16 kHz, batch 1, one 512-sample frame after 64 samples of context,
 * the LSTM state [2, 1, 128].
 *
 * The stock graph serves both sample rates and any batch or frame length through nested `If`s on
 * `sr` and on tensor shapes; on every frame ORT runs those conditions, the shape arithmetic that
 * feeds them and the `If`s themselves (55 nodes a frame under ORT's profiler; 31 here). Measured
 * (README "Models"): a frame in workerd 0.88× the stock graph's, its first round 0.54×, ORT's heap
 * after load 8 MiB smaller, the isolate's capacity 11 → 12 sessions. The preparation:
 * 1. for each `If`, checks that its condition reads the audio and the state only through their
 *    shapes (`Shape`, `Size`), so it is the same on every frame, then observes it by running the
 *    graph with the condition as an extra output on Earshot's inputs;
 * 2. puts the branch taken in the `If`'s place, again until no `If` is left (the branches hold
 *    `If`s of their own);
 * 3. declares the inputs' shapes and makes `sr` the constant 16000, so ORT folds the shape
 *    arithmetic when it loads the graph, and drops the nodes and initializers nothing reads;
 * 4. runs stock and prepared side by side over VERIFY_FRAMES frames and returns nothing unless
 *    every probability and every state is the same bit for bit.
 * ORT's own `If` inlining is not used: given the constant `sr` and static shapes it tries, and
 * fails on this graph ("… is not If node's input or previous node output in this subgraph").
 * No Node APIs here: the caller gives ORT, so the tests run it in workerd too.
 */
import type * as OrtModule from "onnxruntime-web/wasm";
import { SESSION_OPTIONS } from "../../src/runtime/session-options.ts";
import {
  assertTopological,
  DataType,
  decodeModel,
  describe,
  encodeModel,
  type Graph,
  GraphShapeError,
  int64Tensor,
  type Model,
  makeNode,
  type Node,
  prune,
  replaceNode,
  subgraph,
  subgraphs,
  tensorValueInfo,
} from "./onnx-graph.ts";

/** onnxruntime-web's module: Node's import of it, or the worker's (src/runtime/ort.ts). */
export type Ort = typeof OrtModule;

/**
 * Earshot's only call (src/vad/silero.ts, which Node cannot import: it imports the .onnx): 16 kHz,
 * 64 samples of context before a 512-sample frame, the LSTM's state [2, 1, 128].
 */
const SAMPLE_RATE = 16_000;
const FRAME_SAMPLES = 512;
const CONTEXT_SAMPLES = 64;
const INPUT_SAMPLES = CONTEXT_SAMPLES + FRAME_SAMPLES;
const STATE_DIMS = [2, 1, 128];
const STATE_SIZE = 2 * 1 * 128;
/** Frames the prepared graph must reproduce bit for bit before it is written. */
const VERIFY_FRAMES = 96;
/** Graph inputs whose values (not shapes) change from frame to frame. */
const DATA_INPUTS = new Set(["input", "state"]);

/** One frame's feeds; the stock graph also takes `sr`. */
function feeds(ort: Ort, input: Float32Array, state: Float32Array, withRate: boolean) {
  const out: Record<string, OrtModule.Tensor> = {
    input: new ort.Tensor("float32", input, [1, INPUT_SAMPLES]),
    state: new ort.Tensor("float32", state, STATE_DIMS),
  };
  if (withRate) out.sr = new ort.Tensor("int64", BigInt64Array.from([BigInt(SAMPLE_RATE)]), []);
  return out;
}

/**
 * Whether `name` depends on the frame's values: a path back from it reaches `input` or `state`
 * without passing a `Shape` or `Size` (which read only the shape, fixed here).
 */
function readsFrameValues(graph: Graph, name: string): boolean {
  const producer = new Map<string, Node>();
  for (const node of graph.node) for (const out of node.output) producer.set(out, node);
  const seen = new Set<string>();
  const visit = (value: string): boolean => {
    if (seen.has(value)) return false;
    seen.add(value);
    if (DATA_INPUTS.has(value)) return true;
    const node = producer.get(value);
    if (!node || node.opType === "Shape" || node.opType === "Size") return false;
    if (subgraphs(node).length > 0) {
      throw new GraphShapeError(`an If's condition passes through ${describe(node)}`);
    }
    return node.input.some((input) => input !== "" && visit(input));
  };
  return visit(name);
}

/** The `If` replaced by its branch: the branch's nodes in its place, outputs through Identity. */
function inlineBranch(graph: Graph, node: Node, taken: boolean): void {
  const branch = subgraph(node, taken ? "then_branch" : "else_branch");
  const renames = node.output.map((output, i) => {
    const inner = branch.output[i]?.name;
    if (inner === undefined) throw new GraphShapeError(`${describe(node)}: branch output ${i}`);
    return makeNode("Identity", [inner], [output], `${node.name}/taken_${i}`);
  });
  replaceNode(graph, node, [...branch.node, ...renames]);
  graph.initializer.push(...branch.initializer);
}

function session(ort: Ort, bytes: Uint8Array): Promise<OrtModule.InferenceSession> {
  return ort.InferenceSession.create(bytes, { ...SESSION_OPTIONS, logSeverityLevel: 3 });
}

/** Resolves every `If` of the graph for Earshot's inputs (steps 1 and 2 of the header). */
async function resolveIfs(ort: Ort, model: Model): Promise<void> {
  const zeros = feeds(ort, new Float32Array(INPUT_SAMPLES), new Float32Array(STATE_SIZE), true);
  for (;;) {
    const ifs = model.graph.node.filter((node) => node.opType === "If");
    if (ifs.length === 0) return;
    const conditions = ifs.map((node) => {
      const condition = node.input[0] ?? "";
      if (readsFrameValues(model.graph, condition)) {
        throw new GraphShapeError(`${describe(node)}'s condition depends on the frame's values`);
      }
      return condition;
    });
    // The probe keeps `sr` an input and the shapes free, so ORT does not try its own inlining.
    const probe = decodeModel(encodeModel(model));
    probe.graph.output.push(...conditions.map((name) => tensorValueInfo(name, DataType.BOOL)));
    const probing = await session(ort, encodeModel(probe));
    const observed = await probing.run(zeros, conditions);
    await probing.release();
    ifs.forEach((node, i) => {
      const value = observed[conditions[i] ?? ""]?.data;
      if (!(value instanceof Uint8Array) || value.length !== 1) {
        throw new GraphShapeError(`${describe(node)}: condition is not one bool`);
      }
      inlineBranch(model.graph, node, value[0] === 1);
    });
  }
}

/** A deterministic test signal: silence, then tones, chirps and noise at speech-like levels. */
function verifySignal(): Float32Array {
  const samples = new Float32Array(VERIFY_FRAMES * FRAME_SAMPLES);
  let seed = 12_345;
  for (let i = 0; i < samples.length; i++) {
    seed = (seed * 1_103_515_245 + 12_345) >>> 0;
    const noise = (seed / 2 ** 32 - 0.5) * 0.05;
    const t = i / SAMPLE_RATE;
    const voiced = Math.sin(2 * Math.PI * (120 + 80 * Math.sin(3 * t)) * t) * 0.3;
    samples[i] = i < 8 * FRAME_SAMPLES ? 0 : (Math.floor(i / 4096) % 2 === 0 ? voiced : 0) + noise;
  }
  return samples;
}

/** Runs both graphs over the test signal; throws at the first bit that differs. */
async function verify(ort: Ort, stock: Uint8Array, prepared: Uint8Array): Promise<void> {
  const [a, b] = [await session(ort, stock), await session(ort, prepared)];
  const signal = verifySignal();
  let [stateA, stateB] = [new Float32Array(STATE_SIZE), new Float32Array(STATE_SIZE)];
  let context = new Float32Array(CONTEXT_SAMPLES);
  for (let f = 0; f < VERIFY_FRAMES; f++) {
    const input = new Float32Array(INPUT_SAMPLES);
    input.set(context, 0);
    input.set(signal.subarray(f * FRAME_SAMPLES, (f + 1) * FRAME_SAMPLES), CONTEXT_SAMPLES);
    context = input.slice(FRAME_SAMPLES);
    const x = await a.run(feeds(ort, input, stateA, true));
    const y = await b.run(feeds(ort, input, stateB, false));
    const [px, py] = [x.output?.data, y.output?.data];
    const [sx, sy] = [x.stateN?.data, y.stateN?.data];
    if (!(sx instanceof Float32Array && sy instanceof Float32Array)) throw new Error("no stateN");
    if (px?.[0] !== py?.[0] || sx.length !== sy.length || sx.some((v, i) => v !== sy[i])) {
      throw new Error(`prepared Silero differs from stock at frame ${f}: ${px?.[0]} vs ${py?.[0]}`);
    }
    [stateA, stateB] = [new Float32Array(sx), new Float32Array(sy)];
  }
  await Promise.all([a.release(), b.release()]);
}

/**
 * The prepared graph of `stock` (see the header), verified against it, on `ort` (set up by the
 * caller: one thread, no proxy).
 */
export async function prepareSilero(ort: Ort, stock: Uint8Array): Promise<Uint8Array> {
  const model = decodeModel(stock);
  const inputs = model.graph.input.map((input) => input.name).sort();
  if (inputs.join() !== "input,sr,state") {
    throw new GraphShapeError(`Silero's inputs are ${inputs.join(", ")}, not input, sr, state`);
  }
  if (!model.graph.node.some((node) => node.opType === "If")) {
    throw new GraphShapeError("Silero without an If");
  }
  await resolveIfs(ort, model);
  model.graph.input = [
    tensorValueInfo("input", DataType.FLOAT, [1, INPUT_SAMPLES]),
    tensorValueInfo("state", DataType.FLOAT, STATE_DIMS),
  ];
  model.graph.initializer.push(int64Tensor("sr", [SAMPLE_RATE], []));
  // What fed only a condition, and the branches' leftovers: ORT would drop them at load, with a
  // warning per initializer.
  prune(model.graph);
  assertTopological(model.graph);
  const prepared = encodeModel(model);
  await verify(ort, stock, prepared);
  return prepared;
}
