/**
 * Checks the prepared models against the stock ones instead of trusting the notes, in Node with
 * onnxruntime-web (the same WASM build the worker runs), and measures heap and speed:
 *
 * - encoder output at 3000 frames: prepared vs stock, max |difference| (expected 0);
 * - decoder logits: both decoders fed the same encoder output and the same tokens (the stock
 *   greedy transcript, teacher-forced), max |difference| per step, and whether every greedy
 *   choice agrees;
 * - heap after load and peak (ORT's WebAssembly.Memory, which only grows) for stock at 30 s,
 *   prepared at 30 s, and prepared at 2, 5, 10 and 28 s inputs, each in a fresh process;
 * - encoder ms per input length and decoder ms per token (wall clock on this machine: noisy).
 *
 * Input: speech from ../shared/eval/dev (EARSHOT_SHARED), clips joined in a fixed order and cut
 * to each length; the 30-s window is the JFK clip padded with silence, as Whisper pads.
 * Results: a table on stdout and models/compare/results.json.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { log } from "./files.ts";
import { logMel, wavSamples } from "./log-mel.ts";
import type { MeasureJob, MeasureResult } from "./measure.ts";

const run = promisify(execFile);
const SAMPLE_RATE = 16_000;
const FRAMES_PER_SECOND = 100;
/** Speech clips joined for the long inputs, in this order. */
const SPEECH_CLIPS = [
  "wcpp_jfk.wav",
  "lhotse_2412_153948_0000.wav",
  "psx_librivox_0870.wav",
  "sb_lj050_0131.wav",
];
const SHORT_LENGTHS_S = [2, 5, 10, 28];
const MAX_TOKENS = 64;
const VOCABULARY = 51865;

export interface CompareOptions {
  stockDir: string;
  preparedDir: string;
}

export async function runComparison(options: CompareOptions): Promise<void> {
  const repoRoot = path.resolve(import.meta.dirname, "../..");
  const shared = path.resolve(repoRoot, process.env.EARSHOT_SHARED ?? "../shared");
  const work = path.join(repoRoot, "models", "compare");
  await mkdir(work, { recursive: true });

  const clips = await Promise.all(
    SPEECH_CLIPS.map(async (name) =>
      wavSamples(await readFile(path.join(shared, "eval", "dev", name))),
    ),
  );
  const joined = new Float32Array(clips.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const clip of clips) {
    joined.set(clip, at);
    at += clip.length;
  }

  const melFile = async (name: string, samples: Float32Array, frames: number) => {
    const file = path.join(work, `${name}.mel.f32`);
    await writeFile(file, logMel(samples, frames));
    return file;
  };
  log("  computing log-mel inputs");
  const jfk = clips[0] ?? new Float32Array(0);
  const mel30 = await melFile("jfk-30s", jfk, 3000);

  const measure = async (job: MeasureJob): Promise<MeasureResult> => {
    log(`  measuring ${job.variant} at ${job.frames / FRAMES_PER_SECOND} s`);
    const script = path.join(import.meta.dirname, "measure.ts");
    const { stdout } = await run(process.execPath, [script, JSON.stringify(job)], {
      maxBuffer: 1 << 20,
    });
    return JSON.parse(stdout) as MeasureResult;
  };

  const stock = await measure({
    variant: "stock",
    dir: options.stockDir,
    stockDir: options.stockDir,
    mel: mel30,
    frames: 3000,
    encoderRuns: 3,
    maxTokens: MAX_TOKENS,
    saveEncoder: path.join(work, "stock-encoder.f32"),
    saveLogits: path.join(work, "stock-logits.f32"),
  });
  const prepared = await measure({
    variant: "prepared",
    dir: options.preparedDir,
    stockDir: options.stockDir,
    mel: mel30,
    frames: 3000,
    encoderRuns: 3,
    maxTokens: MAX_TOKENS,
    forceTokens: stock.tokens,
    saveEncoder: path.join(work, "prepared-encoder.f32"),
    saveLogits: path.join(work, "prepared-logits.f32"),
  });
  const encoderDiff = maxDifference(
    await floats(path.join(work, "stock-encoder.f32")),
    await floats(path.join(work, "prepared-encoder.f32")),
  );
  const stockLogits = await floats(path.join(work, "stock-logits.f32"));
  const preparedLogits = await floats(path.join(work, "prepared-logits.f32"));
  const logitsDiff = maxDifference(stockLogits, preparedLogits);
  const sameChoices = prepared.tokens.every((token, i) => token === stock.tokens[i]);

  const lengths: MeasureResult[] = [];
  for (const seconds of SHORT_LENGTHS_S) {
    const frames = seconds * FRAMES_PER_SECOND;
    const samples = joined.subarray(0, seconds * SAMPLE_RATE);
    lengths.push(
      await measure({
        variant: "prepared",
        dir: options.preparedDir,
        stockDir: options.stockDir,
        mel: await melFile(`speech-${seconds}s`, samples, frames),
        frames,
        encoderRuns: 3,
        maxTokens: MAX_TOKENS,
      }),
    );
  }

  const rows = [stock, prepared, ...lengths];
  const results = {
    encoderMaxAbsDiffAt3000: encoderDiff,
    logitsMaxAbsDiff: logitsDiff,
    logitsSteps: stockLogits.length / VOCABULARY,
    greedyChoicesIdentical: sameChoices,
    rows,
  };
  await writeFile(path.join(work, "results.json"), `${JSON.stringify(results, null, 2)}\n`);

  const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  const median = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted.length === 0 ? Number.NaN : (sorted[Math.floor(sorted.length / 2)] ?? Number.NaN);
  };
  const lines = [
    `encoder output at 3000 frames, max |prepared − stock|: ${encoderDiff}`,
    `decoder logits over ${results.logitsSteps} teacher-forced steps, max |prepared − stock|: ` +
      `${logitsDiff.toFixed(5)}; greedy choices identical: ${sameChoices}`,
    "",
    "| model | input | heap after load (MiB) | after encoder | peak (MiB) | + projection kernel (MiB) | load ms | encoder ms (min / median) | decoder ms/token (median) | tokens |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.variant} | ${r.frames / FRAMES_PER_SECOND} s | ${mb(r.heapAfterLoadBytes)} | ` +
        `${mb(r.heapAfterEncoderBytes)} | ${mb(r.heapPeakBytes)} | ${mb(r.projectionBytes)} | ` +
        `${Math.round(r.loadMs)} | ` +
        `${Math.round(Math.min(...r.encoderMs))} / ${Math.round(median(r.encoderMs))} | ` +
        `${median(r.decoderMsPerToken).toFixed(1)} | ${r.tokens.length} |`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function floats(file: string): Promise<Float32Array> {
  const bytes = await readFile(file);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return max;
}
