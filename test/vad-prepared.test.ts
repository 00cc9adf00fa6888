/**
 * The prepared Silero model the worker runs (tools/models/silero-prepare.ts, written to
 * src/generated/ by tools/models/generated.ts) against the stock file it is made from, in workerd:
 * the same probabilities and states bit for bit on real audio, the same bytes when the
 * preparation runs here, and a graph whose `If`s read the frame's values refused.
 */
import { describe, expect, it } from "vitest";
import stockModel from "../node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx";
import preparedModel from "../src/generated/silero_vad_v5.prepared.onnx";
import { createSession, type InferenceSession, ort } from "../src/runtime/ort";
import {
  loadSilero,
  newVadState,
  speechProbability,
  VAD_CONTEXT_SAMPLES,
  VAD_FRAME_SAMPLES,
} from "../src/vad/silero";
import { decodeModel, encodeModel, GraphShapeError, makeNode } from "../tools/models/onnx-graph";
import { prepareSilero } from "../tools/models/silero-prepare";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";

/** Every frame of `samples` through the stock graph, fed as src/vad/silero.ts feeds its own. */
async function stockRun(session: InferenceSession, samples: Float32Array) {
  let state = new Float32Array(2 * 128);
  let context = new Float32Array(VAD_CONTEXT_SAMPLES);
  const probabilities: number[] = [];
  const states: Float32Array[] = [];
  for (let at = 0; at + VAD_FRAME_SAMPLES <= samples.length; at += VAD_FRAME_SAMPLES) {
    const input = new Float32Array(VAD_CONTEXT_SAMPLES + VAD_FRAME_SAMPLES);
    input.set(context, 0);
    input.set(samples.subarray(at, at + VAD_FRAME_SAMPLES), VAD_CONTEXT_SAMPLES);
    const out = await session.run({
      input: new ort.Tensor("float32", input, [1, input.length]),
      state: new ort.Tensor("float32", state, [2, 1, 128]),
      sr: new ort.Tensor("int64", BigInt64Array.from([16_000n]), []),
    });
    const p = out.output?.data;
    const next = out.stateN?.data;
    if (!(p instanceof Float32Array) || !(next instanceof Float32Array)) throw new Error("outputs");
    probabilities.push(p[0] ?? Number.NaN);
    state = new Float32Array(next);
    states.push(state);
    context = input.slice(input.length - VAD_CONTEXT_SAMPLES);
  }
  return { probabilities, states };
}

/** The same frames through the worker's own path (the prepared graph). */
async function workerRun(samples: Float32Array) {
  const vad = newVadState();
  const probabilities: number[] = [];
  const states: Float32Array[] = [];
  for (let at = 0; at + VAD_FRAME_SAMPLES <= samples.length; at += VAD_FRAME_SAMPLES) {
    probabilities.push(await speechProbability(vad, samples.subarray(at, at + VAD_FRAME_SAMPLES)));
    states.push(vad.state);
  }
  return { probabilities, states };
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Float bits, so that equality means bit for bit (not -0 == 0). */
const bits = (values: ArrayLike<number>) => [...new Uint32Array(Float32Array.from(values).buffer)];

describe("the prepared Silero model", () => {
  it("gives the stock graph's probabilities and states bit for bit on speech, music and silence", async () => {
    await loadSilero();
    const stock = await createSession(new Uint8Array(stockModel));
    for (const clip of ["wcpp_jfk.wav", "ns_librosa_trumpet.wav", "ns_generated_silence_5s.wav"]) {
      const samples = pcm16ToFloat((await wavFixture(clip)).pcm);
      const expected = await stockRun(stock, samples);
      const actual = await workerRun(samples);
      expect(actual.probabilities.length, clip).toBeGreaterThan(100);
      expect(bits(actual.probabilities), clip).toEqual(bits(expected.probabilities));
      const differing = actual.states.findIndex(
        (state, i) => bits(state).join() !== bits(expected.states[i] ?? []).join(),
      );
      expect(differing, `${clip}: first frame whose state differs`).toBe(-1);
    }
    await stock.release();
  });

  it("is what the preparation makes of the stock file here too, with no If left", async () => {
    await loadSilero();
    const made = await prepareSilero(ort, new Uint8Array(stockModel));
    expect(await sha256Hex(made)).toBe(await sha256Hex(new Uint8Array(preparedModel)));
    const graph = decodeModel(new Uint8Array(preparedModel)).graph;
    const stockGraph = decodeModel(new Uint8Array(stockModel)).graph;
    expect(stockGraph.node.some((node) => node.opType === "If")).toBe(true);
    expect(graph.node.filter((node) => node.opType === "If")).toEqual([]);
    expect(graph.input.map((input) => input.name)).toEqual(["input", "state"]);
  });

  it("refuses a graph whose If decides on the frame's values, not its shape", async () => {
    await loadSilero();
    const model = decodeModel(new Uint8Array(stockModel));
    const top = model.graph.node.find((node) => node.opType === "If");
    if (!top) throw new Error("the stock graph has an If");
    // The top If now branches on whether the frame holds any positive sample.
    const loudest = makeNode("ReduceMax", ["input"], ["loudest"], "loudest", {
      keepdims: { int: 0 },
    });
    const any = makeNode("Cast", ["loudest"], ["any_positive"], "any_positive", { to: { int: 9 } });
    model.graph.node.splice(model.graph.node.indexOf(top), 0, loudest, any);
    top.input[0] = "any_positive";
    await expect(prepareSilero(ort, encodeModel(model))).rejects.toThrow(GraphShapeError);
    await expect(prepareSilero(ort, encodeModel(model))).rejects.toThrow(/frame's values/);
  });
});
