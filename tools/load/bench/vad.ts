/**
 * Bench section "vad": Silero VAD v5, one 32 ms frame at a time, in workerd (the production code
 * path: tools/load/bench/vad-worker.ts, driven by tools/load/bench/vad-workerd.ts) and in Node
 * (tools/load/bench/vad-node.ts: onnxruntime-web's Node entry, wasm backend, 1 thread, same model
 * file), over the same frames; checks that both give the same probabilities.
 *
 * Phases, reported apart: cold (model load + the isolate's first frame), warm-up (the rest of the
 * first round: V8 still tiers ORT's wasm up from its baseline compiler, which takes seconds here),
 * steady state (every later round).
 */
import { readClip } from "./clips.ts";
import { busiestPid, type Sched, sched, schedSpent } from "./cpu.ts";
import {
  type BenchContext,
  fmt,
  median,
  ms,
  msOrNull,
  p95,
  ratio,
  type Section,
  type SectionResult,
  sum,
} from "./report.ts";
import { loadNodeModel, type NodeModel, nodeRound } from "./vad-node.ts";
import type { VadBatch, VadRun } from "./vad-wire.ts";
import { startBenchWorker } from "./vad-workerd.ts";

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
 * Steady-state rounds: 5 × 1202 ≈ 6000 frames per runtime, ~3 s of inference each when the
 * machine is quiet; fewer run if the time budget runs out. EARSHOT_BENCH_VAD_ROUNDS overrides it.
 */
const DEFAULT_STEADY_ROUNDS = 5;
/**
 * Frames per timed batch in workerd: 64 × 32 ms = 2.048 s of audio, ≥ 30 ms of work, so the 1 ms
 * clock resolution moves one batch's mean by at most ~3 %.
 */
const BATCH_FRAMES = 64;

/** One runtime's results, by round. */
interface Side {
  /** [round][clip] */
  runs: VadRun[][];
  /** What its process spent per round (CPU, run-queue wait); null where unreadable. */
  spent: (Sched | null)[];
  cold: { loadMs: number; firstFrameMs: number } | null;
}

/**
 * Both runtimes round by round, alternating (a workerd pass, then a Node pass), so that load from
 * other work on this shared machine lands on both sides alike rather than on one.
 */
async function runBoth(context: BenchContext, rounds: number) {
  const clips = await Promise.all(CLIPS.map(({ file }) => readClip(context.evalDir, file)));
  context.log("vad: starting the bench worker in workerd");
  const worker = await startBenchWorker(context.root, BATCH_FRAMES);
  try {
    const probe = await worker.probeClock();
    const workerd: Side = { runs: [], spent: [], cold: null };
    const node: Side = { runs: [], spent: [], cold: null };
    const workerdSpent: Map<number, Sched>[] = [];
    /** Node's per-frame times, [round][frame], without the cold first frame. */
    const nodeFrameMs: number[][] = [];
    let model: NodeModel | null = null;
    let lastRoundMs = 0;
    for (let round = 0; round < rounds; round++) {
      if (round > WARMUP_ROUNDS && Date.now() + lastRoundMs > context.deadline) {
        context.log(`vad: time budget reached after ${round} of ${rounds} rounds`);
        break;
      }
      const roundStart = Date.now();
      const pass = await worker.round(clips);
      workerd.runs.push(pass.runs);
      workerdSpent.push(pass.spent);
      workerd.cold ??= pass.runs[0]?.cold ?? null;

      const workerdDone = Date.now();
      model ??= await loadNodeModel(context.root);
      const before = sched(process.pid);
      const layout = pass.runs.map((run) => run.batches);
      const nodePass = await nodeRound(model, clips, layout, round === 0);
      const after = sched(process.pid);
      node.runs.push(nodePass.row);
      node.spent.push(schedSpent(before, after));
      nodeFrameMs.push(nodePass.frameMs);
      if (nodePass.firstFrameMs !== null) {
        node.cold = { loadMs: model.loadMs, firstFrameMs: nodePass.firstFrameMs };
      }
      lastRoundMs = Date.now() - roundStart;
      const split = `workerd ${workerdDone - roundStart} ms, node ${Date.now() - workerdDone} ms`;
      context.log(`vad: round ${round + 1}/${rounds} done (${split})`);
    }
    const busiest = busiestPid(workerdSpent);
    workerd.spent = workerdSpent.map((spent) =>
      busiest === null ? null : (spent.get(busiest) ?? null),
    );
    return { clips, probe, workerd, node, nodeFrameMs };
  } finally {
    await worker.dispose();
  }
}

