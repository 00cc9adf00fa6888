/**
 * The baseline of the "whisper" bench section: the stock Whisper tiny files (encoder and merged
 * decoder, 8-bit, as published) on onnxruntime-web's WASM backend in Node, 1 thread, with the full
 * 30-s window the stock encoder requires, through the same TypeScript decoding as the service
 * (src/stt/whisper/transcribe.ts), one clip per call.
 *
 * Runs in a process of its own (ORT's heap only grows, and the bench process already holds Silero
 * in its own ORT): `node tools/load/bench/whisper-node.ts <job.json>` prints one JSON object
 * (NodeBaseline) on stdout. The heap is the byte length of ORT's WebAssembly.Memory, captured by
 * wrapping WebAssembly.instantiate before ORT loads (as tools/models/measure.ts does).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { InferenceSession } from "onnxruntime-web/wasm";
import { SESSION_OPTIONS } from "../../../src/runtime/session-options.ts";
import type { GenerationConfig } from "../../../src/stt/whisper/logit-rules.ts";
import type { AddedTokens, Vocab } from "../../../src/stt/whisper/tokenizer.ts";
import { pcm16ToFloat } from "../../eval/wav.ts";
import { captureWasmHeap } from "../../models/wasm-heap.ts";
import { readPcm, SAMPLE_RATE } from "./clips.ts";
import type { NodeBaseline, NodeBaselineClip, NodeBaselineJob } from "./whisper-wire.ts";

let heapBytes: () => number = () => 0;

async function main(jobFile: string): Promise<NodeBaseline> {
  const job = JSON.parse(await readFile(jobFile, "utf8")) as NodeBaselineJob;
  heapBytes = captureWasmHeap();
  // After the hook: ORT instantiates its wasm on the first session.
  const ort = await import("onnxruntime-web/wasm");
  const { createWhisperModel } = await import("../../../src/stt/whisper/model.ts");
  const { transcribe } = await import("../../../src/stt/whisper/transcribe.ts");
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  const json = async <T>(file: string) =>
    JSON.parse(await readFile(path.join(job.stockDir, file), "utf8")) as T;
  const encoderBytes = await readFile(path.join(job.stockDir, "onnx/encoder_model_quantized.onnx"));
  const decoderBytes = await readFile(
    path.join(job.stockDir, "onnx/decoder_model_merged_quantized.onnx"),
  );
  const started = performance.now();
  const encoder: InferenceSession = await ort.InferenceSession.create(
    encoderBytes,
    SESSION_OPTIONS,
  );
  const decoder: InferenceSession = await ort.InferenceSession.create(
    decoderBytes,
    SESSION_OPTIONS,
  );
  const loadMs = performance.now() - started;
  const heapAfterLoadBytes = heapBytes();
  const model = createWhisperModel({
    encoder,
    decoder,
    vocab: await json<Vocab>("vocab.json"),
    addedTokens: await json<AddedTokens>("added_tokens.json"),
    generationConfig: await json<GenerationConfig>("generation_config.json"),
    variableLength: false,
  });

  const clips: NodeBaselineClip[] = [];
  for (const clip of job.clips) {
    const samples = pcm16ToFloat(await readPcm(clip.file));
    const t0 = performance.now();
    const result = await transcribe(model, samples, { language: job.language });
    const ms = performance.now() - t0;
    clips.push({
      id: clip.id,
      audioSeconds: samples.length / SAMPLE_RATE,
      ms,
      text: result.text,
      rawWords: result.words.length,
      words: result.likelyNoSpeech ? 0 : result.words.length,
      likelyNoSpeech: result.likelyNoSpeech,
    });
  }
  return {
    runtime: `onnxruntime-web (wasm entry), numThreads 1, Node ${process.version}`,
    loadMs,
    heapAfterLoadBytes,
    heapPeakBytes: heapBytes(),
    rssBytes: process.memoryUsage().rss,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    clips,
  };
}

if (import.meta.main) {
  const jobFile = process.argv[2];
  if (jobFile === undefined)
    throw new Error("usage: node tools/load/bench/whisper-node.ts <job.json>");
  process.stdout.write(`${JSON.stringify(await main(jobFile))}\n`);
}
