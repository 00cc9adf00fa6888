/**
 * The order of what the pipeline tells the client around an utterance's end, with scripted VAD
 * probabilities (each frame's first sample is its probability, in place of Silero) and a transcriber
 * whose finals take a while, as Whisper's do. The fake transcriber emits finals at once and the
 * real model decides its own probabilities, so neither can pin these cases down.
 */
import { describe, expect, it } from "vitest";
import { MAX_UTTERANCE_SECONDS, MAX_UTTERANCE_SOFT_SECONDS } from "../src/session/caps";
import { vadOptionsFor } from "../src/session/session-config";
import { SpeechPipeline } from "../src/session/speech-pipeline";
import type { FlushReason, TranscriberSession } from "../src/stt/transcriber";
import { DEFAULT_VAD_OPTIONS } from "../src/vad/vad-machine";

/** Frames whose speech probability is `probability`. */
function frames(probability: number, count: number): Float32Array {
  const samples = new Float32Array(512 * count);
  for (let i = 0; i < count; i++) samples[i * 512] = probability;
  return samples;
}

/** What the client was told (speculation calls left out). */
const said = (run: { events: string[] }) => run.events.filter((e) => !e.includes("peculat"));

/** A pipeline at `endpointingMs` / `utteranceEndMs` and the events it gave, in order. */
function pipeline(
  endpointingMs: number | false,
  utteranceEndMs: number | null,
  softCutSeconds = MAX_UTTERANCE_SOFT_SECONDS,
  /** The transcriber ends long utterances at their pauses (early finals on, as Whisper's). */
  endsAtPauses = false,
) {
  const events: string[] = [];
  let finals: Promise<void> = Promise.resolve();
  let fed = 0;
  const transcriber: TranscriberSession = {
    feed: (samples) => {
      fed += samples.length / 512;
    },
    flush(reason: FlushReason) {
      const frames = fed;
      fed = 0;
      // A final takes 20 ms, after the ones before it.
      finals = finals
        .then(() => new Promise<void>((resolve) => setTimeout(resolve, 20)))
        .then(() => {
          events.push(`final ${reason} (${frames} frames)`);
        });
      return finals;
    },
    afterFinals: () => finals,
    close: () => {},
    speculate: () => events.push("speculate"),
    dropSpeculation: () => events.push("dropSpeculation"),
    ...(endsAtPauses
      ? {
          endsAtPauses: true,
          endAtPause: (end: number, rest: number) => {
            const frames = end;
            fed -= rest;
            finals = finals.then(() => {
              events.push(`final pause (${frames} frames)`);
            });
            return finals;
          },
        }
      : {}),
  };
  const options = vadOptionsFor({ endpointingMs, utteranceEndMs } as Parameters<
    typeof vadOptionsFor
  >[0]);
  const listener = {
    speechStarted: () => events.push("SpeechStarted"),
    utteranceEnded: () => events.push("UtteranceEnd"),
    speechEnded: () => {},
    failed: (error: unknown) => events.push(`failed ${String(error)}`),
  };
  const scripted = async (frame: Float32Array) => frame[0] ?? 0;
  const speech = new SpeechPipeline(options, transcriber, listener, softCutSeconds, scripted);
  return {
    events,
    push: (samples: Float32Array) => speech.push(samples, Date.now()),
    /** Frames fed to the utterance in progress. */
    fed: () => fed,
    settled: () => finals.then(() => new Promise((resolve) => setTimeout(resolve, 10))),
  };
}