/** Rounds that count as steady state: after the warm-up, or all if there were no more. */
function steadyFrom(side: Side): number {
  return side.runs.length > WARMUP_ROUNDS ? WARMUP_ROUNDS : 0;
}

const batchesOf = (runs: VadRun[][]): VadBatch[] => runs.flat().flatMap((run) => run.batches);

/** Per-frame ms of each batch (batch ms / frames) in the given rounds. */
function batchMeans(runs: VadRun[][]): { means: number[]; frames: number } {
  const batches = batchesOf(runs);
  return { means: batches.map((b) => b.ms / b.frames), frames: sum(batches.map((b) => b.frames)) };
}

/** Mean ms per frame over all batches of some rounds (the cold frame is in no batch). */
function meanPerFrame(runs: VadRun[][]): number {
  const batches = batchesOf(runs);
  return sum(batches.map((b) => b.ms)) / sum(batches.map((b) => b.frames));
}

/** CPU and run-queue wait per frame over the steady rounds; null when they could not be read. */
function schedPerFrame(side: Side): Sched | null {
  let cpu = 0;
  let wait = 0;
  let frames = 0;
  for (let round = steadyFrom(side); round < side.runs.length; round++) {
    const spent = side.spent[round];
    if (spent === null || spent === undefined) return null;
    cpu += spent.cpuMs;
    wait += spent.waitMs;
    for (const run of side.runs[round] ?? []) frames += run.probabilities.length;
  }
  return frames > 0 ? { cpuMs: cpu / frames, waitMs: wait / frames } : null;
}

function maxAbsDiff(a: VadRun[][], b: VadRun[][]): number {
  let max = 0;
  for (const [r, row] of a.entries()) {
    for (const [c, run] of row.entries()) {
      const other = b[r]?.[c]?.probabilities;
      if (other?.length !== run.probabilities.length) {
        throw new Error(`round ${r} clip ${c}: frame counts differ between runtimes`);
      }
      for (const [i, p] of run.probabilities.entries()) {
        max = Math.max(max, Math.abs(p - (other[i] ?? Number.NaN)));
      }
    }
  }
  return max;
}

