/**
 * Bench section "opus": what Opus input costs a session in workerd. Three dev clips are encoded
 * by `opusenc` (Debian's opus-tools, which `npm test` installs) as a streaming client would send
 * them: mono at 24 kbit/s, and stereo at 64 kbit/s (what a browser's MediaRecorder sends for a
 * stereo microphone), both in 20-ms frames. The bench worker (vad-worker.ts, POST /opus) runs each
 * stream through the session's own demuxer, decoder and resampler, several times with a fresh
 * decoder each time; the first round of each stream is warm-up.
 *
 * Reported per encoding: decode and resample time per second of audio (median and max over the
 * steady rounds of every clip), the decoder's creation time and its wasm heap (both per session).
 * Node's cost of the same path is in README's "Audio formats" (measured by a script retired
 * after 4a4c9d9).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { readClip, SAMPLE_RATE } from "./clips.ts";
import {
  type BenchContext,
  fmt,
  median,
  ms,
  type Section,
  type SectionResult,
  sum,
} from "./report.ts";
import { startBenchWorker } from "./vad.ts";
import type { OpusRun } from "./worker-common.ts";

const execFileAsync = promisify(execFile);

/** 11.0 + 11.66 + 7.66 s of speech. */
const CLIPS = ["wcpp_jfk.wav", "lhotse_2412_153948_0000.wav", "sb_lj050_0131.wav"] as const;
const ENCODINGS = [
  { label: "mono 24 kbit/s", channels: 1, bitrate: 24 },
  { label: "stereo 64 kbit/s", channels: 2, bitrate: 64 },
] as const;
/** One warm-up round (V8 tiers the decoder's wasm up) and 7 timed ones per stream. */
const WARMUP_ROUNDS = 1;
const ROUNDS = 8;
/** The goal for decoding in workerd. */
const GOAL_DECODE_MS_PER_SECOND = 5;
/**
 * Stereo input: the right channel is the clip 1 ms (16 samples) late, so the channels differ as
 * two microphones' would and the encoder cannot code them as one.
 */
const STEREO_DELAY_SAMPLES = 16;

function toInt16(x: number): number {
  return Math.max(-32768, Math.min(32767, Math.round(x * 32768)));
}

/** The clip as interleaved PCM16 with `channels` channels. */
function inputPcm(samples: Float32Array, channels: number): Int16Array {
  const out = new Int16Array(samples.length * channels);
  for (let i = 0; i < samples.length; i++) {
    out[i * channels] = toInt16(samples[i] ?? 0);
    if (channels === 2) out[i * 2 + 1] = toInt16(samples[i - STEREO_DELAY_SAMPLES] ?? 0);
  }
  return out;
}

