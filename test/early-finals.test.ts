/**
 * When the pipeline tells its transcriber an utterance may be complete, or that a long one ends at
 * its pause (src/session/early-finals.ts), frame by frame, against a transcriber that records what
 * it was told.
 */
import { describe, expect, it } from "vitest";
import {
  EARLY_FINAL_DUE_FRAMES,
  EarlyFinals,
  SOFT_CUT_CONFIRM_FRAMES,
  SPLIT_AT_PAUSE_SECONDS,
  SPLIT_CONFIRM_FRAMES,
  SPLIT_MIN_PAUSE_FRAMES,
} from "../src/session/early-finals";
import { VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE } from "../src/vad/silero";

const THRESHOLDS = { positiveThreshold: 0.5, negativeThreshold: 0.35, speechPadMs: 300 };
/** speechPadMs in frames. */
const PAD = 10;
const SPEECH = 0.9;
const BETWEEN = 0.4;
const SILENCE = 0.05;
/** Frames in SPLIT_AT_PAUSE_SECONDS, and one more. */
const LONG = Math.ceil(SPLIT_AT_PAUSE_SECONDS / (VAD_FRAME_SAMPLES / VAD_SAMPLE_RATE)) + 1;

class Recorder {
  readonly told: string[] = [];
  /** What `endAtPause` returns: null for a transcriber that cannot cut there. */
  cuts = true;
  speculate(): void {
    this.told.push("speculate");
  }
  dropSpeculation(): void {
    this.told.push("drop");
  }
  endAtPause(end: number, rest: number): Promise<void> | null {
    this.told.push(`end at ${end}, rest from ${rest}`);
    return this.cuts ? Promise.resolve() : null;
  }
}

