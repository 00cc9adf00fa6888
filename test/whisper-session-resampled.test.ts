/**
 * Accuracy on audio the session resamples (workerd, real models; the "whisper" project). Clients
 * send what they have: telephony sends 8 kHz G.711 µ-law, desktop capture 44.1 or 48 kHz. The
 * session decodes and resamples to Whisper's 16 kHz (src/session/pcm-decoder.ts, resampler.ts);
 * a broken filter, a wrong rate or a µ-law table error shows as lost words here, where the unit
 * tests of each piece would not show what Whisper makes of it.
 *
 * Each clip is streamed at 16 kHz linear16 (the reference) and in each other format, in one run,
 * and each format may lose at most its measured budget of words more than the reference (a
 * ratchet: lower it when a change does better). 8 kHz keeps only the band below 4 kHz, as a
 * telephone does: Whisper tiny loses a little there. A µ-law table with its step halved (a
 * mutation tried) cost JFK a word and failed this test.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { finalText } from "./helpers/accuracy";
import { floatToMulaw, floatToPcm16, resample } from "./helpers/audio";
import { frames, TestClient } from "./helpers/client";
import { manifest, pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";
import { wordErrorRate } from "./helpers/wer";

beforeAll(seedModels);

interface Format {
  name: string;
  query: string;
  rate: number;
  encode: (samples: Float32Array) => Uint8Array;
  /** Errors allowed beyond the 16-kHz reference, per clip id (0 if absent): the measured ones. */
  extraErrors: Readonly<Record<string, number>>;
}

const FORMATS: Format[] = [
  {
    name: "8 kHz µ-law",
    query: "encoding=mulaw&sample_rate=8000",
    rate: 8000,
    encode: floatToMulaw,
    // "And Mr. John Dashwood…" loses its first "And" at 8 kHz.
    extraErrors: { psx_librivox_0870: 1 },
  },
  {
    name: "44.1 kHz linear16",
    query: "encoding=linear16&sample_rate=44100",
    rate: 44_100,
    encode: floatToPcm16,
    extraErrors: {},
  },
];

const CLIPS = ["wcpp_jfk", "psx_librivox_0870", "sb_spk1_snt1"];

/** Streams `samples` (at `rate`) encoded by `format`, with 1.5 s of silence after, in 100-ms frames. */
async function stream(
  samples: Float32Array,
  rate: number,
  query: string,
  encode: Format["encode"],
) {
  const withSilence = new Float32Array(samples.length + Math.round(1.5 * rate));
  withSilence.set(samples);
  const bytes = encode(withSilence);
  const client = await TestClient.open(`?endpointing=500&${query}`);
  const frameBytes = Math.round((bytes.length / withSilence.length) * rate * 0.1);
  for (const frame of frames(bytes, frameBytes)) client.sendAudio(frame);
  const { closed } = await client.finish();
  expect(closed.code).toBe(1000);
  return finalText(client);
}

describe("resampled audio", () => {
  it("loses no more words at 8 kHz µ-law and at 44.1 kHz than budgeted over 16 kHz", {
    timeout: 300_000,
  }, async () => {
    const rows = (await manifest("dev")).filter((r) => CLIPS.includes(r.id));
    expect(rows.map((r) => r.id).sort()).toEqual([...CLIPS].sort());
    const over: string[] = [];
    for (const row of rows) {
      const samples = pcm16ToFloat((await wavFixture(row.file)).pcm);
      const reference = await stream(
        samples,
        16_000,
        "encoding=linear16&sample_rate=16000",
        floatToPcm16,
      );
      const base = wordErrorRate(row.reference, reference).errors;
      console.log(`${row.id} 16 kHz: ${base} errors, "${reference}"`);
      for (const format of FORMATS) {
        const text = await stream(
          resample(samples, 16_000, format.rate),
          format.rate,
          format.query,
          format.encode,
        );
        const errors = wordErrorRate(row.reference, text).errors;
        console.log(`${row.id} ${format.name}: ${errors} errors, "${text}"`);
        if (errors > base + (format.extraErrors[row.id] ?? 0))
          over.push(`${row.id} ${format.name}: ${base} → ${errors}: "${text}"`);
      }
    }
    expect(over).toEqual([]);
  });
});
