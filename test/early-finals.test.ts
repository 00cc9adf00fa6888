/**
 * When the pipeline tells its transcriber an utterance may be complete (src/session/early-finals.ts),
 * frame by frame, against a transcriber that records what it was told.
 */
import { describe, expect, it } from "vitest";
import {
  EarlyFinals,
  SPLIT_AT_PAUSE_SECONDS,
  SPLIT_CONFIRM_FRAMES,
} from "../src/session/early-finals";
import { VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE } from "../src/vad/silero";

const THRESHOLDS = { positiveThreshold: 0.5, negativeThreshold: 0.35 };
const SPEECH = 0.9;
const BETWEEN = 0.4;
const SILENCE = 0.05;
/** Frames in SPLIT_AT_PAUSE_SECONDS, and one more. */
const LONG = Math.ceil(SPLIT_AT_PAUSE_SECONDS / (VAD_FRAME_SAMPLES / VAD_SAMPLE_RATE)) + 1;

class Recorder {
  readonly told: string[] = [];
  /** What `splitAtSpeculation` returns: null for a transcriber with no early final to keep. */
  splits = true;
  speculate(): void {
    this.told.push("speculate");
  }
  dropSpeculation(): void {
    this.told.push("drop");
  }
  splitAtSpeculation(): Promise<void> | null {
    this.told.push("split");
    return this.splits ? Promise.resolve() : null;
  }
}

/** Feeds `probabilities` as the utterance's next frames; returns the frame of each split. */
function feed(early: EarlyFinals, from: number, probabilities: number[]) {
  const splits: { at: number; frames: number }[] = [];
  probabilities.forEach((probability, i) => {
    const split = early.frame(probability, from + i + 1);
    if (split) splits.push({ at: from + i + 1, frames: split.frames });
  });
  return splits;
}

const run = (probability: number, frames: number) => Array<number>(frames).fill(probability);

describe("early finals, frame by frame", () => {
  it("start at the first silence frame, once per silence run, and are dropped by speech", () => {
    const recorder = new Recorder();
    const early = new EarlyFinals(recorder, THRESHOLDS);
    feed(early, 0, [...run(SPEECH, 20), ...run(SILENCE, 5), BETWEEN, ...run(SILENCE, 3)]);
    expect(recorder.told).toEqual(["speculate", "drop", "speculate"]);
  });

  it("after a short utterance's pause, speech drops the early final: no split", () => {
    const recorder = new Recorder();
    const early = new EarlyFinals(recorder, THRESHOLDS);
    const short = LONG - 3;
    const splits = feed(early, 0, [...run(SPEECH, short), SILENCE, ...run(SPEECH, 20)]);
    expect(splits).toEqual([]);
    expect(recorder.told).toEqual(["speculate", "drop"]);
  });

  it(`after a long utterance's pause, ${SPLIT_CONFIRM_FRAMES} speech frames end the utterance at the pause`, () => {
    const recorder = new Recorder();
    const early = new EarlyFinals(recorder, THRESHOLDS);
    const probabilities = [...run(SPEECH, LONG), ...run(SILENCE, 4), BETWEEN, ...run(SPEECH, 20)];
    const splits = feed(early, 0, probabilities);
    // Speculated at the first silence frame (LONG + 1 frames); split at the 8th speech frame.
    expect(splits).toEqual([{ at: LONG + 5 + SPLIT_CONFIRM_FRAMES, frames: LONG + 1 }]);
    expect(recorder.told).toEqual(["speculate", "split"]);
  });

  it("the pause's own frames do not make an utterance long: its speech must reach the length", () => {
    const recorder = new Recorder();
    const early = new EarlyFinals(recorder, THRESHOLDS);
    const pause = [...run(SILENCE, 3), BETWEEN, ...run(SILENCE, 10)];
    const splits = feed(early, 0, [...run(SPEECH, LONG - 5), ...pause, ...run(SPEECH, 20)]);
    expect(splits).toEqual([]);
    expect(recorder.told).toEqual(["speculate", "drop", "speculate", "drop"]);
  });

  it("a blip after a long utterance's end drops the held early final and starts another", () => {
    const recorder = new Recorder();
    const early = new EarlyFinals(recorder, THRESHOLDS);
    const blip = run(SPEECH, SPLIT_CONFIRM_FRAMES - 1);
    const splits = feed(early, 0, [...run(SPEECH, LONG), SILENCE, ...blip, ...run(SILENCE, 10)]);
    expect(splits).toEqual([]);
    expect(recorder.told).toEqual(["speculate", "drop", "speculate"]);
  });

  it("an utterance ending while its early final is held drops it; one on silence alone is kept", () => {
    const held = new Recorder();
    const early = new EarlyFinals(held, THRESHOLDS);
    feed(early, 0, [...run(SPEECH, LONG), SILENCE, SPEECH, SPEECH]);
    early.ending();
    expect(held.told).toEqual(["speculate", "drop"]);

    const quiet = new Recorder();
    const other = new EarlyFinals(quiet, THRESHOLDS);
    feed(other, 0, [...run(SPEECH, LONG), ...run(SILENCE, 6)]);
    other.ending();
    expect(quiet.told).toEqual(["speculate"]); // the flush uses it
  });

  it("a transcriber with no early final to keep gets the drop instead", () => {
    const recorder = new Recorder();
    recorder.splits = false;
    const early = new EarlyFinals(recorder, THRESHOLDS);
    const splits = feed(early, 0, [...run(SPEECH, LONG), SILENCE, ...run(SPEECH, 20)]);
    expect(splits).toEqual([]);
    expect(recorder.told).toEqual(["speculate", "split", "drop"]);
  });
});