async function run(context: BenchContext): Promise<SectionResult> {
  const steadyRounds = Number(process.env.EARSHOT_BENCH_VAD_ROUNDS ?? DEFAULT_STEADY_ROUNDS);
  if (!Number.isInteger(steadyRounds) || steadyRounds < 1) {
    throw new Error("EARSHOT_BENCH_VAD_ROUNDS must be a positive integer");
  }
  const result = await runBoth(context, WARMUP_ROUNDS + steadyRounds);
  const { probe, workerd, node } = result;
  if (workerd.cold === null || node.cold === null) throw new Error("no cold start was measured");

  const from = steadyFrom(workerd);
  const w = batchMeans(workerd.runs.slice(from));
  const n = batchMeans(node.runs.slice(from));
  const nodeFrames = result.nodeFrameMs.slice(from).flat();
  const wMedian = median(w.means);
  const nBatchMedian = median(n.means);
  const nFrameMedian = median(nodeFrames);
  const wP95 = p95(w.means);
  const nP95 = p95(n.means);
  const wSched = schedPerFrame(workerd);
  const nSched = schedPerFrame(node);
  const wCpu = wSched?.cpuMs ?? null;
  const nCpu = nSched?.cpuMs ?? null;
  const wWarmup = meanPerFrame(workerd.runs.slice(0, WARMUP_ROUNDS));
  const nWarmup = meanPerFrame(node.runs.slice(0, WARMUP_ROUNDS));
  const clock = probe.advancesWithoutIo
    ? `local workerd's clock is NOT frozen during JS (checked: it moved with no I/O), ` +
      `resolution ${probe.resolutionMs} ms`
    : "local workerd's clock is frozen during JS (moves only across I/O)";
  const method =
    `performance.now() read after an I/O boundary (await scheduler.wait(0)) every ` +
    `${BATCH_FRAMES} frames; per-frame = batch ms / frames; median/p95 over batch means; ` +
    `${clock}; one boundary costs ${fmt(probe.boundaryMs, 3)} ms and is included in each batch`;
  const speechShare = (clip: VadRun | undefined) =>
    clip ? ms(clip.probabilities.filter((p) => p > 0.5).length / clip.probabilities.length) : null;

  const json = {
    clips: CLIPS.map((clip, i) => ({
      ...clip,
      frames: workerd.runs[0]?.[i]?.probabilities.length ?? 0,
      share_above_0_5: speechShare(workerd.runs[0]?.[i]),
    })),
    warmup_rounds: from,
    steady_rounds: workerd.runs.length - from,
    batch_frames: BATCH_FRAMES,
    workerd: {
      median_ms: ms(wMedian),
      p95_ms: ms(wP95),
      frames: w.frames,
      batches: w.means.length,
      method,
      cold_ms: ms(workerd.cold.loadMs + workerd.cold.firstFrameMs),
      cold_load_ms: ms(workerd.cold.loadMs),
      cold_first_frame_ms: ms(workerd.cold.firstFrameMs),
      cold_note:
        "loadSilero() (ORT init + session creation) + first frame; ORT's WebAssembly.Module " +
        "exists from script load (CompiledWasm rule), V8 may still compile functions lazily",
      warmup_mean_ms: ms(wWarmup),
      cpu_ms_per_frame: msOrNull(wCpu),
      runqueue_wait_ms_per_frame: msOrNull(wSched?.waitMs ?? null),
      cpu_note:
        "CPU time (and time runnable but waiting for a CPU) of the bench worker's workerd " +
        "process, not wrangler's proxy, over the steady rounds / frames; request handling included",
      clock: probe,
      wasm_heap_bytes: workerd.runs.at(-1)?.at(-1)?.wasmHeapBytes ?? null,
    },
    node: {
      median_ms: ms(nFrameMedian),
      p95_ms: ms(p95(nodeFrames)),
      frames: nodeFrames.length,
      method: "performance.now() around each frame (build tensors, run, copy state)",
      batched: { median_ms: ms(nBatchMedian), p95_ms: ms(nP95), batches: n.means.length },
      cold_ms: ms(node.cold.loadMs + node.cold.firstFrameMs),
      cold_load_ms: ms(node.cold.loadMs),
      cold_first_frame_ms: ms(node.cold.firstFrameMs),
      cold_note: "InferenceSession.create (reads and compiles ORT's wasm too) + first frame",
      warmup_mean_ms: ms(nWarmup),
      cpu_ms_per_frame: msOrNull(nCpu),
      runqueue_wait_ms_per_frame: msOrNull(nSched?.waitMs ?? null),
      cpu_note:
        "CPU time (and time runnable but waiting for a CPU) of this Node process over the " +
        "steady rounds / frames",
      runtime: `onnxruntime-web (Node entry), wasm backend, numThreads 1, Node ${process.version}`,
    },
    ratio_median: ratio(wMedian, nBatchMedian),
    ratio_basis: `workerd median / Node median, both over the same ${BATCH_FRAMES}-frame batches`,
    ratio_median_vs_node_per_frame: ratio(wMedian, nFrameMedian),
    ratio_cpu: ratio(wCpu, nCpu),
    max_abs_diff: maxAbsDiff(workerd.runs, node.runs),
  };

  const row = (label: string, a: number | null, b: number | null, digits = 3) => [
    label,
    fmt(a, digits),
    fmt(b, digits),
    fmt(ratio(a, b), 2),
  ];
  const table = {
    columns: ["Silero VAD, ms per 32 ms frame", "workerd", "Node", "workerd/Node"],
    rows: [
      row(`steady median (${BATCH_FRAMES}-frame batches)`, wMedian, nBatchMedian),
      row(`steady p95 (${BATCH_FRAMES}-frame batches)`, wP95, nP95),
      row("steady CPU time per frame", wCpu, nCpu),
      row("steady run-queue wait per frame", wSched?.waitMs ?? null, nSched?.waitMs ?? null),
      ["steady median (each frame timed)", "-", fmt(nFrameMedian, 3), ""],
      ["steady p95 (each frame timed)", "-", fmt(p95(nodeFrames), 3), ""],
      row("warm-up round, mean", wWarmup, nWarmup),
      row("cold: model load", workerd.cold.loadMs, node.cold.loadMs, 1),
      row("cold: first frame", workerd.cold.firstFrameMs, node.cold.firstFrameMs, 1),
      ["steady frames timed", String(w.frames), String(nodeFrames.length), ""],
      ["max |p_workerd - p_node|, all frames", "", "", String(json.max_abs_diff)],
    ],
  };
  return { json, table };
}

export const vadSection: Section = {
  name: "vad",
  title: "Silero VAD per 32 ms frame (workerd vs Node, same frames, same model)",
  run,
};
