/**
 * A transcription gives the event loop a turn before each model run (src/stt/whisper-session.ts,
 * decoder-run.ts `beforeRun`): ORT-web's wasm runs settle without one, so without it a whole
 * decode is one chain of microtasks, and what the session's socket says meanwhile (speech came
 * back after the pause an early final started at) is handled only once the decode is over.
 *
 * With the real models, hand-fed WhisperSessions on one scheduler, and the decoder counted: the
 * "socket message" is a zero-delay timer set as the decoder starts a run, as a frame arriving then
 * would be. It must stop the decode within YIELD_EVERY_RUNS runs, where the decode would otherwise
 * run to its end: an early final whose speech came back, and an interim of one session when
 * another session's final waits for the isolate.
 *
 * And with early finals off, that a session never ends an utterance at its pause (the split is
 * part of early finals; whisper-heap.test.ts relies on it to reach the longest window).
 */
import { env } from "cloudflare:workers";
import type { InferenceSession } from "onnxruntime-web/wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/runtime/log";
import { YIELD_EVERY_RUNS } from "../src/runtime/turns";
import { InferenceScheduler } from "../src/stt/inference-scheduler";
import type { Transcript } from "../src/stt/transcriber";
import type { WhisperModel } from "../src/stt/whisper/model";
import { WhisperSession } from "../src/stt/whisper-session";
import { whisperModel } from "../src/stt/whisper-transcriber";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";

beforeAll(seedModels);

