/**
 * Accuracy in every audio format a client sends (workerd, real models; the "whisper" project).
 * Clients send what they have: telephony 8 kHz G.711 µ-law or A-law, desktop capture 44.1 or
 * 48 kHz, some SDKs 32-bit floats, browsers and apps Ogg/Opus. The session decodes and resamples
 * to Whisper's 16 kHz (src/audio/pcm-decoder.ts, resampler.ts, opus-decoder.ts); a broken
 * filter, a wrong rate, a codec table error or a lossy decode shows as lost words here, where the
 * unit tests of each piece (and the exactness tests with the fake transcriber,
 * session-formats.test.ts and session-opus.test.ts) would not show what Whisper makes of it.
 *
 * Each clip is streamed at 16 kHz linear16 (the reference) and in each other format, in one run,
 * and each format may lose at most its measured budget of words more than the reference (a
 * ratchet: lower it when a change does better). 8 kHz keeps only the band below 4 kHz, as a
 * telephone does: Whisper tiny loses a little there. A µ-law table with its step halved (a
 * mutation tried) cost JFK a word and failed this test while µ-law read JFK's "ask not" right; it
 * reads the borderline "is not" since its first phrase's text comes from greedy decoding, and
 * the halved step now passes here: the table's own test (pcm-decoder.test.ts) fails on it.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { wordErrorRate } from "../tools/eval/wer";
import { finalText } from "./helpers/accuracy";
import { floatToAlaw, floatToFloat32, floatToMulaw, floatToPcm16, resample } from "./helpers/audio";
import { frames, TestClient } from "./helpers/client";
import { manifest, oggOpusFixture, pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";

beforeAll(seedModels);

/** Trailing silence after each clip, so its last utterance ends by endpointing. */
const TRAILING_SILENCE_SECONDS = 1.5;

interface Format {
  name: string;
  query: string;
  /** The clip (16 kHz samples, with trailing silence) as this format's bytes, and its seconds. */
  bytes: (samples: Float32Array, clipId: string) => Promise<Uint8Array>;
  /** Errors allowed beyond the 16-kHz reference, per clip id (0 if absent): the measured ones. */
  extraErrors: Readonly<Record<string, number>>;
  /**
   * The bound for a format that keeps the whole band: WER over all clips at most this much
   * above the reference's. null for 8-kHz telephony, which loses the band above 4 kHz.
   */
  pooledWerOver: number | null;
}

/** A raw format: the clip resampled to `rate` and encoded sample by sample. */
function raw(rate: number, encode: (samples: Float32Array) => Uint8Array) {
  return async (samples: Float32Array) => encode(resample(samples, 16_000, rate));
}

const FORMATS: Format[] = [
  {
    name: "8 kHz µ-law",
    query: "encoding=mulaw&sample_rate=8000",
    bytes: raw(8000, floatToMulaw),
    // "And Mr. John Dashwood…" loses its first "And" at 8 kHz. (JFK's "ask not" is Whisper's
    // borderline "is not" here as at 16 kHz, with continuation off as deployed: no extra error.)
    extraErrors: { psx_librivox_0870: 1 },
    pooledWerOver: null,
  },
  {
    name: "8 kHz A-law",
    query: "encoding=alaw&sample_rate=8000",
    bytes: raw(8000, floatToAlaw),
    // The same "And", and JFK's "ask what you can do" heard as "and what you can do".
    extraErrors: { psx_librivox_0870: 1, wcpp_jfk: 1 },
    pooledWerOver: null,
  },
  {
    name: "44.1 kHz linear16",
    query: "encoding=linear16&sample_rate=44100",
    bytes: raw(44_100, floatToPcm16),
    // JFK's borderline "is not" (for "ask not") as at 16 kHz; with continuation on, 16 kHz read
    // it right and this needed one error more (measured 2026-12-06: none now).
    extraErrors: {},
    pooledWerOver: 0.02,
  },
  {
    name: "16 kHz linear32",
    query: "encoding=linear32&sample_rate=16000",
    bytes: raw(16_000, floatToFloat32),
    // The floats are the clip before 16-bit rounding; JFK reads as at 16 kHz.
    extraErrors: {},
    pooledWerOver: 0.02,
  },
  {
    // No encoding or sample_rate: the container is detected. opusenc's stream of the clip alone
    // (no trailing silence): its last utterance ends at CloseStream.
    name: "Ogg/Opus 24 kbit/s",
    query: "language=en",
    bytes: (_, clipId) => oggOpusFixture(clipId),
    // JFK as at 16 kHz (with continuation on it once read "is not not").
    extraErrors: {},
    pooledWerOver: 0.02,
  },
];

const CLIPS = ["wcpp_jfk", "psx_librivox_0870", "sb_spk1_snt1"];

/** Streams `bytes` (holding `seconds` of audio) in 100-ms frames and returns the finals' text. */
async function stream(bytes: Uint8Array, seconds: number, query: string) {
  const client = await TestClient.open(`?endpointing=500&${query}`);
  const frameBytes = Math.max(1, Math.round((bytes.length / seconds) * 0.1));
  for (const frame of frames(bytes, frameBytes)) client.sendAudio(frame);
  const { closed } = await client.finish();
  expect(closed.code).toBe(1000);
  return finalText(client);
}

describe("every audio format", () => {
  it("loses no more words in µ-law, A-law, 44.1 kHz, linear32 and Ogg/Opus than budgeted over 16 kHz", {
    timeout: 400_000,
  }, async () => {
    const rows = (await manifest("dev")).filter((r) => CLIPS.includes(r.id));
    expect(rows.map((r) => r.id).sort()).toEqual([...CLIPS].sort());
    const over: string[] = [];
    const words = rows.reduce((sum, row) => sum + row.reference.split(/\s+/).length, 0);
    let baseErrors = 0;
    const formatErrors = new Map<string, number>();
    for (const row of rows) {
      const clip = pcm16ToFloat((await wavFixture(row.file)).pcm);
      const samples = new Float32Array(clip.length + TRAILING_SILENCE_SECONDS * 16_000);
      samples.set(clip);
      const seconds = samples.length / 16_000;
      const reference = await stream(
        floatToPcm16(samples),
        seconds,
        "encoding=linear16&sample_rate=16000",
      );
      const base = wordErrorRate(row.reference, reference).errors;
      baseErrors += base;
      console.log(`${row.id} 16 kHz: ${base} errors, "${reference}"`);
      for (const format of FORMATS) {
        const text = await stream(await format.bytes(samples, row.id), seconds, format.query);
        const errors = wordErrorRate(row.reference, text).errors;
        formatErrors.set(format.name, (formatErrors.get(format.name) ?? 0) + errors);
        console.log(`${row.id} ${format.name}: ${errors} errors, "${text}"`);
        if (errors > base + (format.extraErrors[row.id] ?? 0))
          over.push(`${row.id} ${format.name}: ${base} → ${errors}: "${text}"`);
      }
    }
    for (const format of FORMATS) {
      const wer = (formatErrors.get(format.name) ?? 0) / words;
      console.log(
        `${format.name}: WER ${wer.toFixed(3)} against ${(baseErrors / words).toFixed(3)}`,
      );
      if (format.pooledWerOver !== null && wer > baseErrors / words + format.pooledWerOver)
        over.push(`${format.name}: WER ${wer.toFixed(3)} over ${words} words`);
    }
    expect(over).toEqual([]);
  });
});
