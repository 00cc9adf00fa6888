/**
 * An interim in flight when its utterance's final is asked for is stopped
 * (src/stt/whisper-session.ts): its result would never be shown, and the final — the isolate runs
 * one inference at a time — would wait for it. With the real models, one WhisperSession on a
 * scheduler of its own: feeding 3 s of speech at once starts an interim at once; the final asked
 * for right after must be the only inference that completes, and nothing may be logged as failed.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { LogFields, Logger } from "../src/runtime/log";
import { InferenceScheduler } from "../src/stt/inference-scheduler";
import type { Transcript } from "../src/stt/transcriber";
import { WhisperSession } from "../src/stt/whisper-session";
import { whisperModel } from "../src/stt/whisper-transcriber";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";

beforeAll(seedModels);

interface Logged {
  level: string;
  event: string;
  fields: LogFields;
}

function recordingLogger(lines: Logged[]): Logger {
  const at =
    (level: string) =>
    (event: string, fields: LogFields = {}): void => {
      lines.push({ level, event, fields });
    };
  const logger: Logger = {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    with: () => logger,
  };
  return logger;
}

/** Interims the session says it stopped for finals (its close log). */
function stopped(logged: Logged[]): unknown {
  return logged.find((line) => line.event === "interims")?.fields.stoppedForFinals;
}

async function session(earlyFinals: boolean, scheduler = new InferenceScheduler(), id = "") {
  const emitted: Transcript[] = [];
  const logged: Logged[] = [];
  const bucket = (env as unknown as { MODELS: R2Bucket }).MODELS;
  const whisper = new WhisperSession(
    {
      sessionId: `interims-${earlyFinals}${id}`,
      accountId: "acc_test",
      language: "en",
      interimResults: true,
      keyterms: [],
      log: recordingLogger(logged),
      emit: (transcript) => emitted.push(transcript),
    },
    () => whisperModel(bucket),
    scheduler,
    earlyFinals,
  );
  // 3 s of speech: past the interim's minimum audio and interval, so feeding it starts one.
  const speech = pcm16ToFloat((await wavFixture("wcpp_jfk.wav")).pcm).subarray(0, 3 * 16_000);
  return { scheduler, emitted, logged, whisper, speech };
}

describe("an interim in flight when the final is asked for", () => {
  it("is stopped by the flush: only the final runs, and nothing is logged as failed", async () => {
    const { scheduler, emitted, logged, whisper, speech } = await session(false);
    whisper.feed(speech, 0);
    await whisper.flush("finalize", speech.length);
    await whisper.afterFinals();
    whisper.close();
    expect(stopped(logged)).toBe(1); // an interim had started, and was stopped
    expect(scheduler.stats().completed).toEqual({ final: 1, interim: 0 });
    expect(emitted.map((t) => t.isFinal)).toEqual([true]);
    expect(emitted[0]?.text).toMatch(/fellow Americans/i);
    expect(logged.filter((line) => line.level === "warn" || line.level === "error")).toEqual([]);
  });

  it("is stopped by an early final too", async () => {
    const { scheduler, emitted, logged, whisper, speech } = await session(true);
    whisper.feed(speech, 0);
    whisper.speculate();
    await whisper.flush("finalize", speech.length);
    await whisper.afterFinals();
    whisper.close();
    expect(stopped(logged)).toBe(1);
    expect(scheduler.stats().completed).toEqual({ final: 1, interim: 0 });
    expect(emitted.map((t) => t.isFinal)).toEqual([true]);
    expect(logged.filter((line) => line.level === "warn" || line.level === "error")).toEqual([]);
  });

  it("of another session is stopped by its early final only once that is due", async () => {
    // b's preview runs; a's early final at its first silent frame waits its turn without stopping
    // it (a one-frame dip would withdraw it 32 ms later), and is due once the silence goes on or
    // its utterance ends.
    const b = await session(false, undefined, "-b");
    const a = await session(true, b.scheduler, "-a");
    b.whisper.feed(b.speech, 0);
    a.whisper.feed(a.speech, 0);
    expect(b.scheduler.waiting).toBe(1); // a's interim: b's runs
    a.whisper.speculate();
    expect(b.scheduler.finalsWaiting).toBe(0);
    a.whisper.speculationDue();
    expect(b.scheduler.finalsWaiting).toBe(1);
    a.whisper.dropSpeculation();
    expect(b.scheduler.finalsWaiting).toBe(0);
    a.whisper.speculate();
    expect(b.scheduler.finalsWaiting).toBe(0);
    const ended = a.whisper.flush("endpoint", a.speech.length);
    expect(b.scheduler.finalsWaiting).toBe(1);
    await ended;
    await b.whisper.flush("finalize", b.speech.length);
    for (const { whisper } of [a, b]) whisper.close();
    expect(a.emitted.filter((t) => t.isFinal).map((t) => t.text)).toEqual([
      expect.stringMatching(/fellow Americans/i),
    ]);
  });
});
