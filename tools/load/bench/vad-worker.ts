/**
 * Bench-only worker (never deployed): runs the production Silero VAD path (src/vad/silero.ts on
 * src/runtime/ort.ts) and the production Opus input path over clips that vad.ts and opus.ts post,
 * and reports how long they took.
 *
 *   GET  /clock            how workerd's clock behaves here (see `probeClock`)
 *   POST /vad?batch=<n>    body: little-endian Float32 samples at 16 kHz, mono. Runs every whole
 *                          512-sample frame with a fresh VAD state and returns probabilities plus
 *                          timed batches of `n` frames.
 *   POST /opus?rounds=<n>  body: an Ogg/Opus stream. Demuxes it once (src/audio/ogg-opus-demuxer),
 *                          then `n` times decodes every packet with a fresh decoder
 *                          (src/audio/opus-decoder) and resamples to 16 kHz (the session's
 *                          resampler), in groups of `OPUS_GROUP_PACKETS`, each phase timed.
 *
 * Frames are timed in batches, each closed by an I/O boundary, because workerd's clock may stand
 * still while JS runs (worker-common.ts); `/clock` reports whether it does here.
 */

import { OggOpusDemuxer } from "../../../src/audio/ogg-opus-demuxer";
import { OPUS_RATE, OpusStreamDecoder } from "../../../src/audio/opus-decoder";
import { DEFAULT_OUTPUT_RATE, StreamingResampler } from "../../../src/audio/resampler";
import { wasmHeapBytes } from "../../../src/runtime/ort";
import {
  loadSilero,
  newVadState,
  speechProbability,
  VAD_FRAME_SAMPLES,
} from "../../../src/vad/silero";
import {
  type ClockProbe,
  float32Body,
  type OpusRound,
  type OpusRun,
  router,
  tick,
  type VadBatch,
  type VadRun,
} from "./worker-common";

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
/** Rounds over one Opus stream at most: 20 × a 12-s clip stays within a second of work. */
const MAX_OPUS_ROUNDS = 20;
/**
 * Packets decoded per call: 12 × 20 ms = 240 ms, about what one MediaRecorder blob (250-ms
 * timeslice) or one socket message of a streaming client holds, which is how a session calls the
 * decoder.
 */
const OPUS_GROUP_PACKETS = 12;

/** Whether this isolate has loaded the model: the first /vad request also times the cold start. */
let warm = false;

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

/** The query parameter `name`: an integer in 1..`max`. */
function countParam(url: URL, name: string, max: number): number {
  const value = Number(url.searchParams.get(name));
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new Error(`${name} must be an integer in 1..${max}`);
  }
  return value;
}

async function opusRound(packets: readonly Uint8Array[], demuxer: OggOpusDemuxer) {
  const head = demuxer.head;
  if (head === null) throw new Error("the stream has no OpusHead");
  const t0 = await tick();
  const decoder = await OpusStreamDecoder.create(head);
  const t1 = await tick();
  const decoded: Float32Array[] = [];
  for (let at = 0; at < packets.length; at += OPUS_GROUP_PACKETS) {
    // Copied: the decoder's output views its own heap, which the next call overwrites.
    decoded.push(decoder.decode(packets.slice(at, at + OPUS_GROUP_PACKETS)).slice());
  }
  const t2 = await tick();
  const resampler = new StreamingResampler(OPUS_RATE, DEFAULT_OUTPUT_RATE);
  let samples16k = 0;
  for (const block of decoded) samples16k += resampler.process(block).length;
  samples16k += resampler.flush().length;
  const t3 = await tick();
  const heapBytes = decoder.heapBytes;
  decoder.free();
  const round: OpusRound = { createMs: t1 - t0, decodeMs: t2 - t1, resampleMs: t3 - t2 };
  const samples48k = decoded.reduce((sum, block) => sum + block.length, 0);
  return { round, samples48k, samples16k, heapBytes };
}

async function opus(request: Request, url: URL): Promise<Response> {
  const rounds = countParam(url, "rounds", MAX_OPUS_ROUNDS);
  const demuxer = new OggOpusDemuxer();
  const packets = demuxer.push(new Uint8Array(await request.arrayBuffer()));
  const run: OpusRun = {
    packets: packets.length,
    channels: demuxer.head?.channels ?? 0,
    samples48k: 0,
    samples16k: 0,
    rounds: [],
    heapBytes: 0,
  };
  for (let i = 0; i < rounds; i++) {
    const one = await opusRound(packets, demuxer);
    run.rounds.push(one.round);
    run.samples48k = one.samples48k;
    run.samples16k = one.samples16k;
    run.heapBytes = one.heapBytes;
  }
  return Response.json(run);
}

export default {
  fetch: router({
    "GET /clock": async () => Response.json(await probeClock()),
    "POST /vad": async (request, url) => {
      const batchFrames = countParam(url, "batch", MAX_BATCH_FRAMES);
      return Response.json(await runClip(await float32Body(request, MAX_BODY_BYTES), batchFrames));
    },
    "POST /opus": opus,
  }),
} satisfies ExportedHandler;
