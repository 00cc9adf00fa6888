/**
 * One measurement in a fresh process (ORT's WebAssembly heap only grows, so every figure needs
 * its own process): load encoder + decoder (stock or prepared) in onnxruntime-web, run the
 * encoder on a log-mel input, greedy-decode, and print one JSON line of results on stdout.
 * Driven by compare.ts; arguments are one JSON object in argv[2] (see `MeasureJob`).
 *
 * The heap figure is the byte length of ORT's `WebAssembly.Memory`, captured the way
 * src/runtime/ort.ts does it (by wrapping WebAssembly.instantiate before ORT loads).
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { InferenceSession, Tensor } from "onnxruntime-web/wasm";
import { SESSION_OPTIONS } from "../../src/runtime/session-options.ts";
import { lastRow, runDecoder, type Step } from "../../src/stt/whisper/decoder-run.ts";
import type { GenerationConfig } from "../../src/stt/whisper/logit-rules.ts";
import { createWhisperModel } from "../../src/stt/whisper/model.ts";
import type { AddedTokens, Vocab } from "../../src/stt/whisper/tokenizer.ts";
import { loadProjection } from "./projection-kernel.ts";
import { captureWasmHeap } from "./wasm-heap.ts";

export interface MeasureJob {
  variant: "stock" | "prepared";
  /** Folder holding either the stock onnx/ files or the prepared files. */
  dir: string;
  /** The stock folder: its tokenizer files and generation config. */
  stockDir: string;
  /** Float32 [80, frames] log-mel file. */
  mel: string;
  frames: number;
  encoderRuns: number;
  /** Greedy steps after the prompt at most (stops at end-of-text). */
  maxTokens: number;
  /** Teacher forcing: feed these tokens instead of the greedy choice (for logit comparison). */
  forceTokens?: number[];
  /** Where to write the encoder output and the per-step logits (Float32, concatenated). */
  saveEncoder?: string;
  saveLogits?: string;
}

export interface MeasureResult {
  variant: string;
  frames: number;
  heapAfterLoadBytes: number;
  heapAfterEncoderBytes: number;
  heapPeakBytes: number;
  /** The projection kernel's own memory (the vocabulary table, outside ORT's heap); 0 for stock. */
  projectionBytes: number;
  loadMs: number;
  encoderMs: number[];
  decoderMsPerToken: number[];
  tokens: number[];
}

/** <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|> */
export const PROMPT = [50258, 50259, 50359, 50363];
const END_OF_TEXT = 50257;
const VOCABULARY = 51865;

let heapBytes: () => number = () => 0;

async function session(
  ort: typeof import("onnxruntime-web/wasm"),
  job: MeasureJob,
  which: "encoder" | "decoder",
): Promise<InferenceSession> {
  if (job.variant === "stock") {
    const file =
      which === "encoder" ? "encoder_model_quantized.onnx" : "decoder_model_merged_quantized.onnx";
    return ort.InferenceSession.create(
      await readFile(path.join(job.dir, "onnx", file)),
      SESSION_OPTIONS,
    );
  }
  const model = await readFile(path.join(job.dir, `${which}.onnx`));
  const data = await readFile(path.join(job.dir, `${which}.onnx.data`));
  return ort.InferenceSession.create(model, {
    ...SESSION_OPTIONS,
    externalData: [{ path: `${which}.onnx.data`, data }],
  });
}

async function stockJson<T>(stockDir: string, file: string): Promise<T> {
  return JSON.parse(await readFile(path.join(stockDir, file), "utf8")) as T;
}

async function measure(job: MeasureJob): Promise<MeasureResult> {
  heapBytes = captureWasmHeap();
  const ort = await import("onnxruntime-web/wasm");
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";

  const loadStarted = performance.now();
  const encoder = await session(ort, job, "encoder");
  const decoder = await session(ort, job, "decoder");
  const projection = job.variant === "prepared" ? await loadProjection(job.dir) : undefined;
  const loadMs = performance.now() - loadStarted;
  const heapAfterLoadBytes = heapBytes();

  const melBytes = await readFile(job.mel);
  const mel = new Float32Array(melBytes.buffer, melBytes.byteOffset, melBytes.byteLength / 4);
  const encoderMs: number[] = [];
  let hidden: Tensor | undefined;
  for (let run = 0; run < job.encoderRuns; run++) {
    const started = performance.now();
    const out = await encoder.run(
      { input_features: new ort.Tensor("float32", mel, [1, 80, job.frames]) },
      ["last_hidden_state"],
    );
    encoderMs.push(performance.now() - started);
    hidden = out.last_hidden_state;
  }
  if (!hidden) throw new Error("encoder returned nothing");
  const heapAfterEncoderBytes = heapBytes();
  if (job.saveEncoder) await writeFile(job.saveEncoder, hidden.data as Float32Array);

  // Decoded through the service's own decoder runs (src/stt/whisper/decoder-run.ts), which feed
  // either file its way: the prepared one its table rows, with the projection done by the kernel.
  const model = createWhisperModel({
    encoder,
    decoder,
    vocab: await stockJson<Vocab>(job.stockDir, "vocab.json"),
    addedTokens: await stockJson<AddedTokens>(job.stockDir, "added_tokens.json"),
    generationConfig: await stockJson<GenerationConfig>(job.stockDir, "generation_config.json"),
    variableLength: job.variant === "prepared",
    ...(projection ? { projection } : {}),
  });
  const decoderMsPerToken: number[] = [];
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  let ids = PROMPT;
  let cache: Step["cache"] | undefined;
  const steps = job.forceTokens ? job.forceTokens.length : job.maxTokens;
  for (let step = 0; step < steps; step++) {
    const started = performance.now();
    const out = await runDecoder(model, ids, hidden, cache, [ids.length - 1]);
    const elapsed = performance.now() - started;
    cache = out.cache;
    // The first step runs the whole prompt and the cross-attention projections: not per token.
    if (step > 0) decoderMsPerToken.push(elapsed);
    const last = lastRow(out);
    logits.push(last.slice());
    let best = 0;
    for (let i = 1; i < VOCABULARY; i++) if ((last[i] ?? 0) > (last[best] ?? 0)) best = i;
    tokens.push(best);
    const chosen = job.forceTokens ? (job.forceTokens[step] ?? best) : best;
    if (!job.forceTokens && chosen === END_OF_TEXT) break;
    ids = [chosen];
  }
  if (job.saveLogits) {
    const joined = new Float32Array(logits.length * VOCABULARY);
    logits.forEach((row, i) => {
      joined.set(row, i * VOCABULARY);
    });
    await writeFile(job.saveLogits, joined);
  }
  return {
    variant: job.variant,
    frames: job.frames,
    heapAfterLoadBytes,
    heapAfterEncoderBytes,
    heapPeakBytes: heapBytes(),
    projectionBytes: projection?.memoryBytes ?? 0,
    loadMs,
    encoderMs,
    decoderMsPerToken,
    tokens,
  };
}

if (import.meta.main) {
  const job = JSON.parse(process.argv[2] ?? "{}") as MeasureJob;
  measure(job).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (error: unknown) => {
      process.stderr.write(
        `measure failed: ${error instanceof Error ? error.stack : String(error)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
