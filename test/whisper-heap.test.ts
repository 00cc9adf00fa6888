/**
 * ORT's WASM heap at the longest window a session decodes (the "whisper-heap" project of
 * vitest.config.ts: real models, early finals off).
 *
 * Why a project of its own: the heap grows with the decoded window, so this test needs one
 * utterance that only the length cap ends (a soft cut after 11 s, caps.ts). With early finals on,
 * a long utterance ends at its first pause once speech comes back (src/session/early-finals.ts),
 * and every dev clip pauses long before 11 s. The worst case is still real (a speaker who never
 * pauses long enough for a silence frame), and the heap it needs is the same with or without early
 * finals: only the window's length sets it. Without early finals the length cap is the only end
 * of an utterance with endpointing off, which reaches that window with the dev clips.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { wasmHeapBytes } from "../src/runtime/ort";
import { MAX_UTTERANCE_SECONDS } from "../src/session/caps";
import { frames, TestClient } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";
import { concat } from "./helpers/typed-arrays";

/** The tests' hard ceiling for ORT's heap (the isolate has 128 MB in all; the goal is 80 MB). */
const HEAP_CEILING_BYTES = 100 * 1024 * 1024;

beforeAll(seedModels);

describe("ORT's heap", () => {
  it("stays under the ceiling at the longest window a session decodes", async () => {
    const parts = ["wcpp_jfk.wav", "lhotse_2412_153948_0000.wav"];
    const audio = concat(await Promise.all(parts.map(async (p) => (await wavFixture(p)).pcm)));
    expect(audio.byteLength / 32_000).toBeGreaterThan(MAX_UTTERANCE_SECONDS);
    const client = await TestClient.open("?encoding=linear16&sample_rate=16000&endpointing=false");
    // 100-ms frames at twice real time: more than MAX_QUEUED_AUDIO_SECONDS ahead is a flood.
    for (const [i, frame] of frames(audio, 3200).entries()) {
      client.sendAudio(frame);
      if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const { closed } = await client.finish();
    expect(closed.code).toBe(1000);
    const finals = client.of("Results").filter((m) => m.is_final === true);
    const longest = Math.max(...finals.map((m) => m.duration as number));
    expect(longest).toBeGreaterThan(11);
    const heap = wasmHeapBytes();
    console.log(
      `WASM heap: ${((heap ?? 0) / 1024 / 1024).toFixed(1)} MiB, longest final ${longest} s`,
    );
    expect(heap).toBeGreaterThan(0);
    expect(heap).toBeLessThan(HEAP_CEILING_BYTES);
  });
});
