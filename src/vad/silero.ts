/**
 * Silero VAD v5 as a shared, stateless model: one ONNX session per isolate, and every caller
 * passes its own recurrent state and context in and gets them back. Nothing per-session lives
 * here, so two sessions can never see each other's state.
 *
 * The model is bundled into the worker (wrangler's Data rule): `@ricky0123/vad-web`'s file,
 * byte-identical to snakers4/silero-vad (sha256 2623a295…; test/vad-model.test.ts checks it),
 * prepared at build time for the one way it is called here — 16 kHz, one frame with its context,
 * batch 1 (tools/models/silero-prepare.ts): the stock graph's `If`s on the sample rate and on
 * shapes, which ORT ran on every frame, are resolved, its outputs bit for bit the stock graph's.
 */
// Relative for wrangler's module collector, which resolves .onnx imports from this file only.
import sileroModel from "../generated/silero_vad_v5.prepared.onnx";
import { runExclusive } from "../runtime/inference-lock";
import { createSession, type InferenceSession, ort } from "../runtime/ort";
import { IsolateOnce } from "../runtime/own-context";
import { VAD_PRIMING_FRAMES } from "./vad-machine";

export { VAD_PRIMING_FRAMES };

/** 32 ms at 16 kHz: the frame size Silero v5 is trained on. */
export const VAD_FRAME_SAMPLES = 512;
/** The model also sees the last 64 samples of the previous frame. */
export const VAD_CONTEXT_SAMPLES = 64;
/** Shape [2, 1, 128]: the LSTM's h and c. */
export const VAD_STATE_SIZE = 2 * 1 * 128;
export const VAD_SAMPLE_RATE = 16_000;

/** One session's recurrent state; create with `newVadState`, never share. */
export interface VadState {
  state: Float32Array;
  context: Float32Array;
}

export function newVadState(): VadState {
  return {
    state: new Float32Array(VAD_STATE_SIZE),
    context: new Float32Array(VAD_CONTEXT_SAMPLES),
  };
}

/** Shared by every session of the isolate; waiters await the loader's TurnEnd (own-context.ts). */
const model = new IsolateOnce<InferenceSession>();

/** The state VAD_PRIMING_FRAMES of silence leave from zeros: the same for every session. */
const primed = new IsolateOnce<VadState>();

/**
 * A new session's state, primed with silence (VAD_PRIMING_FRAMES): a copy of the isolate's one
 * primed state, so no session ever holds another's arrays.
 */
export async function primedVadState(): Promise<VadState> {
  const template = await primed.get(async () => {
    const vad = newVadState();
    const silence = new Float32Array(VAD_FRAME_SAMPLES);
    for (let i = 0; i < VAD_PRIMING_FRAMES; i++) await speechProbability(vad, silence);
    return vad;
  });
  return { state: template.state.slice(), context: template.context.slice() };
}

/** The isolate's one Silero session; a failed load is forgotten so the next caller retries. */
export function loadSilero(): Promise<InferenceSession> {
  // Under the inference lock: ORT-web keeps mounted model data in one module-wide table that every
  // session creation clears when it ends, so creations must not interleave with other ORT work.
  return model.get(() => runExclusive(() => createSession(new Uint8Array(sileroModel))));
}

/**
 * Speech probability of one 512-sample frame. Updates `vad.state` and `vad.context` in place:
 * they belong to the caller's session.
 */
export async function speechProbability(vad: VadState, frame: Float32Array): Promise<number> {
  if (frame.length !== VAD_FRAME_SAMPLES) {
    throw new RangeError(`VAD frame must be ${VAD_FRAME_SAMPLES} samples, got ${frame.length}`);
  }
  const session = await loadSilero();
  const input = new Float32Array(VAD_CONTEXT_SAMPLES + VAD_FRAME_SAMPLES);
  input.set(vad.context, 0);
  input.set(frame, VAD_CONTEXT_SAMPLES);
  const outputs = await runExclusive(() =>
    session.run({
      input: new ort.Tensor("float32", input, [1, input.length]),
      state: new ort.Tensor("float32", vad.state, [2, 1, 128]),
    }),
  );
  const probability = outputs.output?.data;
  const nextState = outputs.stateN?.data;
  if (!(probability instanceof Float32Array) || !(nextState instanceof Float32Array)) {
    throw new Error("Silero VAD returned unexpected outputs");
  }
  vad.state = new Float32Array(nextState);
  vad.context = input.slice(input.length - VAD_CONTEXT_SAMPLES);
  const p = probability[0];
  if (p === undefined) throw new Error("Silero VAD returned no probability");
  return p;
}

/** One 32-ms frame's speech probability; a pipeline's own (Silero's state is per session). */
export type FrameScorer = (samples: Float32Array) => Promise<number>;

/** Silero v5 with a recurrent state of its own, primed on first use. */
export function sileroScorer(): FrameScorer {
  let state: VadState | null = null;
  return async (samples) => {
    state ??= await primedVadState();
    return speechProbability(state, samples);
  };
}