describe("the pipeline's order around an utterance's end", () => {
  it("sends the final before UtteranceEnd when both fall on one frame (endpointing = utterance_end_ms)", async () => {
    const run = pipeline(1000, 1000);
    await run.push(frames(0.9, 20));
    await run.push(frames(0.01, 40));
    await run.settled();
    expect(said(run)).toEqual(["SpeechStarted", "final endpoint (52 frames)", "UtteranceEnd"]);
  });

  it("holds UtteranceEnd for its endpoint when endpointing is longer, so speech_final is kept", async () => {
    const run = pipeline(2000, 1000);
    await run.push(frames(0.9, 20));
    await run.push(frames(0.01, 80)); // UtteranceEnd is due after 32 silent frames, the end at 63
    await run.settled();
    expect(said(run)).toEqual(["SpeechStarted", "final endpoint (83 frames)", "UtteranceEnd"]);
  });

  it("drops a held UtteranceEnd when speech comes back before the endpoint", async () => {
    const { negativeThreshold, positiveThreshold } = DEFAULT_VAD_OPTIONS;
    const between = (negativeThreshold + positiveThreshold) / 2;
    const run = pipeline(500, 1000);
    await run.push(frames(0.9, 20));
    await run.push(frames(between, 40)); // never silence: the utterance stays open past 1 s
    await run.push(frames(0.9, 20)); // speech again: the same utterance goes on
    await run.push(frames(0.01, 40));
    await run.settled();
    expect(said(run)).toEqual([
      "SpeechStarted",
      expect.stringMatching(/^final endpoint /),
      "UtteranceEnd",
    ]);
  });

  it("ends the utterance at its UtteranceEnd when endpointing is off (nothing else would)", async () => {
    const { negativeThreshold, positiveThreshold } = DEFAULT_VAD_OPTIONS;
    const between = (negativeThreshold + positiveThreshold) / 2;
    const run = pipeline(false, 1000);
    await run.push(frames(0.9, 20));
    // An early final starts at the first silent frame; UtteranceEnd falls 32 frames after the
    // last speech frame, on a frame between the thresholds, which the final was fed.
    await run.push(frames(0.01, 31));
    await run.push(frames(between, 1));
    await run.push(frames(0.01, 10));
    await run.settled();
    expect(said(run)).toEqual([
      "SpeechStarted",
      expect.stringMatching(/^final utterance-end /),
      "UtteranceEnd",
    ]);
    // The early final left out frames fed after it: it was withdrawn.
    const cut = run.events.findIndex((e) => e.startsWith("final"));
    expect(run.events.slice(run.events.lastIndexOf("speculate"), cut)).toContain("dropSpeculation");
    // Speech after it is a new utterance.
    await run.push(frames(0.9, 20));
    await run.push(frames(0.01, 40));
    await run.settled();
    expect(said(run).slice(3)).toEqual([
      "SpeechStarted",
      expect.stringMatching(/^final utterance-end /),
      "UtteranceEnd",
    ]);
  });

  it(`drops an early final when the hard cap (${MAX_UTTERANCE_SECONDS} s) falls on a speech frame`, async () => {
    // With the soft cut at the hard cap (EARSHOT_SOFT_CUT_SECONDS=15), a pause just before the
    // cap starts an early final that nothing else withdraws; it would leave out the frame at the
    // cap, which the final's utterance was fed.
    const run = pipeline(500, 1000, MAX_UTTERANCE_SECONDS);
    const cap = Math.floor(MAX_UTTERANCE_SECONDS / 0.032);
    await run.push(frames(0.9, 20));
    // Speech up to 4 frames before the cap, 3 frames of pause, then the frame at the cap: speech.
    await run.push(frames(0.9, cap - run.fed() - 4));
    await run.push(frames(0.01, 3));
    expect(run.fed()).toBe(cap - 1);
    await run.push(frames(0.9, 40));
    await run.settled();
    const cut = run.events.findIndex((e) => e.startsWith("final max-length"));
    expect(cut).toBeGreaterThan(0);
    expect(run.events.slice(0, cut)).toContain("speculate");
    expect(run.events.slice(run.events.lastIndexOf("speculate"), cut)).toContain("dropSpeculation");
  });

  it("past the soft cut, ends an utterance whose pause is its end with its words, speech_final", async () => {
    // With early finals (Whisper's), the soft cut waits for speech to come back: 12 s of speech
    // then silence is one endpoint final, not a max-length final and an empty endpoint one.
    const soft = Math.floor(MAX_UTTERANCE_SOFT_SECONDS / 0.032);
    const whole = pipeline(500, 1000, MAX_UTTERANCE_SOFT_SECONDS, true);
    await whole.push(frames(0.9, soft + 30));
    await whole.push(frames(0.01, 40));
    await whole.settled();
    expect(said(whole).filter((e) => e.startsWith("final"))).toEqual([
      expect.stringMatching(/^final endpoint /),
    ]);
    // Speech back after a pause past the soft cut: the utterance ends at the pause.
    const split = pipeline(500, 1000, MAX_UTTERANCE_SOFT_SECONDS, true);
    await split.push(frames(0.9, soft + 30));
    await split.push(frames(0.01, 3));
    await split.push(frames(0.9, 20));
    await split.push(frames(0.01, 40));
    await split.settled();
    expect(said(split).filter((e) => e.startsWith("final"))).toEqual([
      `final pause (${soft + 31} frames)`,
      expect.stringMatching(/^final endpoint /),
    ]);
    // Without early finals the soft cut is the pipeline's, at the first quiet frame.
    const old = pipeline(500, 1000, MAX_UTTERANCE_SOFT_SECONDS, false);
    await old.push(frames(0.9, soft + 30));
    await old.push(frames(0.01, 40));
    await old.settled();
    expect(said(old).filter((e) => e.startsWith("final"))).toEqual([
      expect.stringMatching(/^final max-length /),
      expect.stringMatching(/^final endpoint /),
    ]);
  });

  it("does not decode silence again every soft cut when endpointing is off", async () => {
    // endpointing=false and no utterance_end_ms: nothing ends the utterance on silence, so the
    // soft cut did, every 11 s of the silence that followed, each part read by Whisper for an
    // empty final. A part without one speech frame ends it; speech later is a new utterance.
    const soft = Math.floor(MAX_UTTERANCE_SOFT_SECONDS / 0.032);
    const run = pipeline(false, null, MAX_UTTERANCE_SOFT_SECONDS, true);
    await run.push(frames(0.9, 30));
    await run.push(frames(0.01, 4 * soft));
    await run.settled();
    expect(said(run)).toEqual([
      "SpeechStarted",
      `final max-length (${soft} frames)`,
      `final max-length (${soft} frames)`,
    ]);
    expect(run.fed()).toBe(0);
    // A word too short to confirm a start (5 speech frames) is not lost for it: the open
    // utterance would have held it, so the next speech frame starts one at once.
    await run.push(frames(0.9, 5));
    await run.push(frames(0.01, 20));
    await run.settled();
    expect(said(run).slice(3)).toEqual(["SpeechStarted"]);
    expect(run.fed()).toBeGreaterThan(25);
  });

  it("with endpointing on, leaves a speechless part to the endpoint", async () => {
    // Frames between the thresholds hold an utterance open past two hard caps (the second part
    // has no speech); its endpoint still comes, speech_final, once silence follows.
    const { negativeThreshold, positiveThreshold } = DEFAULT_VAD_OPTIONS;
    const between = (negativeThreshold + positiveThreshold) / 2;
    const cap = Math.floor(MAX_UTTERANCE_SECONDS / 0.032);
    const run = pipeline(500, null, MAX_UTTERANCE_SOFT_SECONDS, false);
    await run.push(frames(0.9, 30));
    await run.push(frames(between, 2 * cap));
    await run.push(frames(0.01, 40));
    await run.settled();
    expect(
      said(run)
        .filter((e) => e.startsWith("final"))
        .at(-1),
    ).toMatch(/^final endpoint /);
  });

  it("past the soft cut, cuts at the first quiet frame itself when the endpoint is far or off", async () => {
    // Waiting for speech to come back or for a 5-s endpoint would hold 12 s of speech and its
    // silence open to the 15-s hard cap: the pipeline cuts as without early finals.
    const soft = Math.floor(MAX_UTTERANCE_SOFT_SECONDS / 0.032);
    for (const endpointing of [5000, false] as const) {
      const run = pipeline(endpointing, 1000, MAX_UTTERANCE_SOFT_SECONDS, true);
      await run.push(frames(0.9, soft + 30));
      await run.push(frames(0.01, 3));
      await run.settled();
      expect(
        said(run).filter((e) => e.startsWith("final")),
        String(endpointing),
      ).toEqual([`final max-length (${soft + 31} frames)`]);
    }
  });
});
