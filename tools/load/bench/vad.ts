/**
 * Bench section "vad": Silero VAD v5, one 32 ms frame at a time, in workerd: the production code
 * path (vad-worker.ts) over real clips, with the same frames run through Node's Silero
 * (vad-node.ts) to check that both give the same probabilities: the whisper section's latencies
 * are measured from the end of speech that Node's replay finds.
 *
 * Phases, reported apart: cold (model load + the isolate's first frame), warm-up (the rest of the
 * first round: V8 still tiers ORT's wasm up from its baseline compiler, which takes seconds here),
 * steady state (every later round).
 *
 * The bench worker is started with wrangler's programmatic API (127.0.0.1, no inspector, no file
 * watching) and driven over HTTP; the opus section uses it too.
 */
import path from "node:path";
import { busiestPid, childrenNamed, type Sched, schedByPid, schedSpentByPid } from "../proc.ts";
import { type Clip, readClip } from "./clips.ts";
import {
  type BenchContext,
  fmt,
  median,
  ms,
  msOrNull,
  p95,
  type Section,
  type SectionResult,
  sum,
} from "./report.ts";
import { loadNodeModel, nodeProbabilities } from "./vad-node.ts";
import type { ClockProbe, OpusRun, VadRun } from "./worker-common.ts";

/** 3 speech clips and 1 of background noise: 11.0 + 11.66 + 7.66 + 8.21 s = 1202 frames. */
const CLIPS = [
  { file: "wcpp_jfk.wav", category: "speech" },
  { file: "lhotse_2412_153948_0000.wav", category: "speech" },
  { file: "sb_lj050_0131.wav", category: "speech" },
  { file: "ns_leopard_empty.wav", category: "noise" },
] as const;
/** Rounds (passes over all clips, fresh VAD state per clip) before the steady state. */
const WARMUP_ROUNDS = 1;
/**
 * Steady-state rounds: 5 × 1202 ≈ 6000 frames, ~3 s of inference when the machine is quiet; fewer
 * run if the time budget runs out. EARSHOT_BENCH_VAD_ROUNDS overrides it.
 */
const DEFAULT_STEADY_ROUNDS = 5;
/**
 * Frames per timed batch: 64 × 32 ms = 2.048 s of audio, ≥ 30 ms of work, so the 1 ms clock
 * resolution moves one batch's mean by at most ~3 %.
 */
const BATCH_FRAMES = 64;
/** One clip through the worker takes seconds at worst, even cold; 60 s means it is stuck. */
const REQUEST_TIMEOUT_MS = 60_000;

function withTimeout<T>(work: Promise<T>, label: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${label}: no answer in ${REQUEST_TIMEOUT_MS} ms`)),
      REQUEST_TIMEOUT_MS,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export async function startBenchWorker(root: string) {
  // Imported here, not at the top: wrangler is heavy and only this side needs it.
  const { unstable_startWorker } = await import("wrangler");
  const worker = await unstable_startWorker({
    config: path.join(root, "tools", "load", "bench", "wrangler.bench.toml"),
    dev: {
      server: { hostname: "127.0.0.1", port: 0 },
      inspector: false,
      watch: false,
      logLevel: "warn",
    },
  });
  try {
    await withTimeout(worker.ready, "bench worker start");
  } catch (error) {
    await worker.dispose();
    throw error;
  }
  const fetchJson = async <T>(url: string, body?: Float32Array | Uint8Array): Promise<T> => {
    const init = body
      ? { method: "POST", body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) }
      : undefined;
    const response = await withTimeout(worker.fetch(url, init), url);
    const text = await response.text();
    if (!response.ok) throw new Error(`bench worker ${url}: HTTP ${response.status}\n${text}`);
    return JSON.parse(text) as T;
  };
  // The bench worker's own workerd starts behind the proxy and is up once a request has been
  // answered, so the processes are looked up after the first one.
  let workerdPids: number[] | null = null;
  const pids = () => {
    workerdPids ??= childrenNamed(process.pid, "workerd");
    return workerdPids;
  };

  return {
    async probeClock() {
      const probe = await fetchJson<ClockProbe>("http://bench/clock");
      pids();
      return probe;
    },
    /**
     * Every clip once, each with fresh VAD state. `spent` is what each workerd process spent on
     * it: wrangler runs two (its proxy worker and the bench worker) and does not say which is which.
     */
    async round(clips: readonly Clip[]) {
      const before = schedByPid(pids());
      const runs: VadRun[] = [];
      for (const clip of clips) {
        const run = await fetchJson<VadRun>(`http://bench/vad?batch=${BATCH_FRAMES}`, clip.samples);
        if (!Array.isArray(run?.probabilities) || !Array.isArray(run.batches)) {
          throw new Error(`bench worker returned no VAD run for ${clip.file}`);
        }
        runs.push(run);
      }
      return { runs, spent: schedSpentByPid(before, schedByPid(pids())) };
    },
    /** An Ogg/Opus stream through the session's Opus path, `rounds` times (POST /opus). */
    async opus(ogg: Uint8Array, rounds: number) {
      const run = await fetchJson<OpusRun>(`http://bench/opus?rounds=${rounds}`, ogg);
      if (!Array.isArray(run?.rounds) || run.rounds.length !== rounds) {
        throw new Error("bench worker returned no Opus run");
      }
      return run;
    },
    dispose: () => worker.dispose(),
  };
}

