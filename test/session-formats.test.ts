/**
 * Every accepted audio format reaches the transcriber as exactly the audio it encodes. The fake
 * transcriber's words fingerprint every sample it is fed (with offsets), so a format test sends a
 * clip in that format and the same samples as raw linear16, and compares the transcripts for
 * equality. The encoded streams are built here from the 16-bit dev clips (nothing binary is
 * committed); each test picks samples its format represents exactly, so equality is exact.
 */
import { describe, expect, it } from "vitest";
import { type ServerJson, sha256Hex, TestClient, withoutIds } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { seededRandom } from "./helpers/random";

const CLIP = "sb_spk1_snt1.wav";
const COMMON = "interim_results=true&vad_events=true";

/** Splits into frames of 1 to 2000 bytes from a seeded generator (cuts through samples). */
function frames(bytes: Uint8Array, seed: number): Uint8Array[] {
  const random = seededRandom(seed);
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.byteLength; ) {
    const size = 1 + Math.floor(random() * 2000);
    out.push(bytes.subarray(at, at + size));
    at += size;
  }
  return out;
}

async function transcribe(
  query: string,
  stream: Uint8Array,
  seed = 1,
): Promise<{ messages: unknown[]; metadata: ServerJson }> {
  const client = await TestClient.open(`?${query}&${COMMON}`);
  for (const frame of frames(stream, seed)) client.sendAudio(frame);
  const { metadata, closed } = await client.finish();
  expect(closed.code).toBe(1000);
  // Metadata describes the bytes the client sent, whatever they encode.
  expect(metadata.sha256).toBe(await sha256Hex(stream));
  const messages = client.messages.filter((m) => m.type !== "Metadata");
  expect(messages.filter((m) => m.type === "Results").length).toBeGreaterThan(0);
  return { messages: withoutIds(messages), metadata };
}

function int16s(pcm: Uint8Array): Int16Array {
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  return Int16Array.from({ length: pcm.byteLength >> 1 }, (_, i) => view.getInt16(i * 2, true));
}

function toPcm16(samples: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(samples.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < samples.length; i++) view.setInt16(i * 2, samples[i] ?? 0, true);
  return out;
}

/**
 * G.711 A-law compression written from the standard (sign, then the segment whose range holds
 * the 13-bit magnitude, then 4 bits of step), independent of the decoder's table.
 */
function alawCompress(sample: number): number {
  const sign = sample >= 0 ? 0x80 : 0;
  let magnitude = Math.min(sample >= 0 ? sample : -sample - 1, 32767) >> 3; // 12-bit
  let segment = 0;
  while (magnitude >= 32 && segment < 7) {
    magnitude >>= 1;
    segment++;
  }
  const step = segment === 0 ? magnitude >> 1 : (magnitude >> 1) & 0x0f;
  return (sign | (segment << 4) | step) ^ 0x55;
}

describe("encoding=alaw", () => {
  it("transcribes exactly the samples its codes stand for", async () => {
    const { pcm } = await wavFixture(CLIP);
    const codes = Uint8Array.from(int16s(pcm), alawCompress);
    // What linear16 carries: each code's value from the A-law expansion (independent reference in
    // test/pcm-decoder.test.ts), which is a 16-bit integer, so the two streams are the same audio.
    const expanded = Int16Array.from(codes, (code) => alawExpand(code));
    const alaw = await transcribe("encoding=alaw&sample_rate=8000", codes, 3);
    const linear = await transcribe("encoding=linear16&sample_rate=8000", toPcm16(expanded), 4);
    expect(alaw.messages).toEqual(linear.messages);
    expect(alaw.metadata.duration).toBeCloseTo(codes.byteLength / 8000, 3);
  });
});

/** A-law expansion from G.711's definition (see alawCompress). */
function alawExpand(code: number): number {
  const toggled = code ^ 0x55;
  const segment = (toggled >> 4) & 7;
  const step = toggled & 0x0f;
  const magnitude13 = segment === 0 ? step * 2 + 1 : (step * 2 + 33) * 2 ** (segment - 1);
  return (toggled & 0x80 ? 1 : -1) * magnitude13 * 8;
}

describe("encoding=linear32", () => {
  it("transcribes float samples exactly as the 16-bit samples they equal", async () => {
    const { pcm } = await wavFixture(CLIP);
    const samples = int16s(pcm);
    const floats = new Uint8Array(samples.length * 4);
    const view = new DataView(floats.buffer);
    samples.forEach((s, i) => {
      view.setFloat32(i * 4, s / 32768, true);
    });
    const float = await transcribe("encoding=linear32&sample_rate=16000", floats, 5);
    const linear = await transcribe("encoding=linear16&sample_rate=16000", pcm, 6);
    expect(float.messages).toEqual(linear.messages);
    expect(float.metadata.duration).toBeCloseTo(samples.length / 16000, 3);
  });
});
