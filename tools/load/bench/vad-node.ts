/**
 * The Node side of the "vad" bench section: the same Silero step as src/vad/silero.ts, run through
 * onnxruntime-web's Node entry (wasm backend, 1 thread) on the same model file (the prepared one,
 * tools/models/generated.ts, which tools/load/bench.ts writes before any section runs).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { InferenceSession } from "onnxruntime-web";
import { SESSION_OPTIONS } from "../../../src/runtime/session-options.ts";
import type { Clip } from "./clips.ts";
import { sum } from "./report.ts";
import type { VadBatch, VadRun } from "./vad-wire.ts";

type Ort = typeof import("onnxruntime-web");

/**
 * Mirrors src/vad/silero.ts (which Node cannot import: it imports the .onnx as a module): 512
 * samples at 16 kHz = 32 ms.
 */
export const VAD_FRAME_SAMPLES = 512;
const CONTEXT_SAMPLES = 64;
/** Shape [2, 1, 128]: the LSTM's h and c. */
const STATE_SIZE = 2 * 1 * 128;
const MODEL_FILE = "src/generated/silero_vad_v5.prepared.onnx";
export interface NodeModel {
  ort: Ort;
  session: InferenceSession;
  /** InferenceSession.create, ms: includes compiling ORT's wasm, which Node does here. */
  loadMs: number;
}

export async function loadNodeModel(root: string): Promise<NodeModel> {
  const ort: Ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  const model = await readFile(path.join(root, MODEL_FILE));
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(model, SESSION_OPTIONS);
  return { ort, session, loadMs: performance.now() - t0 };
}

interface NodeVad {
  state: Float32Array;
  context: Float32Array;
}

/** One frame, exactly as src/vad/silero.ts `speechProbability` does it. */
async function nodeStep(model: NodeModel, vad: NodeVad, frame: Float32Array): Promise<number> {
  const { ort, session } = model;
  const input = new Float32Array(CONTEXT_SAMPLES + VAD_FRAME_SAMPLES);
  input.set(vad.context, 0);
  input.set(frame, CONTEXT_SAMPLES);
  const outputs = await session.run({
    input: new ort.Tensor("float32", input, [1, input.length]),
    state: new ort.Tensor("float32", vad.state, [2, 1, 128]),
  });
  const probability = outputs.output?.data;
  const nextState = outputs.stateN?.data;
  if (!(probability instanceof Float32Array) || !(nextState instanceof Float32Array)) {
    throw new Error("Silero VAD returned unexpected outputs in Node");
  }
  vad.state = new Float32Array(nextState);
  vad.context = input.slice(input.length - CONTEXT_SAMPLES);
  const p = probability[0];
  if (p === undefined) throw new Error("Silero VAD returned no probability in Node");
  return p;
}

/**
 * One Node pass over the clips, each frame timed alone; the times are also summed into exactly
 * the batches workerd reported for the same clip, so both sides can be compared batch for batch.
 * On the first pass the first frame is returned apart as the cold one, as workerd does.
 */
export async function nodeRound(
  model: NodeModel,
  clips: Clip[],
  layout: VadBatch[][],
  first: boolean,
  /** Silent frames run before each clip, untimed (the session's priming: VAD_PRIMING_FRAMES). */
  primingFrames = 0,
): Promise<{ row: VadRun[]; frameMs: number[]; firstFrameMs: number | null }> {
  const row: VadRun[] = [];
  const frameMs: number[] = [];
  let firstFrameMs: number | null = null;
  for (const [i, clip] of clips.entries()) {
    const vad: NodeVad = {
      state: new Float32Array(STATE_SIZE),
      context: new Float32Array(CONTEXT_SAMPLES),
    };
    const silence = new Float32Array(VAD_FRAME_SAMPLES);
    for (let f = 0; f < primingFrames; f++) await nodeStep(model, vad, silence);
    const probabilities: number[] = [];
    const times: number[] = [];
    const frames = Math.floor(clip.samples.length / VAD_FRAME_SAMPLES);
    for (let f = 0; f < frames; f++) {
      const frame = clip.samples.subarray(f * VAD_FRAME_SAMPLES, (f + 1) * VAD_FRAME_SAMPLES);
      const start = performance.now();
      probabilities.push(await nodeStep(model, vad, frame));
      times.push(performance.now() - start);
    }
    const batches = (layout[i] ?? []).map(({ start, frames: n }) => ({
      start,
      frames: n,
      ms: sum(times.slice(start, start + n)),
    }));
    const cold = first && i === 0;
    if (cold) firstFrameMs = times[0] ?? null;
    frameMs.push(...times.slice(cold ? 1 : 0));
    row.push({ probabilities, batches, cold: null, wasmHeapBytes: null });
  }
  return { row, frameMs, firstFrameMs };
}