/** The largest |p_workerd − p_node| over every frame of every round. */
async function maxAbsDiff(root: string, clips: Clip[], rounds: VadRun[][]): Promise<number> {
  const model = await loadNodeModel(root);
  let max = 0;
  for (const [c, clip] of clips.entries()) {
    const node = await nodeProbabilities(model, clip.samples);
    for (const [r, round] of rounds.entries()) {
      const workerd = round[c]?.probabilities ?? [];
      if (workerd.length !== node.length) {
        throw new Error(`round ${r} clip ${c}: frame counts differ between runtimes`);
      }
      for (const [i, p] of workerd.entries()) {
        max = Math.max(max, Math.abs(p - (node[i] ?? Number.NaN)));
      }
    }
  }
  return max;
}

/**
 * CPU time and run-queue wait per frame of the bench worker's workerd (`busiest`, not wrangler's
 * proxy) over some rounds; null when they could not be read.
 */
function schedPerFrame(
  spentByPid: Map<number, Sched>[],
  rounds: VadRun[][],
  busiest: number | null,
): Sched | null {
  let cpuMs = 0;
  let waitMs = 0;
  for (const spent of spentByPid) {
    const mine = busiest === null ? undefined : spent.get(busiest);
    if (mine === undefined) return null;
    cpuMs += mine.cpuMs;
    waitMs += mine.waitMs;
  }
  const frames = sum(rounds.flat().map((run) => run.probabilities.length));
  return frames > 0 ? { cpuMs: cpuMs / frames, waitMs: waitMs / frames } : null;
}

/** Per-frame ms of each batch (batch ms / frames) of some rounds, and their frames. */
function batchMeans(rounds: VadRun[][]) {
  const batches = rounds.flat().flatMap((run) => run.batches);
  return {
    means: batches.map((b) => b.ms / b.frames),
    mean: sum(batches.map((b) => b.ms)) / sum(batches.map((b) => b.frames)),
    frames: sum(batches.map((b) => b.frames)),
  };
}

