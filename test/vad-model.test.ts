// Relative for wrangler's module collector, which resolves .onnx imports from this file only.

import { Silero as VadWebSilero } from "@ricky0123/vad-web/dist/models/silero";
import { describe, expect, it } from "vitest";
import sileroModel from "../node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx";
import { ort, wasmHeapBytes } from "../src/runtime/ort";
import {
  loadSilero,
  newVadState,
  primedVadState,
  speechProbability,
  VAD_FRAME_SAMPLES,
  VAD_PRIMING_FRAMES,
} from "../src/vad/silero";
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

  it("gives the probabilities of @ricky0123/vad-web's own Silero step, frame for frame", async () => {
    // An independent reference: the package's Silero v5 wrapper (the browser VAD most web apps
    // use) creates its own session from the same file and carries its own state and 64-sample
    // context. Only the ORT module is shared (workerd can run no other), and it is set up for
    // workerd by our own first session, so this runs the same alone or after the other tests.
    await loadSilero();
    const reference = await VadWebSilero.new(ort, async () => sileroModel.slice(0));
    for (const clip of ["wcpp_jfk.wav", "ns_librosa_trumpet.wav"]) {
      const samples = pcm16ToFloat((await wavFixture(clip)).pcm);
      const ours = await probabilities(samples);
      reference.reset_state();
      const theirs: number[] = [];
      for (let at = 0; at + VAD_FRAME_SAMPLES <= samples.length; at += VAD_FRAME_SAMPLES) {
        theirs.push((await reference.process(samples.slice(at, at + VAD_FRAME_SAMPLES))).isSpeech);
      }
      expect(ours.length, clip).toBe(theirs.length);
      const worst = Math.max(...ours.map((p, i) => Math.abs(p - (theirs[i] ?? Number.NaN))));
      console.log(`${clip}: ${ours.length} frames, largest difference from vad-web ${worst}`);
      expect(worst, clip).toBeLessThan(1e-5);
    }
    await reference.release();
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

  it("primes each session's state with silence: the same state as silence fed from zeros, never shared", async () => {
    const byHand = newVadState();
    for (let i = 0; i < VAD_PRIMING_FRAMES; i++) {
      await speechProbability(byHand, new Float32Array(VAD_FRAME_SAMPLES));
    }
    const first = await primedVadState();
    const second = await primedVadState();
    expect(first.state).toEqual(byHand.state);
    expect(first.context).toEqual(byHand.context);
    expect(first.state.some((v) => v !== 0)).toBe(true);
    // Two sessions' states are two copies: one session's frames leave the other's untouched.
    expect(second.state).not.toBe(first.state);
    expect(second.context).not.toBe(first.context);
    const speech = pcm16ToFloat((await wavFixture("wcpp_jfk.wav")).pcm);
    await speechProbability(first, speech.subarray(16_000, 16_000 + VAD_FRAME_SAMPLES));
    expect(second.state).toEqual(byHand.state);
    expect((await primedVadState()).state).toEqual(byHand.state);
  });

  it("hears JFK's quiet 'ask not' wherever the stream starts, once primed (not from zeros)", async () => {
    const clip = pcm16ToFloat((await wavFixture("wcpp_jfk.wav")).pcm);
    // "ask not" lies between 3.1 and 4.5 s of the clip; each stream starts `cut` ms into it.
    const peak = async (state: ReturnType<typeof newVadState>, cut: number) => {
      const samples = clip.subarray(cut * 16);
      const out: number[] = [];
      for (let at = 0; at + VAD_FRAME_SAMPLES <= samples.length; at += VAD_FRAME_SAMPLES) {
        out.push(await speechProbability(state, samples.subarray(at, at + VAD_FRAME_SAMPLES)));
      }
      const from = Math.floor((3.1 - cut / 1000) / 0.032);
      const to = Math.ceil((4.5 - cut / 1000) / 0.032);
      return Math.max(...out.slice(from, to));
    };
    const cuts = [0, 20, 52, 128, 200, 300];
    const fromZeros = [];
    const primed = [];
    for (const cut of cuts) {
      fromZeros.push(await peak(newVadState(), cut));
      primed.push(await peak(await primedVadState(), cut));
    }
    console.log(
      `"ask not" peak from zeros ${fromZeros.map((p) => p.toFixed(2))}, primed ${primed.map((p) => p.toFixed(2))} (cuts ${cuts} ms)`,
    );
    // Measured: from zeros 0.89 at 0 ms but 0.51–0.73 at the other cuts (the bug, and the control
    // that this test tells the two apart); primed 0.97–0.98 at every cut.
    expect(Math.min(...fromZeros)).toBeLessThan(0.6);
    expect(Math.min(...primed)).toBeGreaterThan(0.7);
  });
});
