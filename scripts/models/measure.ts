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
import type { InferenceSession, Tensor } from "onnxruntime-web";
import { SESSION_OPTIONS } from "../../src/runtime/session-options.ts";
import { type AddedTokens, type Vocab, WhisperTokenizer } from "../../src/stt/whisper/tokenizer.ts";
import {
  englishOrder,
  LOGITS_TAIL_OUTPUT,
  logitsById,
  TAIL_ROWS_INPUT,
} from "../../src/stt/whisper/vocabulary-order.ts";
import { captureWasmHeap } from "../lib/wasm-heap.ts";

export interface MeasureJob {
  variant: "stock" | "prepared";
  /** Folder holding either the stock onnx/ files or the prepared files. */
  dir: string;
  /** The stock folder: its vocab.json and added_tokens.json give a prepared decoder's order. */
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
  loadMs: number;
  encoderMs: number[];
  decoderMsPerToken: number[];
  tokens: number[];
}

/** <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|> */
export const PROMPT = [50258, 50259, 50359, 50363];
const END_OF_TEXT = 50257;
const VOCABULARY = 51865;
const LAYERS = 4;
const HEADS = 6;
const HEAD_SIZE = 64;

let heapBytes: () => number = () => 0;

async function session(
  ort: typeof import("onnxruntime-web"),
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

/** The English-head order of a prepared decoder, from the stock tokenizer files. */
async function headOrder(stockDir: string) {
  const json = async <T>(file: string): Promise<T> =>
    JSON.parse(await readFile(path.join(stockDir, file), "utf8")) as T;
  const vocab = await json<Vocab>("vocab.json");
  const tokenizer = new WhisperTokenizer(vocab, await json<AddedTokens>("added_tokens.json"));
  if (tokenizer.vocabSize !== VOCABULARY) {
    throw new Error(`the tokenizer has ${tokenizer.vocabSize} ids, the decoder ${VOCABULARY}`);
  }
  return englishOrder(vocab, tokenizer);
}

async function measure(job: MeasureJob): Promise<MeasureResult> {
  heapBytes = captureWasmHeap();
  const ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";

  const loadStarted = performance.now();
  const encoder = await session(ort, job, "encoder");
  const decoder = await session(ort, job, "decoder");
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

  const empty = () => new ort.Tensor("float32", new Float32Array(0), [1, HEADS, 0, HEAD_SIZE]);
  let past: Record<string, Tensor> = {};
  for (let layer = 0; layer < LAYERS; layer++) {
    for (const part of ["decoder", "encoder"]) {
      for (const kv of ["key", "value"]) past[`past_key_values.${layer}.${part}.${kv}`] = empty();
    }
  }
  const presentNames = decoder.outputNames.filter((name) => name.startsWith("present."));
  // A decoder with the English head (decoder-rewrite.ts `head`) takes and returns its own column
  // order; every id is projected here (tail_rows [0, 1]) and the logits put back in id order.
  const order = decoder.inputNames.includes(TAIL_ROWS_INPUT)
    ? await headOrder(job.stockDir)
    : undefined;
  const decoderMsPerToken: number[] = [];
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  let ids = PROMPT;
  const steps = job.forceTokens ? job.forceTokens.length : job.maxTokens;
  for (let step = 0; step < steps; step++) {
    const started = performance.now();
    const out = await decoder.run(
      {
        input_ids: new ort.Tensor(
          "int64",
          BigInt64Array.from(ids, (id) => BigInt(order ? (order.columns[id] ?? id) : id)),
          [1, ids.length],
        ),
        ...(order
          ? { [TAIL_ROWS_INPUT]: new ort.Tensor("int64", BigInt64Array.of(0n, 1n), [2]) }
          : {}),
        encoder_hidden_states: hidden,
        use_cache_branch: new ort.Tensor("bool", [step > 0], [1]),
        // The prepared decoder projects only these prompt positions (the last one is read).
        ...(decoder.inputNames.includes("logit_positions")
          ? {
              logit_positions: new ort.Tensor(
                "int64",
                BigInt64Array.of(BigInt(ids.length - 1)),
                [1],
              ),
            }
          : {}),
        ...past,
      },
      ["logits", ...presentNames, ...(order ? [LOGITS_TAIL_OUTPUT] : [])],
    );
    const elapsed = performance.now() - started;
    // The first step runs the whole prompt and the cross-attention projections: not per token.
    if (step > 0) decoderMsPerToken.push(elapsed);
    const all = out.logits?.data as Float32Array;
    const tail = out[LOGITS_TAIL_OUTPUT]?.data as Float32Array | undefined;
    if (order && !tail) throw new Error(`the decoder returned no ${LOGITS_TAIL_OUTPUT}`);
    const last = order
      ? logitsById(
          order,
          all.subarray(all.length - order.headSize),
          tail?.subarray(-(VOCABULARY - order.headSize)),
        )
      : all.subarray(all.length - VOCABULARY);
    logits.push(last.slice());
    let best = 0;
    for (let i = 1; i < VOCABULARY; i++) if ((last[i] ?? 0) > (last[best] ?? 0)) best = i;
    tokens.push(best);
    const next: Record<string, Tensor> = {};
    for (const name of presentNames) {
      const key = name.replace("present.", "past_key_values.");
      // With the cache, the merged decoder's encoder key/value outputs are placeholders: the
      // first step's values stay valid for the whole utterance (as transformers.js does).
      const value = step > 0 && key.includes(".encoder.") ? past[key] : out[name];
      if (value) next[key] = value;
    }
    past = next;
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