/** Raw PCM16 LE in, as opusenc encodes a WAV file of the same samples (the same Ogg bytes). */
async function encode(pcm: Int16Array, channels: number, bitrate: number): Promise<Uint8Array> {
  const dir = await mkdtemp(path.join(tmpdir(), "earshot-bench-opus-"));
  try {
    await writeFile(path.join(dir, "in.pcm"), pcm);
    const args = ["--quiet", "--serial", "1", "--bitrate", String(bitrate), "--framesize", "20"];
    const raw = ["--raw", "--raw-rate", String(SAMPLE_RATE), "--raw-chan", String(channels)];
    const files = [path.join(dir, "in.pcm"), path.join(dir, "out.opus")];
    await execFileAsync("opusenc", [...args, ...raw, ...files]);
    return new Uint8Array(await readFile(path.join(dir, "out.opus")));
  } catch (error) {
    throw new Error(
      `opusenc failed (${String(error)}): the opus section needs Debian's opus-tools ` +
        "(npm test installs it; or apt-get install opus-tools)",
      { cause: error },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface StreamResult {
  clip: string;
  encoding: string;
  bytes: number;
  audioSeconds: number;
  run: OpusRun;
}

const steady = (result: StreamResult) => result.run.rounds.slice(WARMUP_ROUNDS);

function perSecond(results: readonly StreamResult[], pick: "decodeMs" | "resampleMs") {
  return results.flatMap((r) => steady(r).map((round) => round[pick] / r.audioSeconds));
}

const medianAndMax = (values: readonly number[]) => ({
  median: ms(median(values)),
  max: ms(Math.max(...values)),
});

async function run(context: BenchContext): Promise<SectionResult> {
  const clips = await Promise.all(CLIPS.map((file) => readClip(context.evalDir, file)));
  context.log("opus: encoding the clips with opusenc");
  const streams: { clip: string; encoding: string; seconds: number; ogg: Uint8Array }[] = [];
  for (const encoding of ENCODINGS) {
    for (const clip of clips) {
      const pcm = inputPcm(clip.samples, encoding.channels);
      streams.push({
        clip: clip.file,
        encoding: encoding.label,
        seconds: clip.samples.length / SAMPLE_RATE,
        ogg: await encode(pcm, encoding.channels, encoding.bitrate),
      });
    }
  }
  context.log("opus: starting the bench worker in workerd");
  const worker = await startBenchWorker(context.root);
  const results: StreamResult[] = [];
  try {
    for (const stream of streams) {
      if (Date.now() > context.deadline) {
        context.log(`opus: time budget reached after ${results.length} streams`);
        break;
      }
      const result = await worker.opus(stream.ogg, ROUNDS);
      // The decoder must give back the clip's length (Opus pads by at most a frame): a decode
      // that produced nothing would otherwise look very fast.
      const decodedSeconds = result.samples48k / 48_000;
      if (Math.abs(decodedSeconds - stream.seconds) > 0.1) {
        throw new Error(
          `${stream.clip} (${stream.encoding}): decoded ${decodedSeconds} s of ${stream.seconds} s`,
        );
      }
      results.push({
        clip: stream.clip,
        encoding: stream.encoding,
        bytes: stream.ogg.byteLength,
        audioSeconds: decodedSeconds,
        run: result,
      });
    }
  } finally {
    await worker.dispose();
  }

  const byEncoding = ENCODINGS.map(({ label, channels, bitrate }) => {
    const mine = results.filter((r) => r.encoding === label);
    const decode = perSecond(mine, "decodeMs");
    const resample = perSecond(mine, "resampleMs");
    const create = mine.flatMap((r) => steady(r).map((round) => round.createMs));
    return {
      encoding: label,
      channels,
      bitrate_kbps: bitrate,
      frame_ms: 20,
      streams: mine.length,
      audio_seconds: ms(sum(mine.map((r) => r.audioSeconds))),
      steady_rounds: decode.length,
      decode_ms_per_audio_second: medianAndMax(decode),
      resample_ms_per_audio_second: medianAndMax(resample),
      // Mostly under the clock's 1 ms step, so a median reads 0: the mean says more.
      decoder_create_ms: { mean: ms(sum(create) / create.length), max: ms(Math.max(...create)) },
      decoder_heap_bytes: Math.max(...mine.map((r) => r.run.heapBytes)),
    };
  });
  const json = {
    clips: CLIPS,
    method:
      `POST /opus to tools/load/bench/vad-worker.ts in workerd: the session's OggOpusDemuxer, ` +
      `OpusStreamDecoder (fresh per round) and StreamingResampler (48 -> 16 kHz); ` +
      `${ROUNDS} rounds per stream, the first ${WARMUP_ROUNDS} warm-up; each phase closed by ` +
      `an I/O boundary (await scheduler.wait(0)) and timed with performance.now() across it`,
    goal_decode_ms_per_audio_second: GOAL_DECODE_MS_PER_SECOND,
    encodings: byEncoding,
    streams: results.map((r) => ({
      clip: r.clip,
      encoding: r.encoding,
      ogg_bytes: r.bytes,
      packets: r.run.packets,
      channels: r.run.channels,
      audio_seconds: ms(r.audioSeconds),
      samples_16k: r.run.samples16k,
      rounds: r.run.rounds,
    })),
  };
  const cells = (format: (e: (typeof byEncoding)[number]) => string) => byEncoding.map(format);
  const table = {
    columns: ["Opus in workerd, per second of audio", ...ENCODINGS.map((e) => e.label)],
    rows: [
      [
        `decode, median (goal <= ${GOAL_DECODE_MS_PER_SECOND} ms)`,
        ...cells((e) => `${fmt(e.decode_ms_per_audio_second.median, 2)} ms`),
      ],
      ["decode, max", ...cells((e) => `${fmt(e.decode_ms_per_audio_second.max, 2)} ms`)],
      [
        "resample 48 -> 16 kHz, median",
        ...cells((e) => `${fmt(e.resample_ms_per_audio_second.median, 2)} ms`),
      ],
      [
        "decoder creation (per session), mean",
        ...cells((e) => `${fmt(e.decoder_create_ms.mean, 2)} ms`),
      ],
      [
        "decoder wasm heap (per session)",
        ...cells((e) => `${fmt(e.decoder_heap_bytes / 1024)} KiB`),
      ],
      ["audio timed", ...cells((e) => `${e.steady_rounds} x ~10 s`)],
    ],
  };
  return { json, table };
}

export const opusSection: Section = {
  name: "opus",
  title: "Opus input (Ogg/Opus from opusenc) through the session's decoder, in workerd",
  run,
};