async function run(context: BenchContext): Promise<SectionResult> {
  const steadyRounds = Number(process.env.EARSHOT_BENCH_VAD_ROUNDS ?? DEFAULT_STEADY_ROUNDS);
  if (!Number.isInteger(steadyRounds) || steadyRounds < 1) {
    throw new Error("EARSHOT_BENCH_VAD_ROUNDS must be a positive integer");
  }
  const rounds = WARMUP_ROUNDS + steadyRounds;
  const clips = await Promise.all(CLIPS.map(({ file }) => readClip(context.evalDir, file)));
  context.log("vad: starting the bench worker in workerd");
  const worker = await startBenchWorker(context.root);
  const runs: VadRun[][] = [];
  const spentByPid: Map<number, Sched>[] = [];
  let probe: ClockProbe;
  try {
    probe = await worker.probeClock();
    let lastRoundMs = 0;
    for (let round = 0; round < rounds; round++) {
      if (round > WARMUP_ROUNDS && Date.now() + lastRoundMs > context.deadline) {
        context.log(`vad: time budget reached after ${round} of ${rounds} rounds`);
        break;
      }
      const roundStart = Date.now();
      const pass = await worker.round(clips);
      runs.push(pass.runs);
      spentByPid.push(pass.spent);
      lastRoundMs = Date.now() - roundStart;
      context.log(`vad: round ${round + 1}/${rounds} done (${lastRoundMs} ms)`);
    }
  } finally {
    await worker.dispose();
  }
  const cold = runs[0]?.[0]?.cold;
  if (!cold) throw new Error("no cold start was measured");

  // Rounds that count as steady state: after the warm-up, or all if there were no more.
  const from = runs.length > WARMUP_ROUNDS ? WARMUP_ROUNDS : 0;
  const steady = batchMeans(runs.slice(from));
  const steadyMedian = median(steady.means);
  const steadyP95 = p95(steady.means);
  const warmupMean = batchMeans(runs.slice(0, WARMUP_ROUNDS)).mean;
  const spent = schedPerFrame(spentByPid.slice(from), runs.slice(from), busiestPid(spentByPid));
  context.log("vad: the same frames through Silero in Node, for the probabilities");
  const maxDiff = await maxAbsDiff(context.root, clips, runs);

  const clock = probe.advancesWithoutIo
    ? `local workerd's clock is NOT frozen during JS (checked: it moved with no I/O), ` +
      `resolution ${probe.resolutionMs} ms`
    : "local workerd's clock is frozen during JS (moves only across I/O)";
  const speechShare = (clip: VadRun | undefined) =>
    clip ? ms(clip.probabilities.filter((p) => p > 0.5).length / clip.probabilities.length) : null;
  const json = {
    clips: CLIPS.map((clip, i) => ({
      ...clip,
      frames: runs[0]?.[i]?.probabilities.length ?? 0,
      share_above_0_5: speechShare(runs[0]?.[i]),
    })),
    warmup_rounds: from,
    steady_rounds: runs.length - from,
    batch_frames: BATCH_FRAMES,
    workerd: {
      median_ms: ms(steadyMedian),
      p95_ms: ms(steadyP95),
      frames: steady.frames,
      batches: steady.means.length,
      method:
        `performance.now() read after an I/O boundary (await scheduler.wait(0)) every ` +
        `${BATCH_FRAMES} frames; per-frame = batch ms / frames; median/p95 over batch means; ` +
        `${clock}; one boundary costs ${fmt(probe.boundaryMs, 3)} ms and is included in each batch`,
      cold_ms: ms(cold.loadMs + cold.firstFrameMs),
      cold_load_ms: ms(cold.loadMs),
      cold_first_frame_ms: ms(cold.firstFrameMs),
      cold_note:
        "loadSilero() (ORT init + session creation) + first frame; ORT's WebAssembly.Module " +
        "exists from script load (CompiledWasm rule), V8 may still compile functions lazily",
      warmup_mean_ms: ms(warmupMean),
      cpu_ms_per_frame: msOrNull(spent?.cpuMs ?? null),
      runqueue_wait_ms_per_frame: msOrNull(spent?.waitMs ?? null),
      cpu_note:
        "CPU time (and time runnable but waiting for a CPU) of the bench worker's workerd " +
        "process, not wrangler's proxy, over the steady rounds / frames; request handling included",
      clock: probe,
      wasm_heap_bytes: runs.at(-1)?.at(-1)?.wasmHeapBytes ?? null,
    },
    max_abs_diff: maxDiff,
  };

  const row = (label: string, value: number | null, digits = 3) => [label, fmt(value, digits)];
  const table = {
    columns: ["Silero VAD in workerd, ms per 32 ms frame", "workerd"],
    rows: [
      row(`steady median (${BATCH_FRAMES}-frame batches)`, steadyMedian),
      row(`steady p95 (${BATCH_FRAMES}-frame batches)`, steadyP95),
      row("steady CPU time per frame", spent?.cpuMs ?? null),
      row("steady run-queue wait per frame", spent?.waitMs ?? null),
      row("warm-up round, mean", warmupMean),
      row("cold: model load", cold.loadMs, 1),
      row("cold: first frame", cold.firstFrameMs, 1),
      ["steady frames timed", String(steady.frames)],
      ["max |p_workerd - p_node|, all frames", String(maxDiff)],
    ],
  };
  return { json, table };
}

export const vadSection: Section = {
  name: "vad",
  title: "Silero VAD per 32 ms frame in workerd (probabilities checked against Node's)",
  run,
};
