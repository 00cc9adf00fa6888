/**
 * Faults that need the real Whisper (this file runs in the "whisper" project of vitest.config.ts):
 * a model object missing or corrupt in R2, and a client flooding a session faster than the isolate
 * can transcribe. With the fake transcriber neither can happen: it needs no model, and workerd
 * delivers a socket's messages faster than a session works only while a real transcription awaits.
 *
 * Each test states what the client sees, what is stored, that the account's slot comes back (the
 * limiter's row says "released"), and that another session of the same account is unaffected.
 * Protocol-level faults (idle, vanished clients, D1, malformed frames, bad credentials) are in
 * test/faults*.test.ts.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_QUEUED_AUDIO_SECONDS } from "../src/session/caps";
import { MAX_PENDING_FINALS_PER_SESSION } from "../src/stt/inference-scheduler";
import modelManifest from "../src/stt/model-manifest.json";
import { FINALS_AHEAD } from "../src/stt/whisper-session";
import { isolateScheduler } from "../src/stt/whisper-transcriber";
import { wordErrorRate } from "../tools/eval/wer";
import { createAccount } from "./helpers/accounts";
import { frames, handshake, type ServerJson, TestClient } from "./helpers/client";
import { manifest, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";
import {
  accountGet,
  activeSessionIds,
  endedSession,
  expectSlotReleased,
  storedFinals,
  storedSession,
  transcribe,
} from "./helpers/sessions";
import { concat } from "./helpers/typed-arrays";

const Q = "?encoding=linear16&sample_rate=16000";
/** Bytes of one second of 16 kHz linear16. */
const SECOND = 32_000;
const bucket = (env as unknown as { MODELS: R2Bucket }).MODELS;

function transcriptOf(m: ServerJson): string {
  return (m.channel as { alternatives: [{ transcript: string }] }).alternatives[0].transcript;
}

function finalText(messages: readonly ServerJson[]): string {
  return messages
    .filter((m) => m.type === "Results" && m.is_final === true)
    .map(transcriptOf)
    .filter((t) => t !== "")
    .join(" ");
}

async function objectBytes(key: string): Promise<Uint8Array> {
  const object = await bucket.get(key);
  if (object === null) throw new Error(`${key} is not in the bucket`);
  return new Uint8Array(await object.arrayBuffer());
}

beforeAll(seedModels);

describe("a model object missing or corrupt in R2", () => {
  // First in the file: nothing has loaded the models in this isolate yet (each test file runs in
  // an isolate of its own, with storage of its own, so the bucket can be damaged here safely).
  it("refuses the handshake 503 saying why, frees the slot, keeps serving, and recovers once the object is back", async () => {
    const account = await createAccount({ maxConcurrentSessions: 1 });
    const weightsKey = modelManifest.files.decoderData.key;
    const weights = await objectBytes(weightsKey);
    const corrupt = weights.slice();
    const middle = corrupt.length >> 1;
    corrupt[middle] = (corrupt[middle] ?? 0) ^ 0x01; // same size: only the checksum can tell

    const faults: [string, () => Promise<unknown>][] = [
      ["corrupt decoder weights", () => bucket.put(weightsKey, corrupt)],
      ["a missing encoder", () => bucket.delete(modelManifest.files.encoder.key)],
    ];
    /** Puts every object back as seeded, so a failure here cannot break the tests after it. */
    const restore = async () => {
      await bucket.put(weightsKey, weights);
      await seedModels(); // puts the encoder back (it skips objects of the right size)
    };
    try {
      for (const [fault, apply] of faults) {
        await apply();
        // The account's only slot: a refusal that kept it would make this a 429.
        const refused = await handshake(Q, { key: account.key });
        expect(refused.status, fault).toBe(503);
        expect(refused.webSocket).toBeNull();
        const body = (await refused.json()) as { err_code: string; err_msg: string };
        expect(body.err_code).toBe("SERVICE_UNAVAILABLE");
        expect(body.err_msg).toMatch(/speech recognition is temporarily unavailable/);
        expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
        const sessionId = refused.headers.get("dg-request-id") ?? "";
        await expectSlotReleased(account, sessionId);
        expect(await storedSession(sessionId)).toBeNull(); // no session record: it never started
        // The worker keeps serving what does not need the model.
        const usage = await accountGet("/v1/usage", account.key);
        expect(usage.status).toBe(200);
        expect(((await usage.json()) as { active_sessions: number }).active_sessions).toBe(0);
      }
    } finally {
      await restore();
    }

    // The objects are back: no failure was remembered, the next session loads and transcribes.
    const jfk = concat([(await wavFixture("wcpp_jfk.wav")).pcm, new Uint8Array(SECOND)]);
    const reference = (await manifest()).find((r) => r.file === "wcpp_jfk.wav")?.reference ?? "";
    const recovered = await transcribe(Q, jfk, account.key, 3200);
    expect(wordErrorRate(reference, finalText(recovered.messages)).wer).toBeLessThanOrEqual(0.15);
    await expectSlotReleased(account, recovered.sessionId);

    // Loaded weights were verified once and live in the isolate: damage to the bucket after the
    // load changes nothing for the sessions this isolate serves.
    try {
      await bucket.put(weightsKey, corrupt);
      const after = await transcribe(Q, jfk, account.key, 3200);
      expect(finalText(after.messages)).toBe(finalText(recovered.messages));
    } finally {
      await restore();
    }
  });
});

