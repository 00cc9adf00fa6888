/**
 * The real service under test: src/index.ts with wrangler.toml in workerd (startService in
 * scripts/lib/dev-worker.ts), EARSHOT_TRANSCRIBER=whisper, its own persistence folder (models seeded into
 * its R2, D1 migrated with the demo account), driven one session at a time at real-time pace
 * (bench/whisper-session.ts) so that no session's latency includes another's work.
 *
 * Order: a readiness request (the isolate exists, nothing loaded: the RSS baseline), a cold session
 * (its handshake loads the models: the cold-load figure; its clip also warms V8 up), then every
 * clip once. Memory last: RSS of the worker's workerd, then — with DevTools attached, which would
 * slow wasm down, hence last — ORT's heap and V8's heap of the isolate (scripts/lib/inspector.ts).
 */

import { resetPeakRss, rss, startService } from "../scripts/lib/dev-worker.ts";
import { type HeapUsage, Inspector } from "../scripts/lib/inspector.ts";
import { type Sched, schedByPid, schedSpentByPid } from "./cpu.ts";
import { type LatencyClip, type LatencyModeResult, runLatencyModes } from "./whisper-latency.ts";
import { runSession, type SessionRun } from "./whisper-session.ts";

export interface ServiceClip {
  id: string;
  /** PCM16 LE, 16 kHz mono. */
  pcm: Uint8Array;
}

export interface ServiceMemory {
  /** The worker's workerd: RSS after the readiness request, at the end, and the peak between. */
  pid: number;
  baselineBytes: number;
  endBytes: number;
  peakBytes: number;
  peakSinceBaseline: boolean;
}

export interface ServiceRun {
  cold: { clip: string; run: SessionRun };
  runs: { id: string; run: SessionRun }[];
  /** Clips not run because the section's time budget ran out. */
  skipped: string[];
  cpuPid: number | null;
  memory: ServiceMemory | null;
  /** Every WebAssembly.Memory in the isolate at the end (ORT's heap), bytes. */
  wasmMemoriesBytes: number[] | null;
  jsHeap: { atEnd: HeapUsage; afterGc: HeapUsage } | null;
  inspectorError: string | null;
  /** End of speech → final in the finalize and endpointing modes (bench/whisper-latency.ts). */
  latency: LatencyModeResult[] | null;
  latencyError: string | null;
}

export interface ServiceOptions {
  root: string;
  persistTo: string;
  key: string;
  cold: ServiceClip;
  clips: ServiceClip[];
  /** Epoch ms after which no further clip is started. */
  deadline: number;
  /** Speech clips run again in each latency mode, after `clips`. */
  latencyClips: LatencyClip[];
  log: (message: string) => void;
}

/** The pid that spent the most CPU between two readings: the worker's workerd, not the proxy. */
function busiest(spent: Map<number, Sched>): number | null {
  let best: number | null = null;
  for (const [pid, value] of spent) {
    if (best === null || value.cpuMs > (spent.get(best)?.cpuMs ?? 0)) best = pid;
  }
  return best;
}

/** Seconds of audio in a clip's PCM16 bytes. */
const seconds = (pcm: Uint8Array) => pcm.byteLength / 2 / 16_000;

export async function runService(options: ServiceOptions): Promise<ServiceRun> {
  const { log } = options;
  // EARSHOT_BENCH_EARLY_FINALS=off measures the service without early finals (on by default).
  const worker = await startService(options.root, options.persistTo, {
    EARSHOT_EARLY_FINALS: process.env.EARSHOT_BENCH_EARLY_FINALS === "off" ? "off" : "on",
  });
  try {
    // The worker's own workerd starts behind wrangler's proxy and runs the module once a request
    // has been answered: then the isolate exists with nothing loaded.
    const ready = await fetch(`${worker.url}/v1/listen`, { signal: AbortSignal.timeout(30_000) });
    await ready.body?.cancel();
    const pids = worker.workerdPids();
    const baseline = new Map(pids.map((pid) => [pid, rss(pid)?.rssBytes ?? Number.NaN]));
    const peakReset = pids.map(resetPeakRss).every(Boolean);

    log(`whisper: cold session (${options.cold.id}, ${seconds(options.cold.pcm).toFixed(1)} s)`);
    const before = schedByPid(pids);
    const cold = await runSession(worker.url, options.key, options.cold.pcm, null);
    const cpuPid = busiest(schedSpentByPid(before, schedByPid(pids)));
    log(`whisper: cold handshake ${Math.round(cold.handshakeMs)} ms`);

    const runs: ServiceRun["runs"] = [];
    const skipped: string[] = [];
    for (const clip of options.clips) {
      if (Date.now() + seconds(clip.pcm) * 1000 > options.deadline) {
        skipped.push(clip.id);
        continue;
      }
      const run = await runSession(worker.url, options.key, clip.pcm, cpuPid);
      runs.push({ id: clip.id, run });
      const texts = run.finals.map((f) => f.transcript).filter((t) => t !== "");
      log(`whisper: ${clip.id} → ${JSON.stringify(texts.join(" "))}`);
    }
    if (skipped.length > 0) log(`whisper: time budget reached, skipped ${skipped.join(", ")}`);

    let latency: LatencyModeResult[] | null = null;
    let latencyError: string | null = null;
    try {
      latency = await runLatencyModes({
        root: options.root,
        targets: [{ name: "service", url: worker.url, cpuPid }],
        key: options.key,
        clips: options.latencyClips,
        deadline: options.deadline,
        log,
      });
    } catch (error) {
      latencyError = error instanceof Error ? error.message : String(error);
      log(`whisper: latency modes failed: ${latencyError}`);
    }

    let memory: ServiceMemory | null = null;
    const end = cpuPid === null ? null : rss(cpuPid);
    if (cpuPid !== null && end !== null) {
      memory = {
        pid: cpuPid,
        baselineBytes: baseline.get(cpuPid) ?? Number.NaN,
        endBytes: end.rssBytes,
        peakBytes: end.hwmBytes,
        peakSinceBaseline: peakReset,
      };
    }

    let wasmMemoriesBytes: number[] | null = null;
    let jsHeap: ServiceRun["jsHeap"] = null;
    let inspectorError: string | null = null;
    try {
      const inspector = await Inspector.connect(worker.inspectorPort);
      try {
        // A session that opens and closes makes the worker log, which names its context.
        const poke = async () => {
          await runSession(worker.url, options.key, new Uint8Array(0), null);
        };
        wasmMemoriesBytes = await inspector.wasmMemories(poke);
        const atEnd = await inspector.heapUsage();
        await inspector.collectGarbage(async () => {
          const answer = await fetch(`${worker.url}/v1/listen`, {
            signal: AbortSignal.timeout(30_000),
          });
          await answer.body?.cancel();
        });
        jsHeap = { atEnd, afterGc: await inspector.heapUsage() };
      } finally {
        inspector.close();
      }
    } catch (error) {
      inspectorError = error instanceof Error ? error.message : String(error);
      log(`whisper: no inspector reading from the service: ${inspectorError}`);
    }
    return {
      cold: { clip: options.cold.id, run: cold },
      runs,
      skipped,
      cpuPid,
      memory,
      wasmMemoriesBytes,
      jsHeap,
      inspectorError,
      latency,
      latencyError,
    };
  } finally {
    await worker.stop();
  }
}
