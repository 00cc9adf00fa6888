/**
 * Bench-only worker (never deployed): runs the production Silero VAD path (src/vad/silero.ts on
 * src/runtime/ort.ts) over clips that scripts/bench.ts posts, and reports how long it took.
 *
 *   GET  /clock            how workerd's clock behaves here (see `probeClock`)
 *   POST /vad?batch=<n>    body: little-endian Float32 samples at 16 kHz, mono. Runs every whole
 *                          512-sample frame with a fresh VAD state and returns probabilities plus
 *                          timed batches of `n` frames.
 *
 * Timing: on Cloudflare, workerd freezes `Date.now()` / `performance.now()` while JS runs (Spectre
 * mitigation) and advances them only across I/O, and the clock has 1 ms resolution. So work is
 * timed in batches of frames, each closed by an I/O boundary (`scheduler.wait(0)`, a timer): the
 * reading after the boundary is the time the batch finished. That is correct whether or not the
 * local clock is frozen; `/clock` reports which case this machine is in.
 */
import { wasmHeapBytes } from "../src/runtime/ort";
import { loadSilero, newVadState, speechProbability, VAD_FRAME_SAMPLES } from "../src/vad/silero";
import type { ClockProbe, VadBatch, VadRun } from "./vad-wire";

/**
 * Clock reads the probe spins through at most: about 0.1–0.3 s of reads here, so the probe ends
 * even when the clock never moves (a deadline loop on a frozen clock would never exit).
 */
const CLOCK_PROBE_MAX_READS = 300_000;
/** Clock steps to observe before the probe stops early (enough to see the resolution). */
const CLOCK_PROBE_STEPS = 8;
/** Empty I/O boundaries timed to measure what one boundary itself costs. */
const BOUNDARY_SAMPLES = 64;
/** 1024 frames × 32 ms = 32.8 s of audio: a batch larger than any sane timing window. */
const MAX_BATCH_FRAMES = 1024;
/** 120 s × 16 000 samples × 4 bytes = 7 680 000 bytes: the longest clip accepted. */
const MAX_BODY_BYTES = 7_680_000;

/** Whether this isolate has loaded the model: the first /vad request also times the cold start. */
let warm = false;

/** Crosses an I/O boundary (a timer) and reads the clock on the far side of it. */
async function tick(): Promise<number> {
  await scheduler.wait(0);
  return performance.now();
}

async function probeClock(): Promise<ClockProbe> {
  let last = performance.now();
  let steps = 0;
  let smallest = Number.POSITIVE_INFINITY;
  let reads = 0;
  while (reads < CLOCK_PROBE_MAX_READS && steps < CLOCK_PROBE_STEPS) {
    const now = performance.now();
    reads += 1;
    if (now !== last) {
      smallest = Math.min(smallest, now - last);
      steps += 1;
      last = now;
    }
  }
  const start = await tick();
  let end = start;
  for (let i = 0; i < BOUNDARY_SAMPLES; i++) end = await tick();
  return {
    advancesWithoutIo: steps > 0,
    resolutionMs: steps > 0 ? smallest : null,
    boundaryMs: (end - start) / BOUNDARY_SAMPLES,
    reads,
  };
}

async function runClip(samples: Float32Array, batchFrames: number): Promise<VadRun> {
  let cold: VadRun["cold"] = null;
  const frameCount = Math.floor(samples.length / VAD_FRAME_SAMPLES);
  const frame = (i: number) => samples.subarray(i * VAD_FRAME_SAMPLES, (i + 1) * VAD_FRAME_SAMPLES);
  const state = newVadState();
  const probabilities: number[] = [];
  let next = 0;
  if (!warm && frameCount > 0) {
    const t0 = await tick();
    await loadSilero();
    const t1 = await tick();
    probabilities.push(await speechProbability(state, frame(0)));
    const t2 = await tick();
    cold = { loadMs: t1 - t0, firstFrameMs: t2 - t1 };
    warm = true;
    next = 1;
  }
  const batches: VadBatch[] = [];
  let t = await tick();
  while (next < frameCount) {
    const start = next;
    const end = Math.min(frameCount, start + batchFrames);
    for (; next < end; next++) probabilities.push(await speechProbability(state, frame(next)));
    const after = await tick();
    batches.push({ start, frames: end - start, ms: after - t });
    t = after;
  }
  return { probabilities, batches, cold, wasmHeapBytes: wasmHeapBytes() ?? null };
}

async function handleVad(request: Request, url: URL): Promise<Response> {
  const batchFrames = Number(url.searchParams.get("batch"));
  if (!Number.isInteger(batchFrames) || batchFrames < 1 || batchFrames > MAX_BATCH_FRAMES) {
    return new Response(`batch must be an integer in 1..${MAX_BATCH_FRAMES}`, { status: 400 });
  }
  const body = await request.arrayBuffer();
  if (body.byteLength % 4 !== 0 || body.byteLength > MAX_BODY_BYTES) {
    return new Response(`body must be Float32 samples, at most ${MAX_BODY_BYTES} bytes`, {
      status: 400,
    });
  }
  return Response.json(await runClip(new Float32Array(body), batchFrames));
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    try {
      if (request.method === "GET" && url.pathname === "/clock") {
        return Response.json(await probeClock());
      }
      if (request.method === "POST" && url.pathname === "/vad")
        return await handleVad(request, url);
      return new Response("not found", { status: 404 });
    } catch (error) {
      // The bench prints this body: a broken run must say why, not just "500".
      const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
      return new Response(detail, { status: 500 });
    }
  },
} satisfies ExportedHandler;
