import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ort, type Tensor, wasmHeapBytes } from "../src/runtime/ort";
import manifest from "../src/stt/model-manifest.json";
import {
  loadWhisper,
  type ModelFileName,
  ModelUnavailableError,
  type WhisperModels,
} from "../src/stt/model-store";
import { lastRow, runDecoder } from "../src/stt/whisper/decoder-run";
import { logMelSpectrogram } from "../src/stt/whisper/mel";
import { createWhisperModel } from "../src/stt/whisper/model";
import { WhisperTokenizer } from "../src/stt/whisper/tokenizer";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";

/**
 * MODELS: an R2 bucket, seeded here from the files `npm run models` wrote (the MODEL_FILES
 * binding, test/setup/models.ts, serves models/ from the Node side).
 */
const bindings = env as unknown as { MODELS: R2Bucket; MODEL_FILES: Fetcher };

const FILES = Object.keys(manifest.files) as ModelFileName[];
const PREPARED: ReadonlySet<ModelFileName> = new Set([
  "encoder",
  "encoderData",
  "decoder",
  "decoderData",
  "vocabTable",
]);
/** The isolate's budget is 128 MB in all; ORT's heap must leave room for JS and ORT's code. */
const HEAP_LIMIT_BYTES = 100_000_000;
const LAYERS = 4;

async function diskFile(name: ModelFileName): Promise<Uint8Array> {
  const folder = PREPARED.has(name) ? "prepared" : "stock";
  const response = await bindings.MODEL_FILES.fetch(
    `http://models/${folder}/${manifest.files[name].name}`,
  );
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status} ${await response.text()}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function put(name: ModelFileName, bytes: Uint8Array): Promise<void> {
  await bindings.MODELS.put(manifest.files[name].key, bytes);
}

async function seed(): Promise<void> {
  for (const name of FILES) await put(name, await diskFile(name));
}

async function loadError(): Promise<ModelUnavailableError> {
  const outcome = await loadWhisper(bindings.MODELS).then(
    () => new Error("loaded, expected a ModelUnavailableError"),
    (error: unknown) => error,
  );
  if (!(outcome instanceof ModelUnavailableError)) throw outcome;
  return outcome;
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] ?? 0) > (values[best] ?? 0)) best = i;
  return best;
}

/**
 * Greedy decoding without timestamps: `steps` tokens after the prompt, through the service's own
 * decoder runs (the table rows fed, English logits over the head, projected by the kernel).
 */
async function greedy(models: WhisperModels, hidden: Tensor, prompt: number[], steps: number) {
  const model = createWhisperModel({ ...models, variableLength: true });
  const tokens: number[] = [];
  const cacheLengths: number[] = [];
  let step = await runDecoder(model, prompt, hidden, undefined, [prompt.length - 1]);
  for (let i = 0; i < steps; i++) {
    const token = argmax(lastRow(step));
    tokens.push(token);
    cacheLengths.push(step.cache.self["present.0.decoder.key"]?.dims[2] ?? -1);
    step = await runDecoder(model, [token], hidden, step.cache, [0], "head");
  }
  return { tokens, cacheLengths };
}

