/**
 * Silero in Node, and where the server's utterances end, replayed with it.
 *
 * The model: the same Silero step as src/vad/silero.ts (which Node cannot import: it imports the
 * .onnx as a module), through onnxruntime-web's Node entry (wasm backend, 1 thread), on the same
 * prepared file (tools/models/generated.ts, which tools/load/bench.ts writes before any section).
 * The vad section checks that it gives workerd's probabilities: that is what makes the replay a
 * valid reference for the whisper section's latencies.
 *
 * The replay runs it over the same 16 kHz stream a session received, from the same primed state
 * (silence first, as src/vad/silero.ts primes every session), through the same state machine
 * (src/vad/vad-machine.ts). Each endpoint gives
 * - `decidedAtSample`: the end of the frame whose silence completed the endpointing window, i.e.
 *   the end of the audio the final covers (the server feeds that frame to the utterance too);
 * - `speechEndSample`: the end of the utterance's last speech frame (probability ≥ 0.5).
 * The bench matches them to the finals it received by where a final ends: at `decidedAtSample`, or
 * earlier, from the last speech frame on, when the final came from the decode the server started
 * at the first silence (an early final). A replay that diverged from the server is detected, not
 * trusted.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { InferenceSession } from "onnxruntime-web";
import { DEFAULT_ENDPOINTING_MS } from "../../../src/protocol/option-schema.ts";
import { SESSION_OPTIONS } from "../../../src/runtime/session-options.ts";
import {
  DEFAULT_VAD_OPTIONS,
  VAD_PRIMING_FRAMES,
  VadMachine,
} from "../../../src/vad/vad-machine.ts";

type Ort = typeof import("onnxruntime-web");

/** As in src/vad/silero.ts: 512 samples at 16 kHz = 32 ms, after 64 samples of context. */
export const VAD_FRAME_SAMPLES = 512;
const CONTEXT_SAMPLES = 64;
/** Shape [2, 1, 128]: the LSTM's h and c. */
const STATE_SHAPE = [2, 1, 128];
const MODEL_FILE = "src/generated/silero_vad_v5.prepared.onnx";

interface NodeModel {
  ort: Ort;
  session: InferenceSession;
}

export async function loadNodeModel(root: string): Promise<NodeModel> {
  const ort: Ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  const model = await readFile(path.join(root, MODEL_FILE));
  return { ort, session: await ort.InferenceSession.create(model, SESSION_OPTIONS) };
}

/**
 * The probability of every whole frame of `samples`, from a fresh state, after `primingFrames`
 * silent frames (the session's priming), each step exactly as src/vad/silero.ts
 * `speechProbability` does it.
 */
export async function nodeProbabilities(
  { ort, session }: NodeModel,
  samples: Float32Array,
  primingFrames = 0,
): Promise<number[]> {
  let state = new Float32Array(2 * 1 * 128);
  let context = new Float32Array(CONTEXT_SAMPLES);
  const step = async (frame: Float32Array) => {
    const input = new Float32Array(CONTEXT_SAMPLES + VAD_FRAME_SAMPLES);
    input.set(context, 0);
    input.set(frame, CONTEXT_SAMPLES);
    const outputs = await session.run({
      input: new ort.Tensor("float32", input, [1, input.length]),
      state: new ort.Tensor("float32", state, STATE_SHAPE),
    });
    const probability = outputs.output?.data;
    const nextState = outputs.stateN?.data;
    if (!(probability instanceof Float32Array) || !(nextState instanceof Float32Array)) {
      throw new Error("Silero VAD returned unexpected outputs in Node");
    }
    state = new Float32Array(nextState);
    context = input.slice(input.length - CONTEXT_SAMPLES);
    const p = probability[0];
    if (p === undefined) throw new Error("Silero VAD returned no probability in Node");
    return p;
  };
  const silence = new Float32Array(VAD_FRAME_SAMPLES);
  for (let f = 0; f < primingFrames; f++) await step(silence);
  const probabilities: number[] = [];
  for (let at = 0; at + VAD_FRAME_SAMPLES <= samples.length; at += VAD_FRAME_SAMPLES) {
    probabilities.push(await step(samples.subarray(at, at + VAD_FRAME_SAMPLES)));
  }
  return probabilities;
}

export interface Endpoint {
  /** Exclusive end of the last speech frame, samples. */
  speechEndSample: number;
  /** End of the frame at which the endpointing silence was complete, samples. */
  decidedAtSample: number;
}

/**
 * Endpoints of each stream (16 kHz mono floats, each from the start of its own session), with the
 * session's default options or another silence run (`endpointing=300`; or a client's own VAD that
 * stops 200 ms after speech).
 */
export async function replayEndpoints(
  root: string,
  streams: Float32Array[],
  minSilenceMs: number = DEFAULT_ENDPOINTING_MS,
): Promise<Endpoint[][]> {
  const model = await loadNodeModel(root);
  const out: Endpoint[][] = [];
  for (const samples of streams) {
    const machine = new VadMachine({ ...DEFAULT_VAD_OPTIONS, minSilenceMs });
    const endpoints: Endpoint[] = [];
    const probabilities = await nodeProbabilities(model, samples, VAD_PRIMING_FRAMES);
    for (const [frame, probability] of probabilities.entries()) {
      for (const event of machine.push(probability)) {
        if (event.type !== "speech-end" || event.forced) continue;
        endpoints.push({
          speechEndSample: event.endFrame * VAD_FRAME_SAMPLES,
          decidedAtSample: (frame + 1) * VAD_FRAME_SAMPLES,
        });
      }
    }
    out.push(endpoints);
  }
  return out;
}
