/**
 * Where a Whisper decoder step spends its time: the prepared decoder in onnxruntime-web (the same
 * wasm build and 1 thread as workerd, whose clock only advances across I/O) with ORT's profiler
 * on, driven by the service's own greedy decoding over real dev clips.
 *
 *   node tools/models/profile-decoder.ts [--dir models/prepared] [--clips a.wav,b.wav] [--json out.json]
 *
 * Per cache step (one new token; the prompt run is reported apart) it splits the wall time of
 * `decoder.run` into ORT's own `model_run` (per op type and the costliest nodes) and what happens
 * in JavaScript around it: copying every feed into the WASM heap and every fetched output back out
 * (ORT-web does both on every run), plus the time between runs (logit rules, argmax, softmax).
 *
 * ORT-web prints the profile as JSON lines through console.log when the session ends profiling;
 * they are captured here, so run this in a process of its own.
 */
import fs from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import type { InferenceSession, Tensor } from "onnxruntime-web/wasm";
import { SESSION_OPTIONS } from "../../src/runtime/session-options.ts";
import type { GenerationConfig } from "../../src/stt/whisper/logit-rules.ts";
import type { AddedTokens, Vocab } from "../../src/stt/whisper/tokenizer.ts";
import { parseWav, pcm16ToFloat } from "../eval/wav.ts";
import { loadProjection } from "./projection-kernel.ts";
import { captureWasmHeap } from "./wasm-heap.ts";

const repoRoot = path.resolve(import.meta.dirname, "..", "..");
const DEFAULT_CLIPS = [
  "wcpp_jfk.wav",
  "psx_librivox_0870.wav",
  "lhotse_2412_153948_0000.wav",
  "sb_lj050_0131.wav",
];

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  ts: number;
  args?: { op_name?: string; node_index?: string };
}

interface RunTiming {
  /** Wall ms of decoder.run as JavaScript sees it. */
  wallMs: number;
  /** Wall ms from the previous run's end to this run's start: JS work between steps. */
  betweenMs: number;
  /** Bytes of the feeds (all copied into the heap by ORT-web on every run). */
  feedBytes: number;
  cacheStep: boolean;
}

export interface DecoderProfile {
  runtime: string;
  clips: string[];
  cacheSteps: number;
  /** Median wall ms of one cache step's decoder.run. */
  stepWallMs: number;
  /** Mean ms per cache step. */
  perStep: {
    wallMs: number;
    modelRunMs: number;
    /** wallMs − modelRunMs: feeds into the heap, outputs out, ORT's JS glue. */
    jsRunOverheadMs: number;
    /** Between runs: logit rules, argmax, softmax, repetition guard, tensors for the next feed. */
    betweenRunsMs: number;
    feedMB: number;
  };
  /** Mean ms per cache step by ONNX op type (inside the If node's branch). */
  byOpType: { op: string; ms: number; nodes: number }[];
  /** The costliest nodes, mean ms per cache step. */
  topNodes: { node: string; op: string; ms: number }[];
  prompt: { runs: number; wallMs: number; modelRunMs: number };
  /** ORT's WASM heap after all clips (it only grows: this is the peak). */
  heapPeakMB: number;
}

