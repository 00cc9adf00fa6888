/**
 * Whisper tiny for the session Durable Object: the prepared encoder and decoder (see
 * tools/models/cli.ts and ../shared/WHISPER-NOTES.md) and the tokenizer files decoding needs, read
 * from the R2 bucket bound as MODELS and checked against src/stt/model-manifest.json.
 *
 * - Every object must exist with exactly the manifest's size and SHA-256; anything else is a
 *   `ModelUnavailableError` naming the file and the reason; the vocabulary table is checked and
 *   the encoder's and decoder's files before their ORT sessions are created.
 * - Sessions are created once per isolate behind a memoized promise (model sharing: read-only
 *   weights, no per-session state). A failed load is forgotten, so the next caller retries.
 * - Bytes are dropped as soon as their session exists: the weights live once, in ORT's heap.
 *   The vocabulary table (20 MB, vocab-table.bin) is read first and copied into the projection
 *   kernel's own memory (whisper/projection.ts), outside ORT's heap; then the encoder (10 MB) and
 *   the decoder (10 MB) one after the other, so at most one file's bytes are alive in JS beside
 *   the memories holding them.
 *
 * Memory, measured in workerd (bench whisper section, 2026-12-05; MiB): ORT's heap is 48 with
 * Silero and both sessions, and grows to 69 over a 15-s window (it never shrinks); the kernel's
 * memory is 20.3 from load on; the JS heap beside them holds about 8 MB after the bench's dev
 * clips (the parsed vocabulary ~4.7 MB; the tokenizer keeps its token bytes in one buffer: a
 * Uint8Array per token had added 11 MB). While loading, the file bytes are garbage once copied;
 * local workerd collected them only after the loading request ended. The isolate's budget is
 * 128 MB in all, ORT's compiled code included.
 */

import { runExclusive } from "../runtime/inference-lock";
import { createLogger } from "../runtime/log";
import { createSession, type InferenceSession, wasmHeapBytes } from "../runtime/ort";
import manifest from "./model-manifest.json";
import { VocabularyProjection } from "./whisper/projection";
import projectionKernel from "./whisper/projection.wasm";

export type ModelFileName = keyof typeof manifest.files;

export type ModelUnavailableReason = "missing" | "size" | "checksum" | "read";

/** A model file could not be used: which one (manifest name and R2 key) and why. */
export class ModelUnavailableError extends Error {
  override name = "ModelUnavailableError";
  /** Manifest name: "encoder", "decoderData", "vocab", … */
  readonly file: ModelFileName;
  /** R2 object key. */
  readonly key: string;
  readonly reason: ModelUnavailableReason;

  constructor(file: ModelFileName, key: string, reason: ModelUnavailableReason, detail: string) {
    super(`model file ${file} (${key}) unavailable: ${detail}`);
    this.file = file;
    this.key = key;
    this.reason = reason;
  }
}

/** generation_config.json of the pinned export: the fields decoding uses (snake_case, as stored). */
export interface WhisperGenerationConfig {
  decoder_start_token_id: number;
  eos_token_id: number;
  no_timestamps_token_id: number;
  max_length: number;
  max_initial_timestamp_index: number;
  suppress_tokens: number[];
  begin_suppress_tokens: number[];
  lang_to_id: Record<string, number>;
  task_to_id: Record<string, number>;
  is_multilingual: boolean;
}

export interface WhisperModels {
  /** input_features [1, 80, frames] (any even frames ≤ 3000) → last_hidden_state [1, frames/2, 384] */
  encoder: InferenceSession;
  /**
   * Merged decoder: input_ids, encoder_hidden_states, past_key_values.{0..3}.{decoder,encoder}.
   * {key,value}, use_cache_branch → logits, present.* (attention outputs removed).
   */
  decoder: InferenceSession;
  /** vocab.json: token string → id. */
  vocab: Readonly<Record<string, number>>;
  /** added_tokens.json: special token string → id. */
  addedTokens: Readonly<Record<string, number>>;
  generationConfig: Readonly<WhisperGenerationConfig>;
  /** The vocabulary table (vocab-table.bin) in its projection kernel's memory (projection.ts). */
  projection: VocabularyProjection;
  /**
   * Wall time of the load. In workerd the clock only advances across I/O, so this counts R2
   * reads and hashing but not the synchronous session creation inside ORT.
   */
  loadMs: number;
  /** ORT's WebAssembly heap right after both sessions exist (it never shrinks afterwards). */
  heapAfterLoadBytes: number;
}

/**
 * The loaded models, once there are some. Only the result is kept, never an in-flight promise:
 * a promise whose loader was reset would never settle, and its waiters would wait forever.
 * Callers that may race (sessions) go through an IsolateOnce, which lets one load at a time and
 * takes over a vanished load (runtime/own-context.ts).
 */
