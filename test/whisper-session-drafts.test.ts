/**
 * Finals take their utterance's latest interim as drafts (src/stt/whisper/drafts.ts) and are the
 * same as without interims. Real models, one WhisperSession on a scheduler of its own (as
 * whisper-session-interims.test.ts), continuation on (the constructor's default): a run of dev
 * clips, each one utterance fed in CHUNK_SECONDS chunks, each interim waited for before the next
 * chunk (so every interim completes, as when the isolate keeps up), then Finalize. Two clips
 * under CONTINUE_MAX_SECONDS follow each other closely, so the second's final continues the
 * first (its drafts moved onto the window). The same audio goes through a session without
 * interims; every final must be identical, word timings and confidences included, and the
 * session's "drafts" log must show drafts accepted. With early finals too: the final is the
 * early decode (`speculate`) taken by the flush. With drafts off (EARSHOT_DRAFTS=off, the
 * session's `useDrafts`), the same session with interims runs no draft run at all.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { LogFields, Logger } from "../src/runtime/log";
import { InferenceScheduler, type JobOutcome } from "../src/stt/inference-scheduler";
import type { Transcript } from "../src/stt/transcriber";
import { WhisperSession } from "../src/stt/whisper-session";
import { whisperModel } from "../src/stt/whisper-transcriber";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";

const SAMPLE_RATE = 16_000;
/** Audio per feed: half the shortest interim interval, so interims come every second or two. */
const CHUNK_SECONDS = 0.5;
/** Pause between utterances: under continuation.ts CONTEXT_MAX_GAP_SECONDS. */
const GAP_SECONDS = 0.3;
/** Long and short clips; the two short ones in the middle make a continued final. */
const CLIPS = [
  "wcpp_jfk.wav",
  "psx_librivox_0870.wav",
  "sb_spk1_snt1.wav",
  "psx_librivox_0880.wav",
  "leopard_test_en.wav",
];

/** Every job the session submits, so a test can wait for its interims. */
class WatchedScheduler extends InferenceScheduler {
  readonly jobs = new Set<Promise<unknown>>();
  override submit<T>(
    sessionId: string,
    kind: "final" | "interim",
    run: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<JobOutcome<T>> {
    const job = super.submit(sessionId, kind, run, signal);
    this.jobs.add(job);
    const forget = () => this.jobs.delete(job);
    job.then(forget, forget);
    return job;
  }
}

interface Logged {
  event: string;
  fields: LogFields;
}

function recordingLogger(lines: Logged[]): Logger {
  const at = (event: string, fields: LogFields = {}): void => {
    lines.push({ event, fields });
  };
  const logger: Logger = { debug: at, info: at, warn: at, error: at, with: () => logger };
  return logger;
}

async function run(interimResults: boolean, earlyFinals: boolean, useDrafts = true) {
  await seedModels();
  const scheduler = new WatchedScheduler();
  const emitted: Transcript[] = [];
  const logged: Logged[] = [];
  const bucket = (env as unknown as { MODELS: R2Bucket }).MODELS;
  const session = new WhisperSession(
    {
      sessionId: `drafts-${interimResults}-${earlyFinals}`,
      accountId: "acc_test",
      language: "en",
      interimResults,
      keyterms: [],
      log: recordingLogger(logged),
      emit: (transcript) => emitted.push(transcript),
    },
    () => whisperModel(bucket),
    scheduler,
    earlyFinals,
    undefined,
    true,
    useDrafts,
  );
  let at = 0;
  const chunk = CHUNK_SECONDS * SAMPLE_RATE;
  for (const clip of CLIPS) {
    const audio = pcm16ToFloat((await wavFixture(clip)).pcm);
    for (let from = 0; from < audio.length; from += chunk) {
      const samples = audio.subarray(from, from + chunk);
      session.feed(samples, at);
      at += samples.length;
      // The interim this chunk started, if any, completes (and is emitted) before the next.
      await Promise.allSettled([...scheduler.jobs]);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    if (earlyFinals) session.speculate();
    await session.flush("finalize", at);
    at += GAP_SECONDS * SAMPLE_RATE;
  }
  await session.afterFinals();
  session.close();
  const finals = emitted.filter((t) => t.isFinal);
  const interims = emitted.length - finals.length;
  const drafts = logged.find((line) => line.event === "drafts")?.fields ?? {};
  const continued = logged.find((line) => line.event === "continued finals")?.fields ?? {};
  return { finals, interims, drafts, continued, logged };
}

describe("finals with their interims as drafts", () => {
  for (const earlyFinals of [false, true]) {
    it(`are the finals without interims${earlyFinals ? ", early finals on" : ""}`, async () => {
      const plain = await run(false, earlyFinals);
      const drafted = await run(true, earlyFinals);
      console.log(
        `early finals ${earlyFinals}: ${drafted.interims} interims; drafts ${JSON.stringify(
          drafted.drafts,
        )}; continued ${JSON.stringify(drafted.continued)}`,
      );
      expect(plain.interims).toBe(0);
      expect(drafted.interims).toBeGreaterThanOrEqual(CLIPS.length);
      expect(drafted.finals.map((t) => t.text)).toEqual(plain.finals.map((t) => t.text));
      expect(drafted.finals).toEqual(plain.finals);
      expect(plain.drafts).toMatchObject({ withDrafts: 0, rows: 0 });
      expect(drafted.drafts.withDrafts).toBeGreaterThanOrEqual(CLIPS.length);
      expect(drafted.drafts.accepted).toBeGreaterThan(0);
      // The short pair continued, with its drafts on the window, in both sessions alike.
      expect(drafted.continued).toEqual(plain.continued);
      expect(drafted.continued.decodes).toBeGreaterThan(0);
      expect(drafted.drafts.continued).toBeGreaterThan(0);
      const failures = drafted.logged.filter((line) => /fail/i.test(line.event));
      expect(failures).toEqual([]);
    }, 600_000);
  }

  it("are not taken with drafts off (EARSHOT_DRAFTS=off)", async () => {
    const off = await run(true, false, false);
    console.log(`drafts off: ${off.interims} interims; drafts ${JSON.stringify(off.drafts)}`);
    expect(off.interims).toBeGreaterThanOrEqual(CLIPS.length);
    expect(off.drafts).toMatchObject({ withDrafts: 0, runs: 0, rows: 0, accepted: 0 });
    expect(off.drafts.decodes).toBeGreaterThanOrEqual(CLIPS.length);
  }, 600_000);
});
