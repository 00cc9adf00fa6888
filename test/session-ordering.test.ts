/**
 * Ordering under bursts: hundreds of frames of mixed sizes, odd byte counts included, fired without
 * waiting. The session must receive exactly the bytes sent, in order (Metadata's SHA-256 and
 * duration), and hand the transcriber exactly the same audio as when the clip arrives in a few
 * large frames (the fake transcriber's words fingerprint every sample it was fed, with offsets).
 */
import { describe, expect, it } from "vitest";
import { seededRandom } from "../tools/eval/random";
import { type ServerJson, sha256Hex, TestClient, withoutIds } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";

const Q = "?encoding=linear16&sample_rate=16000&interim_results=true&vad_events=true";

/** Splits into sizes from 1 byte to 1280 bytes (40 ms), odd and even, from a seeded generator. */
function burst(bytes: Uint8Array, seed: number): Uint8Array[] {
  const random = seededRandom(seed);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const kind = random();
    const size = kind < 0.1 ? 1 + Math.floor(random() * 7) : 1 + Math.floor(random() * 1280);
    out.push(bytes.subarray(at, at + size));
    at += size;
  }
  return out;
}

async function run(
  frames: Uint8Array[],
): Promise<{ messages: ServerJson[]; metadata: ServerJson }> {
  const client = await TestClient.open(Q);
  for (const frame of frames) client.sendAudio(frame);
  const { metadata, closed } = await client.finish();
  expect(closed.code).toBe(1000);
  return { messages: client.messages.filter((m) => m.type !== "Metadata"), metadata };
}

describe("a burst of frames", () => {
  it("arrives whole and in order, and is transcribed exactly as the same audio in large frames", async () => {
    const { pcm } = await wavFixture("wcpp_jfk.wav"); // 11 s
    const frames = burst(pcm, 7);
    expect(frames.length).toBeGreaterThanOrEqual(500);
    expect(frames.some((f) => f.byteLength % 2 === 1)).toBe(true);

    const bursty = await run(frames);
    expect(bursty.metadata.sha256).toBe(await sha256Hex(pcm));
    expect(bursty.metadata.duration).toBeCloseTo(pcm.byteLength / 32_000, 3);

    const steady = await run([
      pcm.subarray(0, 100_000),
      pcm.subarray(100_000, 200_000),
      pcm.subarray(200_000),
    ]);
    expect(steady.messages.filter((m) => m.type === "Results").length).toBeGreaterThan(0);
    expect(withoutIds(bursty.messages)).toEqual(withoutIds(steady.messages));
  });

  it("keeps control messages in their place among audio frames", async () => {
    const { pcm } = await wavFixture("sb_spk1_snt1.wav");
    const frames = burst(pcm, 11);
    const client = await TestClient.open(`${Q}&endpointing=false`);
    const half = Math.floor(frames.length / 2);
    for (const frame of frames.slice(0, half)) client.sendAudio(frame);
    client.sendJson({ type: "Finalize" }); // must flush exactly the first half
    for (const frame of frames.slice(half)) client.sendAudio(frame);
    const { metadata } = await client.finish();
    expect(metadata.sha256).toBe(await sha256Hex(pcm));
    const finals = client.of("Results").filter((m) => m.from_finalize === true);
    // One from the Finalize, one from CloseStream; the first ends where the first half ended.
    expect(finals.length).toBe(2);
    const firstHalfSeconds = frames.slice(0, half).reduce((n, f) => n + f.byteLength, 0) / 32_000;
    const first = finals[0] as unknown as { start: number; duration: number };
    expect(first.start + first.duration).toBeLessThanOrEqual(firstHalfSeconds + 0.001);
    expect(first.start + first.duration).toBeGreaterThan(firstHalfSeconds - 0.064); // within 2 VAD frames
  });
});
