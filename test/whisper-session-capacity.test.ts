/**
 * The isolate at its Whisper cap with the real models (this file runs in the "whisper" project of
 * vitest.config.ts): MAX_WHISPER_SESSIONS_PER_ISOLATE sessions at once, each streaming its own dev
 * clip at real-time pace with interim results on, so the VAD, the interims and the finals of all
 * of them contend for the isolate's one thread. Each must get exactly the finals its clip gets
 * alone; one session more is refused with 503 while they run; ORT's heap stays under its ceiling.
 * (session-capacity.test.ts tests the cap's mechanics with the fake transcriber; this one tests
 * that the cap is a capacity the real model holds.)
 */
import { beforeAll, describe, expect, it } from "vitest";
import { wasmHeapBytes } from "../src/runtime/ort";
import { MAX_WHISPER_SESSIONS_PER_ISOLATE } from "../src/session/caps";
import { createAccount } from "./helpers/accounts";
import { frames, handshake, type ServerJson, TestClient, transcriptOf } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";
import { concat } from "./helpers/typed-arrays";

const Q = "?encoding=linear16&sample_rate=16000&interim_results=true";
/**
 * Twelve clips of 2–8 s with different words (ten dev clips and two short turns): ~8 s of
 * streaming at real time.
 */
const CLIPS = [
  "sb_spk1_snt1.wav",
  "sb_spk1_snt3.wav",
  "leopard_test_en.wav",
  "ds_ldc93s1.wav",
  "sb_lj050_0131.wav",
  "psx_goforward.wav",
  "psx_librivox_0880.wav",
  "fw_stereo_left.wav",
  "psx_librivox_0890.wav",
  "psx_librivox_0870.wav",
  "short/psx_forever_2.wav",
  "short/psx_tidigits_2934z.wav",
];
/** 1.2 s of silence after each clip: the 500-ms endpoint after its last word. */
const TRAILING_SILENCE = new Uint8Array(1.2 * 32_000);
/** 100-ms frames, sent every 100 ms: real time. */
const FRAME_BYTES = 3200;
const FRAME_MS = 100;
/** As in whisper-session.test.ts: the tests' hard ceiling for ORT's heap. */
const HEAP_CEILING_BYTES = 100 * 1024 * 1024;

function finalText(messages: ServerJson[]): string {
  return messages
    .filter((m) => m.type === "Results" && m.is_final === true)
    .map(transcriptOf)
    .filter((t) => t !== "")
    .join(" ");
}

beforeAll(seedModels);

describe("the isolate at its Whisper cap", () => {
  it(`runs ${MAX_WHISPER_SESSIONS_PER_ISOLATE} real-time sessions with interims, each with exactly its own finals, and refuses one more`, async () => {
    expect(CLIPS).toHaveLength(MAX_WHISPER_SESSIONS_PER_ISOLATE);
    const account = await createAccount({ maxConcurrentSessions: 50 });
    const audio = await Promise.all(
      CLIPS.map(async (clip) => concat([(await wavFixture(clip)).pcm, TRAILING_SILENCE])),
    );

    // Each clip alone, as fast as the session takes it: the reference finals.
    const alone: string[] = [];
    for (const pcm of audio) {
      const client = await TestClient.open(Q, { key: account.key });
      for (const frame of frames(pcm, FRAME_BYTES)) client.sendAudio(frame);
      await client.finish();
      alone.push(finalText(client.messages));
    }
    expect(new Set(alone).size).toBe(CLIPS.length);

    // All at once, at real-time pace.
    const clients = await Promise.all(audio.map(() => TestClient.open(Q, { key: account.key })));
    const refused = await handshake(Q, { key: account.key });
    expect(refused.status).toBe(503);
    const streams = audio.map((pcm) => frames(pcm, FRAME_BYTES));
    const rounds = Math.max(...streams.map((s) => s.length));
    const started = Date.now();
    for (let i = 0; i < rounds; i++) {
      streams.forEach((stream, s) => {
        const frame = stream[i];
        if (frame) clients[s]?.sendAudio(frame);
      });
      // Real time: round i goes out at i × 100 ms from the start, however long sending took.
      const due = started + (i + 1) * FRAME_MS;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
    }
    const ends = await Promise.all(clients.map((client) => client.finish()));

    expect(ends.map((end) => end.closed.code)).toEqual(clients.map(() => 1000));
    expect(clients.map((client) => finalText(client.messages))).toEqual(alone);
    const interims = clients.map(
      (client) => client.of("Results").filter((m) => m.is_final === false).length,
    );
    console.log(`interims per session at the cap: ${interims.join(", ")}`);
    expect(interims.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    const heap = wasmHeapBytes() ?? 0;
    expect(heap).toBeGreaterThan(0);
    expect(heap).toBeLessThan(HEAP_CEILING_BYTES);
  });
});
