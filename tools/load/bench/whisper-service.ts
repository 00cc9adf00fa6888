/**
 * The real service under test: src/index.ts with wrangler.toml in workerd (startService in
 * tools/load/dev-worker.ts), EARSHOT_TRANSCRIBER=whisper, its own persistence folder (models seeded
 * into its R2, D1 migrated with the demo account), driven one session at a time at real-time pace
 * (whisper-session.ts) so that no session's latency includes another's work.
 *
 * Order: a readiness request (the isolate exists, nothing loaded: the RSS baseline), a cold session
 * (its handshake loads the models: the cold-load figure; its clip also warms V8 up), then every
 * clip once. Memory last: RSS of the worker's workerd, then — with DevTools attached, which would
 * slow wasm down, hence last — ORT's heap and V8's heap of the isolate (tools/load/inspector.ts).
 */
import path from "node:path";
import { type DevWorker, prepareState, startService } from "../dev-worker.ts";
import { busiestPid, schedByPid, schedSpentByPid } from "../proc.ts";
import { pcmSeconds } from "./clips.ts";
import {
  type JsHeap,
  jsHeap,
  type ProcessMemory,
  poke,
  processMemory,
  readThroughInspector,
  rssBaseline,
  serviceWasmMemories,
} from "./memory.ts";
import { settle } from "./report.ts";
import { type LatencyClip, type LatencyModeResult, runLatencyModes } from "./whisper-latency.ts";
import { runSession, type SessionRun, transcriptOf } from "./whisper-session.ts";

/** The bench's own wrangler state (git-ignored with bench-results/); other copies add a suffix. */
export const PERSIST_DIR = "bench-results/whisper-state";

/**
 * A copy of the service built from `source` (default: `root`), its models and demo account in
 * PERSIST_DIR + `suffix`, warmed by a first session on `warm` (PCM16), so that no measured
 * session pays for the model load.
 */
export async function startWarmService(options: {
  root: string;
  source?: string;
  suffix: string;
  vars?: Record<string, string>;
  warm: Uint8Array;
}): Promise<DevWorker> {
  const source = options.source ?? options.root;
  const persistTo = path.join(options.root, `${PERSIST_DIR}${options.suffix}`);
  await prepareState(source, persistTo);
  const worker = await startService(source, persistTo, options.vars);
  try {
    await runSession(worker.url, options.warm, null);
  } catch (error) {
    await worker.stop();
    throw error;
  }
  return worker;
}

/** PCM16 LE, 16 kHz mono. */
interface ServiceClip {
  id: string;
  pcm: Uint8Array;
}

export interface ServiceRun {
  cold: { clip: string; run: SessionRun };
  runs: { id: string; run: SessionRun }[];
  /** Clips not run because the section's time budget ran out. */
  skipped: string[];
  /** The worker's workerd: RSS after the readiness request, at the end, and the peak between. */
  memory: ProcessMemory | null;
  /** Every WebAssembly.Memory in the isolate at the end (ORT's heap), bytes. */
  wasmMemoriesBytes: number[] | null;
  jsHeap: JsHeap | null;
  inspectorError: string | null;
  /** End of speech → final in the finalize and endpointing modes (whisper-latency.ts). */
  latency: LatencyModeResult[] | null;
  latencyError: string | null;
}

interface ServiceOptions {
  root: string;
  persistTo: string;
  cold: ServiceClip;
  clips: ServiceClip[];
  /** Epoch ms after which no further clip is started. */
  deadline: number;
  /** Speech clips run again in each latency mode, after `clips`. */
  latencyClips: LatencyClip[];
  log: (message: string) => void;
}

export async function runService(options: ServiceOptions): Promise<ServiceRun> {
  const { log } = options;
  // EARSHOT_BENCH_EARLY_FINALS=off measures the service without early finals (on by default).
  const worker = await startService(options.root, options.persistTo, {
    EARSHOT_EARLY_FINALS: process.env.EARSHOT_BENCH_EARLY_FINALS === "off" ? "off" : "on",
  });
  try {
    // The worker's own workerd starts behind wrangler's proxy and runs the module once a request
    // has been answered: then the isolate exists with nothing loaded.
    const listen = () => poke(`${worker.url}/v1/listen`);
    await listen();
    const pids = worker.workerdPids();
    const baseline = rssBaseline(pids);

    log(`whisper: cold session (${options.cold.id}, ${pcmSeconds(options.cold.pcm).toFixed(1)} s)`);
    const before = schedByPid(pids);
    const cold = await runSession(worker.url, options.cold.pcm, null);
    const cpuPid = busiestPid([schedSpentByPid(before, schedByPid(pids))]);
    log(`whisper: cold handshake ${Math.round(cold.handshakeMs)} ms`);

    const runs: ServiceRun["runs"] = [];
    const skipped: string[] = [];
    for (const clip of options.clips) {
      if (Date.now() + pcmSeconds(clip.pcm) * 1000 > options.deadline) {
        skipped.push(clip.id);
        continue;
      }
      const run = await runSession(worker.url, clip.pcm, cpuPid);
      runs.push({ id: clip.id, run });
      log(`whisper: ${clip.id} → ${JSON.stringify(transcriptOf(run))}`);
    }
    if (skipped.length > 0) log(`whisper: time budget reached, skipped ${skipped.join(", ")}`);

    const latency = await settle(
      () =>
        runLatencyModes({
          root: options.root,
          targets: [{ name: "service", url: worker.url, cpuPid }],
          clips: options.latencyClips,
          deadline: options.deadline,
          log,
        }),
      (error) => log(`whisper: latency modes failed: ${error}`),
    );

    const memory = processMemory(cpuPid, baseline);
    const isolate = await readThroughInspector(
      worker.inspectorPort,
      async (inspector) => ({
        wasm: await serviceWasmMemories(inspector, worker.url),
        js: await jsHeap(inspector, listen),
      }),
      (error) => log(`whisper: no inspector reading from the service: ${error}`),
    );
    return {
      cold: { clip: options.cold.id, run: cold },
      runs,
      skipped,
      memory,
      wasmMemoriesBytes: isolate.value?.wasm ?? null,
      jsHeap: isolate.value?.js ?? null,
      inspectorError: isolate.error,
      latency: latency.value,
      latencyError: latency.error,
    };
  } finally {
    await worker.stop();
  }
}