/** The model with its decoder runs counted; `onRun(n)` is called as run n starts. */
function counted(model: WhisperModel, onRun: (n: number) => void) {
  const counter = { runs: 0 };
  const decoder = model.decoder;
  const run = (feeds: InferenceSession.FeedsType, fetches: InferenceSession.FetchesType) => {
    counter.runs += 1;
    onRun(counter.runs);
    return decoder.run(feeds, fetches);
  };
  const wrapped = new Proxy(decoder, {
    get: (target, key) => {
      if (key === "run") return run;
      const value: unknown = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { model: { ...model, decoder: wrapped }, counter };
}

function open(
  id: string,
  model: WhisperModel,
  scheduler: InferenceScheduler,
  interims = false,
  earlyFinals = true,
) {
  const emitted: Transcript[] = [];
  const session = new WhisperSession(
    {
      sessionId: id,
      accountId: "acc_test",
      language: "en",
      interimResults: interims,
      keyterms: [],
      log: createLogger({ sessionId: id }),
      emit: (t) => emitted.push(t),
    },
    async () => model,
    scheduler,
    earlyFinals,
  );
  return { session, emitted };
}

/** Resolves once every job the scheduler has running or waiting now is over. */
async function idle(scheduler: InferenceScheduler): Promise<void> {
  await scheduler.submit("probe", "final", async () => undefined);
}

describe("while a final decodes, the session goes on handling its socket", () => {
  it("an early final that speech made useless stops at its next decoder run", {
    timeout: 120_000,
  }, async () => {
    const bucket = (env as unknown as { MODELS: R2Bucket }).MODELS;
    const model = await whisperModel(bucket);
    // lhotse's first sentence, 7.7 s: a decode of some 35 runs.
    const speech = pcm16ToFloat((await wavFixture("lhotse_2412_153948_0000.wav")).pcm).subarray(
      0,
      Math.round(7.68 * 16_000),
    );

    // The same early final left to finish: how many runs the whole decode takes.
    const whole = counted(model, () => {});
    const scheduler = new InferenceScheduler();
    const control = open("control", whole.model, scheduler);
    control.session.feed(speech, 0);
    control.session.speculate();
    await control.session.flush("finalize", speech.length);
    expect(control.emitted[0]?.text).toMatch(/excuse me/i);
    expect(whole.counter.runs).toBeGreaterThan(10);

    // Now speech comes back while the decoder runs its third step.
    let resumed = false;
    const cut = counted(model, (n) => {
      if (n !== 3) return;
      setTimeout(() => {
        resumed = true;
        live.session.feed(speech.subarray(0, 512), speech.length);
        live.session.dropSpeculation();
      }, 0);
    });
    const live = open("live", cut.model, scheduler);
    live.session.feed(speech, 0);
    live.session.speculate();
    await idle(scheduler);
    expect(resumed, "the message was handled while the decode ran").toBe(true);
    expect(cut.counter.runs).toBeGreaterThanOrEqual(3);
    expect(cut.counter.runs).toBeLessThanOrEqual(3 + YIELD_EVERY_RUNS);
    live.session.close();
  });

  it("an interim stops at its next turn when another session's final waits for the isolate", {
    timeout: 120_000,
  }, async () => {
    const bucket = (env as unknown as { MODELS: R2Bucket }).MODELS;
    const jfk = pcm16ToFloat((await wavFixture("wcpp_jfk.wav")).pcm);
    // 3 s of speech: past the interim's minimum audio and interval, so feeding it starts one.
    const speech = jfk.subarray(0, 3 * 16_000);
    const scheduler = new InferenceScheduler();
    let other: ReturnType<typeof open> | undefined;
    let finalAsked: Promise<void> | undefined;
    let asked = () => {};
    const askedNow = new Promise<void>((resolve) => {
      asked = resolve;
    });
    const { model } = counted(await whisperModel(bucket), (n) => {
      if (n !== 2) return;
      // B's Finalize arrives while A's interim decodes.
      setTimeout(() => {
        other?.session.feed(speech, 0);
        finalAsked = other?.session.flush("finalize", speech.length);
        asked();
      }, 0);
    });
    const a = open("a", model, scheduler, true);
    other = open("b", model, scheduler);
    a.session.feed(speech, 0);
    await askedNow;
    await finalAsked;
    expect(other.emitted.map((t) => t.text)).toEqual([expect.stringMatching(/fellow Americans/i)]);
    expect(a.emitted).toEqual([]); // A's interim never finished, so it never showed
    // B's final ran; A's interim, running when B's Finalize came, did not run to its end.
    expect(scheduler.stats().completed).toEqual({ final: 1, interim: 0 });
    a.session.close();
    other.session.close();
  });
});

describe("EARSHOT_EARLY_FINALS=off", () => {
  it("turns off ending a long utterance at its pause with the early finals it is part of", {
    timeout: 120_000,
  }, async () => {
    const bucket = (env as unknown as { MODELS: R2Bucket }).MODELS;
    const model = await whisperModel(bucket);
    const jfk = pcm16ToFloat((await wavFixture("wcpp_jfk.wav")).pcm);
    // 4 s fed as the pipeline feeds it, one VAD frame at a time with its probability.
    const feedFrames = (session: WhisperSession) => {
      for (let at = 0; at + 512 <= 4 * 16_000; at += 512) {
        session.feed(jfk.subarray(at, at + 512), at, 0.9);
      }
    };
    const scheduler = new InferenceScheduler();
    const off = open("off", model, scheduler, false, false);
    feedFrames(off.session);
    off.session.speculate();
    expect(off.session.endAtPause(60, 70)).toBeNull();
    await idle(scheduler);
    // Nothing ran but `idle`'s own probe: no early final, no final at the pause.
    expect(scheduler.stats().completed).toEqual({ final: 1, interim: 0 });
    expect(off.emitted).toEqual([]);

    // The same calls with early finals on end the utterance at frame 60: one final, of 1.92 s.
    const on = open("on", model, scheduler, false, true);
    feedFrames(on.session);
    on.session.speculate();
    const ended = on.session.endAtPause(60, 70);
    expect(ended).not.toBeNull();
    await ended;
    expect(on.emitted).toHaveLength(1);
    expect(on.emitted[0]?.start).toBe(0);
    expect(on.emitted[0]?.end).toBeCloseTo((60 * 512) / 16_000, 3);
    off.session.close();
    on.session.close();
  });
});
