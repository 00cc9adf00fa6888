/**
 * Transcribes the dev clips (../shared/eval/dev) with src/stt/whisper in Node (onnxruntime-web,
 * WASM, 1 thread, the session options of src/runtime/ort.ts) and reports WER per clip and
 * overall, words invented on the no-speech clips, the no-speech verdicts, and speed.
 *
 *   npx node tools/eval/whisper-eval.ts                       # stock files, 30-s window
 *   npx node tools/eval/whisper-eval.ts --prepared models/prepared --window both
 *
 * Flags:
 *   --stock <dir>     stock model folder (default ../shared/models/whisper-tiny); its JSON files
 *                     are used in every mode
 *   --prepared <dir>  prepared encoder.onnx/decoder.onnx (+ .data) from `npm run models`: their
 *                     encoder takes variable lengths, which enables --window utterance
 *   --window full|utterance|both   default full (the only one the stock encoder can do)
 *   --language <code|multi>        default en
 *   --clips a,b       only these clip ids
 *   --set dev|short|multilingual   which folder of ../shared/eval (default dev)
 *   --bias a,b        keyterms to favour by logit bias (with and without a capital), by
 *   --bonus <n>       this much (default 3)
 *   --json <file>     also write every transcript as JSON
 *   --context <text>  text Whisper reads before every clip's audio (after <|startofprev|>), as a
 *                     session's keyterms are given: e.g. --context " Quilter, clubs."
 *
 * Word timing check: Silero VAD v5 (the bundled model) marks where speech starts and ends in each
 * speech clip (first and last 32-ms frame with probability > 0.5); the report gives the first
 * word's start and the last word's end minus those (positive: the word is timed later).
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-web/wasm";
import { SESSION_OPTIONS } from "../../src/runtime/session-options.ts";
import type { GenerationConfig } from "../../src/stt/whisper/logit-rules.ts";
import { logMelSpectrogram } from "../../src/stt/whisper/mel.ts";
import { createWhisperModel, type WhisperModel } from "../../src/stt/whisper/model.ts";
import type { AddedTokens, Vocab } from "../../src/stt/whisper/tokenizer.ts";
import { transcribe } from "../../src/stt/whisper/transcribe.ts";
import { loadProjection } from "../models/projection-kernel.ts";
import { type ManifestRow, parseManifest } from "./manifest.ts";
import { parseWav, pcm16ToFloat } from "./wav.ts";
import { wordErrorRate } from "./wer.ts";

const root = path.resolve(import.meta.dirname, "../..");
const shared = path.resolve(root, process.env.EARSHOT_SHARED ?? "../shared");
const { values: flags } = parseArgs({
  options: {
    stock: { type: "string", default: path.join(shared, "models/whisper-tiny") },
    prepared: { type: "string" },
    window: { type: "string", default: "full" },
    language: { type: "string", default: "en" },
    clips: { type: "string" },
    json: { type: "string" },
    context: { type: "string" },
    set: { type: "string", default: "dev" },
    bias: { type: "string" },
    bonus: { type: "string", default: "3" },
  },
});
const stockDir = path.resolve(flags.stock);
const preparedDir = flags.prepared ? path.resolve(root, flags.prepared) : undefined;
const windows = flags.window === "both" ? ["full", "utterance"] : [flags.window];
if (windows.some((w) => w !== "full" && w !== "utterance")) {
  throw new Error(`--window must be full, utterance or both, got ${flags.window}`);
}
if (windows.includes("utterance") && !preparedDir) {
  throw new Error("--window utterance needs --prepared: the stock encoder only takes 3000 frames");
}

// Same options as src/runtime/ort.ts (see WHISPER-NOTES.md for why arena and patterns are off).
ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";
async function json<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(path.join(stockDir, file), "utf8")) as T;
}

async function session(file: string, dataFile?: string): Promise<ort.InferenceSession> {
  const bytes = await readFile(file);
  const options = dataFile
    ? {
        ...SESSION_OPTIONS,
        externalData: [{ path: path.basename(dataFile), data: await readFile(dataFile) }],
      }
    : SESSION_OPTIONS;
  return ort.InferenceSession.create(bytes, options);
}

async function loadModel(): Promise<{ model: WhisperModel; loadMs: number; files: string }> {
  const started = performance.now();
  const [encoder, decoder] = preparedDir
    ? [
        await session(
          path.join(preparedDir, "encoder.onnx"),
          path.join(preparedDir, "encoder.onnx.data"),
        ),
        await session(
          path.join(preparedDir, "decoder.onnx"),
          path.join(preparedDir, "decoder.onnx.data"),
        ),
      ]
    : [
        await session(path.join(stockDir, "onnx/encoder_model_quantized.onnx")),
        await session(path.join(stockDir, "onnx/decoder_model_merged_quantized.onnx")),
      ];
  const model = createWhisperModel({
    encoder,
    decoder,
    vocab: await json<Vocab>("vocab.json"),
    addedTokens: await json<AddedTokens>("added_tokens.json"),
    generationConfig: await json<GenerationConfig>("generation_config.json"),
    variableLength: preparedDir !== undefined,
    ...(preparedDir ? { projection: await loadProjection(preparedDir) } : {}),
  });
  return {
    model,
    loadMs: performance.now() - started,
    files: preparedDir ? `prepared (${preparedDir})` : `stock (${stockDir})`,
  };
}

/** The manifest's rows (all, or those --clips names), with `file` as a path. */
async function clips(): Promise<ManifestRow[]> {
  const evalDir = path.join(shared, "eval", flags.set);
  const rows = parseManifest(await readFile(path.join(evalDir, "manifest.tsv"), "utf8"));
  const only = flags.clips?.split(",");
  return rows
    .map((row) => ({ ...row, file: path.join(evalDir, row.file) }))
    .filter((clip) => !only || only.includes(clip.id));
}

