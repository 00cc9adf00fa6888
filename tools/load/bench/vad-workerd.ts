/**
 * The workerd side of the "vad" bench section: starts tools/load/bench/vad-worker.ts with
 * wrangler's programmatic API (on 127.0.0.1, no inspector, no file watching) and drives it over
 * HTTP.
 */
import path from "node:path";
import type { Clip } from "./clips.ts";
import { childrenNamed, type Sched, schedByPid, schedSpentByPid } from "./cpu.ts";
import type { ClockProbe, OpusRun, VadRun } from "./vad-wire.ts";

/** One clip through the worker takes seconds at worst, even cold; 60 s means it is stuck. */
const REQUEST_TIMEOUT_MS = 60_000;

export interface BenchWorker {
  probeClock: () => Promise<ClockProbe>;
  /**
   * Every clip once, each with fresh VAD state. `spent` is what each workerd process spent on it:
   * wrangler runs two (its proxy worker and the bench worker) and does not say which is which.
   */
  round: (clips: readonly Clip[]) => Promise<{ runs: VadRun[]; spent: Map<number, Sched> }>;
  /** An Ogg/Opus stream through the session's Opus path, `rounds` times (POST /opus). */
  opus: (ogg: Uint8Array, rounds: number) => Promise<OpusRun>;
  dispose: () => Promise<void>;
}

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

/** The part of wrangler's worker handle used here (its fetch is miniflare's dispatchFetch). */
interface Fetcher {
  fetch: (
    url: string,
    init?: { method: string; body: Uint8Array },
  ) => Promise<{ ok: boolean; status: number; text: () => Promise<string> }>;
}

async function fetchJson(
  worker: Fetcher,
  url: string,
  body?: Float32Array | Uint8Array,
): Promise<unknown> {
  const init = body
    ? { method: "POST", body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) }
    : undefined;
  const response = await withTimeout(worker.fetch(url, init), url);
  const text = await response.text();
  if (!response.ok) throw new Error(`bench worker ${url}: HTTP ${response.status}\n${text}`);
  return JSON.parse(text);
}

export async function startBenchWorker(root: string, batchFrames: number): Promise<BenchWorker> {
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
  // The bench worker's own workerd starts behind the proxy and is up once a request has been
  // answered, so the processes are looked up after the first one.
  let workerdPids: number[] | null = null;

  return {
    async probeClock() {
      const probe = (await fetchJson(worker, "http://bench/clock")) as ClockProbe;
      workerdPids ??= childrenNamed(process.pid, "workerd");
      return probe;
    },
    async round(clips) {
      workerdPids ??= childrenNamed(process.pid, "workerd");
      const before = schedByPid(workerdPids);
      const runs: VadRun[] = [];
      for (const clip of clips) {
        const url = `http://bench/vad?batch=${batchFrames}`;
        const run = (await fetchJson(worker, url, clip.samples)) as VadRun;
        if (!Array.isArray(run?.probabilities) || !Array.isArray(run.batches)) {
          throw new Error(`bench worker returned no VAD run for ${clip.file}`);
        }
        runs.push(run);
      }
      return { runs, spent: schedSpentByPid(before, schedByPid(workerdPids)) };
    },
    async opus(ogg, rounds) {
      const run = (await fetchJson(worker, `http://bench/opus?rounds=${rounds}`, ogg)) as OpusRun;
      if (!Array.isArray(run?.rounds) || run.rounds.length !== rounds) {
        throw new Error("bench worker returned no Opus run");
      }
      return run;
    },
    dispose: () => worker.dispose(),
  };
}