let loaded: WhisperModels | undefined;

/**
 * The isolate's Whisper models, loaded on first use. Every caller shares the same sessions; the
 * first successful load wins and later `bucket` arguments are not read again. If two loads race
 * anyway, the loser's sessions are released and the winner's returned.
 */
export async function loadWhisper(bucket: R2Bucket): Promise<WhisperModels> {
  if (loaded) return loaded;
  const fresh = await loadFrom(bucket);
  if (loaded) {
    await Promise.all([fresh.encoder.release(), fresh.decoder.release()]);
    return loaded;
  }
  loaded = fresh;
  return fresh;
}

/**
 * Bytes of the loaded vocabulary projection's own WebAssembly memory (the decoder's table, beside
 * ORT's heap: whisper/projection.ts); null before the models are loaded.
 */
export function projectionMemoryBytes(): number | null {
  return loaded?.projection.memoryBytes ?? null;
}

async function loadFrom(bucket: R2Bucket): Promise<WhisperModels> {
  const started = Date.now();
  // Small files first: a missing vocabulary fails before 41 MB of models are read.
  const vocab = await readJson<Record<string, number>>(bucket, "vocab");
  const addedTokens = await readJson<Record<string, number>>(bucket, "addedTokens");
  const generationConfig = await readJson<WhisperGenerationConfig>(bucket, "generationConfig");
  // Copied into the projection kernel's own memory; the file's bytes die here.
  const projection = new VocabularyProjection(
    projectionKernel,
    await readVerified(bucket, "vocabTable"),
  );

  const encoder = await openSession(bucket, "encoder", "encoderData");
  let decoder: InferenceSession;
  try {
    decoder = await openSession(bucket, "decoder", "decoderData");
  } catch (error) {
    // Free the encoder's weights inside the heap, so a retry reuses that space instead of
    // growing the heap by another copy. The load error is the one worth throwing.
    await encoder.release().catch((releaseError: unknown) => {
      createLogger().error("model load: releasing the encoder after a failed decoder load failed", {
        error: releaseError,
      });
    });
    throw error;
  }
  return {
    encoder,
    decoder,
    vocab,
    addedTokens,
    generationConfig,
    projection,
    loadMs: Date.now() - started,
    heapAfterLoadBytes: wasmHeapBytes() ?? 0,
  };
}

async function openSession(
  bucket: R2Bucket,
  modelFile: "encoder" | "decoder",
  dataFile: "encoderData" | "decoderData",
): Promise<InferenceSession> {
  const model = await readVerified(bucket, modelFile);
  const data = await readVerified(bucket, dataFile);
  // The model names its weights file by the file name it had when prepared
  // (models/prepared/<name>); ORT matches that name against `path`. ORT copies both into its
  // heap; our references die with this frame. Created under the inference lock: ORT-web keeps
  // mounted external data in one module-wide table that any session creation clears when it
  // ends, so creations must not interleave with other ORT work.
  return runExclusive(() =>
    createSession(model, { externalData: [{ path: manifest.files[dataFile].name, data }] }),
  );
}

async function readJson<T>(bucket: R2Bucket, file: ModelFileName): Promise<T> {
  const bytes = await readVerified(bucket, file);
  // The bytes match the manifest's SHA-256, i.e. the pinned file: its shape is known.
  return JSON.parse(new TextDecoder().decode(bytes)) as T;
}

/** The object's bytes, only if it exists with the manifest's size and SHA-256. */
async function readVerified(bucket: R2Bucket, file: ModelFileName): Promise<Uint8Array> {
  const expected = manifest.files[file];
  let object: R2ObjectBody | null;
  try {
    object = await bucket.get(expected.key);
  } catch (error) {
    throw new ModelUnavailableError(file, expected.key, "read", `R2 get failed: ${String(error)}`);
  }
  if (object === null) {
    throw new ModelUnavailableError(file, expected.key, "missing", "no such object in the bucket");
  }
  if (object.size !== expected.bytes) {
    await object.body.cancel();
    throw new ModelUnavailableError(
      file,
      expected.key,
      "size",
      `${object.size} bytes, expected ${expected.bytes}`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await object.arrayBuffer());
  } catch (error) {
    throw new ModelUnavailableError(file, expected.key, "read", `R2 read failed: ${String(error)}`);
  }
  const sha256 = hex(await crypto.subtle.digest("SHA-256", bytes));
  if (sha256 !== expected.sha256) {
    throw new ModelUnavailableError(
      file,
      expected.key,
      "checksum",
      `sha256 ${sha256}, expected ${expected.sha256}`,
    );
  }
  return bytes;
}

function hex(digest: ArrayBuffer): string {
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