/** Feeds `probabilities` as the utterance's next frames; returns each split and its frame. */
function feed(early: EarlyFinals, from: number, probabilities: number[]) {
  const splits: { at: number; end: number; rest: number }[] = [];
  probabilities.forEach((probability, i) => {
    const split = early.frame(probability, from + i + 1);
    if (split) splits.push({ at: from + i + 1, end: split.end, rest: split.rest });
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

  it(`become due after ${EARLY_FINAL_DUE_FRAMES} silence frames, so a one-frame dip never is`, () => {
    const told: string[] = [];
    const recorder = Object.assign(new Recorder(), {
      speculationDue: () => told.push(`due after ${recorder.told.length} calls`),
    });
    const early = new EarlyFinals(recorder, THRESHOLDS);
    feed(early, 0, [...run(SPEECH, 20), SILENCE, ...run(SPEECH, 5)]);
    expect(recorder.told).toEqual(["speculate", "drop"]);
    expect(told).toEqual([]);
    feed(early, 26, run(SILENCE, EARLY_FINAL_DUE_FRAMES - 1));
    expect(told).toEqual([]);
    feed(early, 26 + EARLY_FINAL_DUE_FRAMES - 1, run(SILENCE, 10));
    expect(told).toEqual(["due after 3 calls"]); // once, for the early final in flight
    expect(recorder.told).toEqual(["speculate", "drop", "speculate"]);
  });

  it("after a short utterance's pause, speech drops the early final: no split", () => {
    const recorder = new Recorder();
    const early = new EarlyFinals(recorder, THRESHOLDS);
    const short = LONG - 3;
    const splits = feed(early, 0, [...run(SPEECH, short), ...run(SILENCE, 20), ...run(SPEECH, 20)]);
    expect(splits).toEqual([]);
    expect(recorder.told).toEqual(["speculate", "drop"]);
  });

  it(`after a long utterance's pause, ${SPLIT_CONFIRM_FRAMES} speech frames end it at the pause`, () => {
    const recorder = new Recorder();
    const early = new EarlyFinals(recorder, THRESHOLDS);
    const pause = SPLIT_MIN_PAUSE_FRAMES + 2;
    const probabilities = [
      ...run(SPEECH, LONG),
      ...run(SILENCE, pause),
      BETWEEN,
      ...run(SPEECH, 20),
    ];
    const splits = feed(early, 0, probabilities);
    // The pause is frames LONG .. LONG + pause - 1 (0-based); the early final started at its first
    // frame (it decoded LONG + 1 frames) is kept, held meanwhile; the pause is shorter than the
    // pre-roll, so the next utterance starts right after it.
    const end = LONG + 1;
    expect(splits).toEqual([{ at: LONG + pause + 1 + SPLIT_CONFIRM_FRAMES, end, rest: end }]);
    expect(recorder.told).toEqual(["speculate", `end at ${end}, rest from ${end}`]);
  });

  it("a long pause's silence before the next utterance's pre-roll is left out", () => {
    const recorder = new Recorder();
    const early = new EarlyFinals(recorder, THRESHOLDS);
    const pause = 30;
    const splits = feed(early, 0, [
      ...run(SPEECH, LONG),
      ...run(SILENCE, pause),
      ...run(SPEECH, 20),
    ]);
    const [end, rest] = [LONG + 1, LONG + pause - PAD];
    expect(splits).toEqual([{ at: LONG + pause + SPLIT_CONFIRM_FRAMES, end, rest }]);
  });

  it(`a gap shorter than ${SPLIT_MIN_PAUSE_FRAMES} silence frames is inside a phrase: no split`, () => {
    const recorder = new Recorder();
    const early = new EarlyFinals(recorder, THRESHOLDS);
    const gap = run(SILENCE, SPLIT_MIN_PAUSE_FRAMES - 1);
    const splits = feed(early, 0, [...run(SPEECH, LONG), ...gap, ...run(SPEECH, 20)]);
    expect(splits).toEqual([]);
    expect(recorder.told).toEqual(["speculate", "drop"]);
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
    const pause = run(SILENCE, SPLIT_MIN_PAUSE_FRAMES);
    const splits = feed(early, 0, [...run(SPEECH, LONG), ...pause, ...blip, ...run(SILENCE, 10)]);
    expect(splits).toEqual([]);
    expect(recorder.told).toEqual(["speculate", "drop", "speculate"]);
  });

  it("an utterance ending while its early final is held drops it; one on silence alone is kept", () => {
    const held = new Recorder();
    const early = new EarlyFinals(held, THRESHOLDS);
    feed(early, 0, [...run(SPEECH, LONG), ...run(SILENCE, 20), SPEECH, SPEECH]);
    early.ending();
    expect(feed(early, 0, run(SPEECH, 20))).toEqual([]);
    expect(held.told).toEqual(["speculate", "drop"]);

    const quiet = new Recorder();
    const other = new EarlyFinals(quiet, THRESHOLDS);
    feed(other, 0, [...run(SPEECH, LONG), ...run(SILENCE, 6)]);
    other.ending();
    expect(quiet.told).toEqual(["speculate"]); // the flush uses it
  });

  it("a transcriber that cannot cut there gets the drop instead", () => {
    const recorder = new Recorder();
    recorder.cuts = false;
    const early = new EarlyFinals(recorder, THRESHOLDS);
    const splits = feed(early, 0, [...run(SPEECH, LONG), ...run(SILENCE, 20), ...run(SPEECH, 20)]);
    expect(splits).toEqual([]);
    const [end, rest] = [LONG + 1, LONG + 20 - PAD];
    expect(recorder.told).toEqual(["speculate", `end at ${end}, rest from ${rest}`, "drop"]);
  });

  it(`past the soft cut, any pause ends the utterance once ${SOFT_CUT_CONFIRM_FRAMES} speech frames follow`, () => {
    const recorder = new Recorder();
    const softCut = LONG + 40;
    const early = new EarlyFinals(recorder, THRESHOLDS, softCut);
    // A 2-frame pause before the soft cut does not split; one past it does, at the second frame.
    const before = [...run(SPEECH, softCut - 10), ...run(SILENCE, 2), ...run(SPEECH, 20)];
    const splits = feed(early, 0, [...before, ...run(SILENCE, 2), SPEECH, ...run(SPEECH, 5)]);
    const end = before.length + 1;
    expect(splits).toEqual([{ at: end + 3, end, rest: end }]);
    expect(recorder.told).toEqual([
      "speculate",
      "drop",
      "speculate",
      `end at ${end}, rest from ${end}`,
    ]);
  });

  it("past the soft cut, a pause that is the utterance's end keeps its early final (no split)", () => {
    const recorder = new Recorder();
    const early = new EarlyFinals(recorder, THRESHOLDS, LONG);
    expect(feed(early, 0, [...run(SPEECH, LONG + 20), ...run(SILENCE, 30)])).toEqual([]);
    early.ending();
    expect(recorder.told).toEqual(["speculate"]); // the endpoint's flush uses it
  });

  it("past the soft cut, a click after the end does not split, and a short soft cut needs no 3 s", () => {
    const click = new Recorder();
    const early = new EarlyFinals(click, THRESHOLDS, LONG);
    const splits = feed(early, 0, [...run(SPEECH, LONG + 20), ...run(SILENCE, 10), SPEECH]);
    expect([...splits, ...feed(early, LONG + 31, run(SILENCE, 20))]).toEqual([]);
    expect(click.told).toEqual(["speculate", "drop", "speculate"]);
    // EARSHOT_SOFT_CUT_SECONDS=1 (32 frames): past it, a split does not wait for 3 s of speech.
    const short = new Recorder();
    const soon = new EarlyFinals(short, THRESHOLDS, 32);
    const cut = feed(soon, 0, [...run(SPEECH, 47), SILENCE, ...run(SPEECH, 30)]);
    expect(cut).toEqual([{ at: 50, end: 48, rest: 48 }]);
  });
});