function tensorBytes(tensor: Tensor): number {
  const data = tensor.data;
  return typeof data === "object" && data !== null && "byteLength" in data ? data.byteLength : 0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: "string", default: path.join(repoRoot, "models", "prepared") },
      stock: { type: "string", default: path.join(repoRoot, "models", "stock") },
      eval: { type: "string", default: path.join(repoRoot, "..", "shared", "eval", "dev") },
      clips: { type: "string", default: DEFAULT_CLIPS.join(",") },
      json: { type: "string" },
    },
  });
  const dir = values.dir;
  const stockDir = values.stock;

  // ORT-web's wasm glue prints its profile with fs.writeSync(1, …) in Node: keep those lines.
  const profileLines: string[] = [];
  const writeSync = fs.writeSync;
  const capture = (fd: number, text: unknown, ...rest: unknown[]): number => {
    if (fd === 1 && typeof text === "string") {
      profileLines.push(...text.split("\n").filter((line) => line.trim() !== ""));
      return text.length;
    }
    return (writeSync as (...args: unknown[]) => number)(fd, text, ...rest);
  };
  fs.writeSync = capture as typeof fs.writeSync;
  const log = (line: string) => process.stderr.write(`${line}\n`);

  const heapBytes = captureWasmHeap();
  const ort = await import("onnxruntime-web/wasm");
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  const { createWhisperModel } = await import("../../src/stt/whisper/model.ts");
  const { transcribe } = await import("../../src/stt/whisper/transcribe.ts");
  const load = async (name: string, profiling: boolean): Promise<InferenceSession> =>
    ort.InferenceSession.create(await readFile(path.join(dir, `${name}.onnx`)), {
      ...SESSION_OPTIONS,
      enableProfiling: profiling,
      externalData: [
        { path: `${name}.onnx.data`, data: await readFile(path.join(dir, `${name}.onnx.data`)) },
      ],
    });
  const encoder = await load("encoder", false);
  const decoder = await load("decoder", true);

  // Every decoder.run of the decoding, timed from JavaScript.
  const runs: RunTiming[] = [];
  let lastEnd: number | undefined;
  const timed = new Proxy(decoder, {
    get(target, key, receiver) {
      if (key !== "run") return Reflect.get(target, key, receiver);
      return async (feeds: Record<string, Tensor>, fetches: readonly string[]) => {
        const started = performance.now();
        const betweenMs = lastEnd === undefined ? 0 : started - lastEnd;
        const out = await target.run(feeds, fetches);
        lastEnd = performance.now();
        const useCache = Boolean(feeds.use_cache_branch?.data[0]);
        let feedBytes = 0;
        for (const tensor of Object.values(feeds)) feedBytes += tensorBytes(tensor);
        runs.push({ wallMs: lastEnd - started, betweenMs, feedBytes, cacheStep: useCache });
        return out;
      };
    },
  });

  const json = async <T>(file: string) =>
    JSON.parse(await readFile(path.join(stockDir, file), "utf8")) as T;
  const model = createWhisperModel({
    encoder,
    decoder: timed,
    vocab: await json<Vocab>("vocab.json"),
    addedTokens: await json<AddedTokens>("added_tokens.json"),
    generationConfig: await json<GenerationConfig>("generation_config.json"),
    variableLength: true,
    projection: await loadProjection(dir),
  });

  const clips = values.clips.split(",");
  for (const clip of clips) {
    const wav = parseWav(await readFile(path.join(values.eval, clip)));
    lastEnd = undefined;
    const result = await transcribe(model, pcm16ToFloat(wav.pcm), { language: "en" });
    log(`${clip}: ${result.stats.decoderSteps} steps, "${result.text.trim()}"`);
  }
  decoder.endProfiling();
  fs.writeSync = writeSync;

  const events: ProfileEvent[] = [];
  for (const line of profileLines) {
    const trimmed = line.replace(/^\[/, "").replace(/,?\s*\]?\s*$/, "");
    if (trimmed.startsWith("{")) events.push(JSON.parse(trimmed) as ProfileEvent);
  }
  const modelRuns = events
    .filter((event) => event.cat === "Session" && event.name === "model_run")
    .sort((a, b) => a.ts - b.ts);
  if (modelRuns.length !== runs.length) {
    throw new Error(`profile has ${modelRuns.length} model runs, JavaScript saw ${runs.length}`);
  }
  const nodes = events.filter(
    (event) => event.cat === "Node" && event.name.endsWith("_kernel_time"),
  );
  const byOp = new Map<string, { us: number; nodes: Set<string> }>();
  const byNode = new Map<string, { us: number; op: string }>();
  let cacheSteps = 0;
  let cacheWall = 0;
  let cacheModelRun = 0;
  let cacheBetween = 0;
  let cacheFeedBytes = 0;
  let promptWall = 0;
  let promptModelRun = 0;
  const stepWalls: number[] = [];
  modelRuns.forEach((run, index) => {
    const timing = runs[index] as RunTiming;
    if (!timing.cacheStep) {
      promptWall += timing.wallMs;
      promptModelRun += run.dur / 1000;
      return;
    }
    cacheSteps++;
    stepWalls.push(timing.wallMs);
    cacheWall += timing.wallMs;
    cacheModelRun += run.dur / 1000;
    cacheBetween += timing.betweenMs;
    cacheFeedBytes += timing.feedBytes;
    for (const node of nodes) {
      if (node.ts < run.ts || node.ts + node.dur > run.ts + run.dur) continue;
      const op = node.args?.op_name ?? "?";
      const name = node.name.replace(/_kernel_time$/, "");
      // The If node's own time contains its branch's nodes: counted apart, not in the sum.
      const opKey = op === "If" ? "If (whole branch, not summed)" : op;
      const entry = byOp.get(opKey) ?? { us: 0, nodes: new Set<string>() };
      entry.us += node.dur;
      entry.nodes.add(name);
      byOp.set(opKey, entry);
      const nodeEntry = byNode.get(name) ?? { us: 0, op };
      nodeEntry.us += node.dur;
      byNode.set(name, nodeEntry);
    }
  });
  const perStep = (us: number) => Math.round((us / 1000 / cacheSteps) * 1000) / 1000;
  const round = (ms: number) => Math.round(ms * 1000) / 1000;
  stepWalls.sort((a, b) => a - b);
  const profile: DecoderProfile = {
    runtime: `onnxruntime-web ${ort.env.versions.web} wasm, 1 thread, Node ${process.version}`,
    clips,
    cacheSteps,
    stepWallMs: round(stepWalls[Math.floor(stepWalls.length / 2)] ?? 0),
    perStep: {
      wallMs: round(cacheWall / cacheSteps),
      modelRunMs: round(cacheModelRun / cacheSteps),
      jsRunOverheadMs: round((cacheWall - cacheModelRun) / cacheSteps),
      betweenRunsMs: round(cacheBetween / cacheSteps),
      feedMB: round(cacheFeedBytes / cacheSteps / 1e6),
    },
    byOpType: [...byOp.entries()]
      .map(([op, entry]) => ({ op, ms: perStep(entry.us), nodes: entry.nodes.size }))
      .sort((a, b) => b.ms - a.ms),
    topNodes: [...byNode.entries()]
      .map(([node, entry]) => ({ node, op: entry.op, ms: perStep(entry.us) }))
      .filter((entry) => entry.op !== "If")
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 15),
    prompt: {
      runs: runs.length - cacheSteps,
      wallMs: round(promptWall),
      modelRunMs: round(promptModelRun),
    },
    heapPeakMB: round(heapBytes() / 1e6),
  };
  if (values.json) await writeFile(values.json, `${JSON.stringify(profile, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(profile, null, 2)}\n`);
}

await main();