/** 16 kHz mono PCM16 WAV → floats in [-1, 1) (the dev clips are all 16 kHz mono). */
function wavSamples(bytes: Uint8Array): Float32Array {
  const { channels, sampleRate, pcm } = parseWav(bytes);
  if (channels !== 1 || sampleRate !== 16_000) {
    throw new Error(`need 16 kHz mono, got ${sampleRate}×${channels}`);
  }
  return pcm16ToFloat(pcm);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const fixed = (value: number, digits = 0) => value.toFixed(digits);

const { model, loadMs, files } = await loadModel();
console.log(`models: ${files}, loaded in ${fixed(loadMs)} ms; language ${flags.language}`);
const dev = await clips();
const audio = new Map<string, Float32Array>();
for (const clip of dev) audio.set(clip.id, wavSamples(await readFile(clip.file)));

// Features alone, on the longest clip: ms per second of audio (median of 20 runs).
{
  const longest = [...audio.values()].reduce((a, b) => (b.length > a.length ? b : a));
  const out = new Float32Array(80 * 3000);
  const runs: number[] = [];
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    logMelSpectrogram(longest, 3000, out);
    runs.push(performance.now() - started);
  }
  console.log(
    `log-mel: ${fixed(median(runs) / (longest.length / 16_000), 2)} ms per second of audio ` +
      `(30-s window, ${fixed(longest.length / 16_000, 1)} s of audio, median of 20)`,
  );
}

