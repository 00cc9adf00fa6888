import { describe, expect, it } from "vitest";
import { UtteranceAudio } from "../src/stt/utterance-audio";
import { VAD_FRAME_SAMPLES } from "../src/vad/silero";

/** Frame i holds the value i + 1 in every sample, so where a sample came from is visible. */
function frame(i: number): Float32Array {
  return new Float32Array(VAD_FRAME_SAMPLES).fill(i + 1);
}

function fed(frames: number, probability = 0.9, start = 4_000): UtteranceAudio {
  const utterance = new UtteranceAudio();
  for (let i = 0; i < frames; i++) {
    utterance.feed(frame(i), start + i * VAD_FRAME_SAMPLES, probability);
  }
  return utterance;
}

describe("an utterance's audio", () => {
  it("hands over everything fed, from its first sample, and starts the next one empty", () => {
    const utterance = fed(5);
    const taken = utterance.take(null);
    expect(taken.start).toBe(4_000);
    expect(taken.audio.length).toBe(5 * VAD_FRAME_SAMPLES);
    expect(taken.audio[5 * VAD_FRAME_SAMPLES - 1]).toBe(5);
    expect(taken.vad?.speechFrames).toBe(5);
    expect(utterance.start).toBeNull();
    expect(utterance.samples).toBe(0);
  });

  it("ends at a cut's end and keeps what followed its rest frame as the next utterance", () => {
    const utterance = fed(10);
    const taken = utterance.take({ end: 4, rest: 7 });
    expect(taken.audio.length).toBe(4 * VAD_FRAME_SAMPLES);
    expect(taken.audio[4 * VAD_FRAME_SAMPLES - 1]).toBe(4);
    expect(taken.vad?.speechFrames).toBe(4);
    // Frames 4–6 (the pause) belong to neither; frame 7 starts the next utterance.
    expect(utterance.start).toBe(4_000 + 7 * VAD_FRAME_SAMPLES);
    expect(utterance.samples).toBe(3 * VAD_FRAME_SAMPLES);
    const next = utterance.take(null);
    expect(next.audio[0]).toBe(8);
    expect(next.vad?.speechFrames).toBe(3);
  });

  it("cannot be cut outside its frames, or once a partial frame was fed", () => {
    const utterance = fed(6);
    expect(utterance.canCut({ end: 2, rest: 6 })).toBe(true);
    expect(utterance.canCut({ end: 0, rest: 3 })).toBe(false);
    expect(utterance.canCut({ end: 4, rest: 3 })).toBe(false);
    expect(utterance.canCut({ end: 2, rest: 7 })).toBe(false);
    utterance.feed(new Float32Array(100), 4_000 + 6 * VAD_FRAME_SAMPLES);
    expect(utterance.canCut({ end: 2, rest: 6 })).toBe(false);
    expect(new UtteranceAudio().canCut({ end: 1, rest: 1 })).toBe(false);
  });
});