describe(`a client flooding past MAX_QUEUED_AUDIO_SECONDS (${MAX_QUEUED_AUDIO_SECONDS} s)`, () => {
  // The real trigger: the session's own transcription (Finalize) is the slow step while the flood
  // arrives. faults-flood.test.ts holds the same case to exact numbers, with a session beside it.
  it("is closed 1008 with a reason naming the cap; everything accepted is transcribed and stored; the slot is freed", async () => {
    const account = await createAccount({ maxConcurrentSessions: 2 });
    const sentence = (await wavFixture("sb_spk1_snt1.wav")).pcm; // 2.87 s
    // 40 s of short utterances, 1-s frames: far more than the cap, sent as fast as possible.
    const unit = concat([sentence, new Uint8Array(SECOND)]);
    const flood = concat(Array.from({ length: 11 }, () => unit)).subarray(0, 40 * SECOND);

    const client = await TestClient.open(Q, { key: account.key });
    for (const frame of frames(sentence, 3200)) client.sendAudio(frame);
    // Finalize makes the session wait for a transcription: the flood arrives meanwhile.
    client.sendJson({ type: "Finalize" });
    for (const frame of frames(flood, SECOND)) client.sendAudio(frame);

    const closed = await client.waitClosed(60_000);
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/^BUF-0000/);
    expect(closed.reason).toContain(`${MAX_QUEUED_AUDIO_SECONDS} s`);

    // Stored: the close as the client saw it, and exactly the bytes accepted before it — the
    // sentence and a whole number of flood frames, fewer than were sent.
    const record = await endedSession(client.sessionId);
    expect(record.closeCode).toBe(1008);
    expect(record.closeReason).toBe(closed.reason);
    const acceptedFlood = record.bytesReceived - sentence.byteLength;
    expect(acceptedFlood % SECOND).toBe(0);
    expect(acceptedFlood).toBeGreaterThan(0);
    expect(acceptedFlood).toBeLessThan(flood.byteLength);
    await expectSlotReleased(account, client.sessionId);

    // Everything accepted was transcribed: its finals are those of a session that receives the
    // same bytes at a pace it can keep (same audio, same Finalize point: same utterances).
    const stored = await storedFinals(account.key, client.sessionId);
    const replay = await TestClient.open(Q, { key: account.key });
    for (const frame of frames(sentence, 3200)) replay.sendAudio(frame);
    replay.sendJson({ type: "Finalize" });
    await replay.waitFor((m) => m.from_finalize === true, "the Finalize's final", 60_000);
    for (const frame of frames(flood.subarray(0, acceptedFlood), SECOND)) {
      replay.sendAudio(frame);
      await new Promise((resolve) => setTimeout(resolve, 250)); // 4× real time: never near the cap
    }
    expect((await replay.finish()).closed.code).toBe(1000);
    const expected = await storedFinals(account.key, replay.sessionId);
    expect(expected.length).toBeGreaterThan(1); // the flood's sentences, not just the first
    expect(stored).toEqual(expected);
    await expect.poll(() => activeSessionIds(account.key), { timeout: 20_000 }).toEqual([]);
  });
});

describe(`a session whose finals cannot run for now (FINALS_AHEAD ${FINALS_AHEAD})`, () => {
  // The isolate is busy with another session's final for as long as the test holds it (a job in
  // the isolate's scheduler that the test ends). The session's pipeline ends utterances until
  // FINALS_AHEAD of its finals are in flight, then waits (TranscriberSession.ready) with the rest
  // of its audio queued, under MAX_QUEUED_AUDIO_SECONDS: it neither piles finals up to the
  // scheduler's MAX_PENDING_FINALS_PER_SESSION nor loses anything.
  it("stops ending utterances, keeps its audio, and answers every turn in order once the isolate frees", async () => {
    const account = await createAccount({ maxConcurrentSessions: 2 });
    const turn = (await wavFixture("short/psx_cards_004.wav")).pcm; // "five five", 1.55 s
    const pause = new Uint8Array(SECOND); // 1 s: past endpointing=300, each turn its own utterance
    const turns = MAX_PENDING_FINALS_PER_SESSION + 1; // 12.8 s of audio, under the queue's 20 s
    const audio = concat(Array.from({ length: turns }, () => concat([turn, pause])));

    let release = () => {};
    const busy = isolateScheduler.submit(
      `backlog-test-other-${crypto.randomUUID()}`,
      "final",
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    let client: TestClient;
    try {
      client = await TestClient.open(`${Q}&endpointing=300&vad_events=true`, {
        key: account.key,
      });
      for (const frame of frames(audio, 3200)) client.sendAudio(frame);
      // FINALS_AHEAD turns ended and wait for the isolate; the pipeline waits with them.
      await expect
        .poll(() => client.of("SpeechStarted").length, { timeout: 30_000 })
        .toBe(FINALS_AHEAD);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(client.of("SpeechStarted").length).toBe(FINALS_AHEAD);
      expect(client.finals()).toEqual([]);
    } finally {
      release();
      await busy;
    }
    const { closed } = await client.finish();
    expect(closed.code).toBe(1000);
    // Every turn answered, in order, and stored as sent.
    const finals = client.finals().filter((m) => transcriptOf(m) !== "");
    expect(finals.length).toBe(turns);
    const starts = finals.map((m) => Number(m.start));
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
    const stored = await storedFinals(account.key, client.sessionId);
    expect(stored.filter((f) => f.transcript !== "").map((f) => f.transcript)).toEqual(
      finals.map(transcriptOf),
    );
    await expectSlotReleased(account, client.sessionId);
    await expect.poll(() => isolateScheduler.stats().waiting, { timeout: 20_000 }).toBe(0);
  });
});