/** Seconds where Silero VAD first and last hears speech (probability > 0.5, 32-ms frames). */
async function speechBounds(samples: Float32Array): Promise<{ start: number; end: number }> {
  const vad = await vadSession;
  const frame = 512;
  const context = 64;
  let state = new Float32Array(2 * 128);
  let previous = new Float32Array(context);
  let first = -1;
  let last = -1;
  for (let at = 0, i = 0; at + frame <= samples.length; at += frame, i++) {
    const input = new Float32Array(context + frame);
    input.set(previous, 0);
    input.set(samples.subarray(at, at + frame), context);
    const out = await vad.run({
      input: new ort.Tensor("float32", input, [1, input.length]),
      state: new ort.Tensor("float32", state, [2, 1, 128]),
      sr: new ort.Tensor("int64", BigInt64Array.from([16_000n]), []),
    });
    const probability = out.output?.data;
    const next = out.stateN?.data;
    if (!(probability instanceof Float32Array) || !(next instanceof Float32Array)) {
      throw new Error("Silero VAD returned unexpected outputs");
    }
    state = new Float32Array(next);
    previous = input.slice(input.length - context);
    if ((probability[0] ?? 0) > 0.5) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return { start: (first * frame) / 16_000, end: ((last + 1) * frame) / 16_000 };
}
const vadSession = session(
  path.join(root, "node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx"),
);

const report: unknown[] = [];
for (const window of windows) {
  console.log(`\n== window: ${window === "full" ? "30 s" : "utterance + 1 s"} ==`);
  console.log(
    "clip                       s    WER   err/ref  words  nsp    avglp  stop              " +
      "frames enc_ms prm_ms dec_ms steps ms/tok  Δstart  Δend  text",
  );
  let errors = 0;
  let referenceWords = 0;
  let nonSpeechWords = 0;
  let nonSpeechKeptWords = 0;
  let droppedSpeech = 0;
  const perToken: number[] = [];
  let audioTotal = 0;
  let computeTotal = 0;
  const startErrors: number[] = [];
  const endErrors: number[] = [];
  for (const clip of dev) {
    const samples = audio.get(clip.id) ?? new Float32Array(0);
    const t = await transcribe(model, samples, {
      language: flags.language,
      fullWindow: window === "full",
      ...(flags.context ? { context: model.tokenizer.encode(flags.context) } : {}),
      ...(flags.bias
        ? {
            bias: {
              sequences: flags.bias.split(",").flatMap((term) => {
                const t = term.trim();
                const upper = t.charAt(0).toUpperCase() + t.slice(1);
                return [` ${t}`, ` ${upper}`].map((v) => model.tokenizer.encode(v));
              }),
              bonus: Number(flags.bonus),
            },
          }
        : {}),
    });
    const seconds = samples.length / 16_000;
    const score = wordErrorRate(clip.reference, t.text);
    const speech = clip.category === "speech";
    if (speech) {
      errors += score.errors;
      referenceWords += score.referenceWords;
      if (t.likelyNoSpeech) droppedSpeech++;
    } else {
      nonSpeechWords += score.hypothesisWords;
      if (!t.likelyNoSpeech) nonSpeechKeptWords += score.hypothesisWords;
    }
    // One-token steps only: the prompt run also builds the cross-attention cache (prm_ms).
    const promptSteps = flags.language === "multi" ? 3 : 1;
    let timing = "      -      -";
    const firstWord = t.words[0];
    const lastWord = t.words.at(-1);
    if (speech && firstWord && lastWord) {
      const bounds = await speechBounds(samples);
      const ds = firstWord.start - bounds.start;
      const de = lastWord.end - bounds.end;
      startErrors.push(Math.abs(ds));
      endErrors.push(Math.abs(de));
      timing = `${fixed(ds, 2).padStart(7)} ${fixed(de, 2).padStart(6)}`;
    }
    const msPerToken =
      (t.stats.decoderMs - t.stats.promptMs) / Math.max(1, t.stats.decoderSteps - promptSteps);
    perToken.push(msPerToken);
    audioTotal += seconds;
    computeTotal += t.stats.melMs + t.stats.encoderMs + t.stats.decoderMs;
    console.log(
      [
        clip.id.padEnd(24),
        fixed(seconds, 1).padStart(5),
        (speech ? `${fixed(100 * score.wer, 1)}%` : "-").padStart(6),
        `${score.errors}/${score.referenceWords}`.padStart(8),
        String(score.hypothesisWords).padStart(6),
        fixed(t.noSpeechProbability ?? Number.NaN, 2).padStart(5),
        fixed(t.avgLogprob, 2).padStart(7),
        ` ${t.stats.stopReason.padEnd(17)}`,
        String(t.stats.frames).padStart(6),
        fixed(t.stats.encoderMs).padStart(6),
        fixed(t.stats.promptMs).padStart(6),
        fixed(t.stats.decoderMs).padStart(6),
        String(t.stats.decoderSteps).padStart(5),
        fixed(msPerToken, 1).padStart(6),
        timing,
        ` ${t.likelyNoSpeech ? "[dropped] " : ""}${JSON.stringify(t.text)}`,
      ].join(" "),
    );
    report.push({ window, clip: clip.id, reference: clip.reference, wer: score, transcript: t });
  }
  console.log(
    `WER ${fixed((100 * errors) / referenceWords, 1)}% (${errors}/${referenceWords} words); ` +
      `words on no-speech clips: ${nonSpeechWords} (${nonSpeechKeptWords} after the no-speech ` +
      `rule); speech clips the rule would drop: ${droppedSpeech}; decoder median ` +
      `${fixed(median(perToken), 1)} ms per one-token step; ` +
      `RTF ${fixed(computeTotal / 1000 / audioTotal, 3)}`,
  );
  console.log(
    `word timing vs VAD speech bounds: |first start − speech start| median ` +
      `${fixed(median(startErrors), 2)} s, max ${fixed(Math.max(...startErrors), 2)} s; ` +
      `|last end − speech end| median ${fixed(median(endErrors), 2)} s, max ` +
      `${fixed(Math.max(...endErrors), 2)} s`,
  );
}
if (flags.json) await writeFile(flags.json, `${JSON.stringify(report, null, 1)}\n`);