describe("Whisper models from R2", () => {
  it("refuses corrupt, truncated and missing objects by name, then loads once they are fixed", async () => {
    await seed();

    // One byte changed in the decoder weights: caught after the encoder session was created.
    const decoderData = await diskFile("decoderData");
    const corrupt = decoderData.slice();
    const middle = corrupt.length >> 1;
    corrupt[middle] = (corrupt[middle] ?? 0) ^ 0x01;
    await put("decoderData", corrupt);
    const checksum = await loadError();
    expect(checksum.file).toBe("decoderData");
    expect(checksum.reason).toBe("checksum");
    expect(checksum.message).toContain(manifest.files.decoderData.key);
    await put("decoderData", decoderData);

    const config = await diskFile("generationConfig");
    await put("generationConfig", config.subarray(0, config.length - 1));
    const truncated = await loadError();
    expect(truncated.file).toBe("generationConfig");
    expect(truncated.reason).toBe("size");
    await put("generationConfig", config);

    await bindings.MODELS.delete(manifest.files.encoder.key);
    const missing = await loadError();
    expect(missing.file).toBe("encoder");
    expect(missing.reason).toBe("missing");
    await put("encoder", await diskFile("encoder"));

    await bindings.MODELS.delete(manifest.files.vocabTable.key);
    const noTable = await loadError();
    expect(noTable.file).toBe("vocabTable");
    expect(noTable.reason).toBe("missing");
    await put("vocabTable", await diskFile("vocabTable"));

    // No failure was cached: the same call now loads.
    const models = await loadWhisper(bindings.MODELS);
    expect(models.encoder.inputNames).toEqual(["input_features"]);
    expect(models.encoder.outputNames).toEqual(["last_hidden_state"]);
    // input_ids, encoder_hidden_states, use_cache_branch, token_rows, logit_positions and 4
    // caches a layer.
    expect(models.decoder.inputNames).toHaveLength(5 + LAYERS * 4);
    expect(models.decoder.inputNames).toContain("logit_positions");
    expect(models.decoder.inputNames).toContain("token_rows");
    // No logits: the quantized hidden state, projected outside ORT (projection.ts).
    expect(models.decoder.outputNames).toEqual([
      "logit_rows",
      "logit_zeros",
      "logit_scales",
      ...Array.from({ length: LAYERS }, (_, l) =>
        ["decoder.key", "decoder.value", "encoder.key", "encoder.value"].map(
          (n) => `present.${l}.${n}`,
        ),
      ).flat(),
    ]);
    expect(models.projection.vocabulary).toBe(
      new WhisperTokenizer(models.vocab, models.addedTokens).vocabSize,
    );
    expect(models.vocab["<|endoftext|>"]).toBe(models.generationConfig.eos_token_id);
    expect(models.addedTokens["<|startoftranscript|>"]).toBe(
      models.generationConfig.decoder_start_token_id,
    );
    expect(models.heapAfterLoadBytes).toBeGreaterThan(0);
    expect(models.heapAfterLoadBytes).toBeLessThan(HEAP_LIMIT_BYTES);
    console.log(
      `whisper loaded: heap ${(models.heapAfterLoadBytes / 1e6).toFixed(1)} MB, ${models.loadMs} ms`,
    );
    // Memoized: a second call gives the same sessions.
    expect((await loadWhisper(bindings.MODELS)).decoder).toBe(models.decoder);
  });

  it("transcribes the start of a speech clip: one encoder pass, a few greedy decoder steps", async () => {
    await seed();
    const models = await loadWhisper(bindings.MODELS);
    const samples = pcm16ToFloat((await wavFixture("wcpp_jfk.wav")).pcm);
    // 11 s of speech plus 1 s of silence: a window shorter than 30 s, which the prepared encoder
    // accepts (the stock one only takes 3000 frames).
    const frames = 1200;
    const features = logMelSpectrogram(samples, frames);
    const encoded = await models.encoder.run({
      input_features: new ort.Tensor("float32", features, [1, 80, frames]),
    });
    const hidden = encoded.last_hidden_state;
    if (!hidden) throw new Error("encoder returned no last_hidden_state");
    expect(hidden.dims).toEqual([1, frames / 2, 384]);
    expect((hidden.data as Float32Array).every(Number.isFinite)).toBe(true);

    const config = models.generationConfig;
    const prompt = [
      config.decoder_start_token_id,
      config.lang_to_id["<|en|>"] ?? -1,
      config.task_to_id.transcribe ?? -1,
      config.no_timestamps_token_id,
    ];
    const { tokens, cacheLengths } = await greedy(models, hidden, prompt, 8);
    // The self-attention cache grows by the prompt, then by one token per step.
    expect(cacheLengths).toEqual(Array.from({ length: 8 }, (_, i) => prompt.length + i));
    const text = new WhisperTokenizer(models.vocab, models.addedTokens).decode(tokens);
    expect(text.toLowerCase()).toMatch(/^\s*and so,? my fellow americans/);
    const heap = wasmHeapBytes() ?? 0;
    expect(heap).toBeLessThan(HEAP_LIMIT_BYTES);
    console.log(`jfk 12-s window: "${text}", heap after decoding ${(heap / 1e6).toFixed(1)} MB`);
  });
});
