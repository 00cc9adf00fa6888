/**
 * Bench-only worker (never deployed): the production model code — src/vad/silero.ts,
 * src/stt/model-store.ts (prepared Whisper from the MODELS bucket, checked against the manifest)
 * and src/stt/whisper/transcribe.ts — in workerd, reporting what the real service has no endpoint
 * for: ORT's WebAssembly heap after load and after each utterance, and the compute time of each
 * utterance measured inside the isolate. Driven by whisper-memory.ts.
 *
 *   GET  /ping                 nothing loaded: the isolate's baseline for memory readings
 *   POST /load                 Silero, then Whisper; times and heap after each (LoadReply)
 *   POST /transcribe           body: little-endian Float32 samples at 16 kHz (TranscribeReply)
 *   POST /read-models          reads and SHA-256s every manifest object again (ReadReply): the
 *                              R2 + hashing share of a load, without ORT's session creation
 *
 * Each measured call sits between two I/O boundaries (worker-common.ts: workerd's clock may be
 * frozen while JS runs).
 */
import { wasmHeapBytes } from "../../../src/runtime/ort";
import manifest from "../../../src/stt/model-manifest.json";
import { loadWhisper } from "../../../src/stt/model-store";
import { createWhisperModel, type WhisperModel } from "../../../src/stt/whisper/model";
import { transcribe } from "../../../src/stt/whisper/transcribe";
import { loadSilero } from "../../../src/vad/silero";
import {
  float32Body,
  type LoadReply,
  type ReadReply,
  router,
  type TranscribeReply,
  tick,
} from "./worker-common";

interface Env {
  MODELS: R2Bucket;
}

/** 30 s × 16 000 samples × 4 bytes = 1 920 000 bytes: Whisper's whole window, the most it takes. */
const MAX_BODY_BYTES = 1_920_000;
const SAMPLE_RATE = 16_000;

let model: WhisperModel | undefined;

async function load(env: Env): Promise<LoadReply> {
  const heapBeforeBytes = wasmHeapBytes() ?? null;
  const t0 = await tick();
  await loadSilero();
  const t1 = await tick();
  const heapAfterVadBytes = wasmHeapBytes() ?? null;
  const models = await loadWhisper(env.MODELS);
  model = createWhisperModel({ ...models, variableLength: true });
  const t2 = await tick();
  return {
    vadMs: t1 - t0,
    whisperMs: t2 - t1,
    heapBeforeBytes,
    heapAfterVadBytes,
    heapAfterLoadBytes: wasmHeapBytes() ?? null,
    projectionBytes: models.projection.memoryBytes,
  };
}

/** What model-store.ts does before creating sessions: every object read whole and hashed. */
async function readModels(env: Env): Promise<ReadReply> {
  let bytes = 0;
  const t0 = await tick();
  for (const file of Object.values(manifest.files)) {
    const object = await env.MODELS.get(file.key);
    if (object === null) throw new Error(`${file.key} is not in the bucket`);
    const data = await object.arrayBuffer();
    await crypto.subtle.digest("SHA-256", data);
    bytes += data.byteLength;
  }
  const t1 = await tick();
  return { ms: t1 - t0, bytes, objects: Object.keys(manifest.files).length };
}

async function transcribeBody(request: Request): Promise<Response> {
  if (model === undefined) return new Response("POST /load first", { status: 409 });
  const audio = await float32Body(request, MAX_BODY_BYTES);
  const t0 = await tick();
  const result = await transcribe(model, audio, { language: "en" });
  const t1 = await tick();
  const reply: TranscribeReply = {
    audioSeconds: audio.length / SAMPLE_RATE,
    ms: t1 - t0,
    melMs: result.stats.melMs,
    encoderMs: result.stats.encoderMs,
    decoderMs: result.stats.decoderMs,
    decoderSteps: result.stats.decoderSteps,
    text: result.text,
    heapBytes: wasmHeapBytes() ?? null,
  };
  return Response.json(reply);
}

export default {
  fetch: router<Env>({
    "GET /ping": async () => new Response("ok"),
    "POST /read-models": async (_request, _url, env) => Response.json(await readModels(env)),
    "POST /load": async (_request, _url, env) => Response.json(await load(env)),
    "POST /transcribe": transcribeBody,
  }),
} satisfies ExportedHandler<Env>;
