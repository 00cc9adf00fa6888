// Relative for wrangler's module collector, which resolves .onnx imports from this file only.

import { describe, expect, it } from "vitest";
import sileroModel from "../node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx";
import { wasmHeapBytes } from "../src/runtime/ort";
import { newVadState, speechProbability, VAD_FRAME_SAMPLES } from "../src/vad/silero";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";

async function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function probabilities(samples: Float32Array): Promise<number[]> {
  const state = newVadState();
  const out: number[] = [];
  for (let at = 0; at + VAD_FRAME_SAMPLES <= samples.length; at += VAD_FRAME_SAMPLES) {
    out.push(await speechProbability(state, samples.subarray(at, at + VAD_FRAME_SAMPLES)));
  }
  return out;
}

describe("Silero VAD v5 in workerd", () => {
  it("bundles the published model file, byte for byte", async () => {
    expect(await sha256Hex(sileroModel)).toBe(
      "2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f",
    );
  });

  it("hears speech in speech and none in digital silence", async () => {
    const speech = await probabilities(pcm16ToFloat((await wavFixture("wcpp_jfk.wav")).pcm));
    const silence = await probabilities(
      pcm16ToFloat((await wavFixture("ns_generated_silence_5s.wav")).pcm),
    );
    expect(Math.max(...speech)).toBeGreaterThan(0.9);
    expect(speech.filter((p) => p > 0.5).length).toBeGreaterThan(speech.length / 3);
    expect(Math.max(...silence)).toBeLessThan(0.1);
    expect(wasmHeapBytes()).toBeGreaterThan(0);
  });

  it("keeps per-caller state: interleaving two streams changes neither", async () => {
    const a = pcm16ToFloat((await wavFixture("sb_spk1_snt1.wav")).pcm);
    const b = pcm16ToFloat((await wavFixture("ns_librosa_trumpet.wav")).pcm);
    const aloneA = await probabilities(a);
    const aloneB = await probabilities(b);
    const stateA = newVadState();
    const stateB = newVadState();
    const mixedA: number[] = [];
    const mixedB: number[] = [];
    const frames = Math.max(aloneA.length, aloneB.length);
    for (let i = 0; i < frames; i++) {
      const at = i * VAD_FRAME_SAMPLES;
      if (i < aloneA.length)
        mixedA.push(await speechProbability(stateA, a.subarray(at, at + VAD_FRAME_SAMPLES)));
      if (i < aloneB.length)
        mixedB.push(await speechProbability(stateB, b.subarray(at, at + VAD_FRAME_SAMPLES)));
    }
    expect(mixedA).toEqual(aloneA);
    expect(mixedB).toEqual(aloneB);
  });
});
