/**
 * What an operator's metrics record (src/runtime/metrics.ts), read at the test seam instead of
 * Analytics Engine: every handshake outcome (admitted, refused 401 / 400 / 429 with its err_code)
 * and every ended session with its close code and the audio it received.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { captureMetricsForTests } from "../src/runtime/metrics";
import { handshake, TestClient } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { warmVad } from "./helpers/sessions";
import { newAccountWithKey } from "./setup/accounts-app";

const Q = "?encoding=linear16&sample_rate=16000";
let points: AnalyticsEngineDataPoint[] = [];
let stop = () => {};

beforeAll(warmVad);

beforeEach(() => {
  points = [];
  stop = captureMetricsForTests((point) => points.push(point));
});
afterEach(() => stop());

function of(accountId: string, kind: string): AnalyticsEngineDataPoint[] {
  return points.filter((p) => p.indexes?.[0] === accountId && p.blobs?.[0] === kind);
}

describe("metrics", () => {
  it("records each handshake's outcome under its account, refusals by err_code", async () => {
    const account = await newAccountWithKey(1);
    const client = await TestClient.open(Q, { key: account.key });
    expect((await handshake(Q, { key: account.key })).status).toBe(429);
    expect((await handshake("?sample_rate=96000", { key: account.key })).status).toBe(400);
    expect((await handshake(Q, { key: "not-a-key" })).status).toBe(401);
    await client.finish();

    expect(of(account.accountId, "handshake").map((p) => [p.blobs?.[1], p.doubles?.[0]])).toEqual([
      ["admitted", 101],
      ["TOO_MANY_REQUESTS", 429],
      ["Bad Request", 400],
    ]);
    // Before authentication there is no account: the refusal is recorded under "".
    expect(of("", "handshake").map((p) => [p.blobs?.[1], p.doubles?.[0]])).toContainEqual([
      "INVALID_AUTH",
      401,
    ]);
  });

  it("records an ended session: its close, the audio it received and transcribed, its finals", async () => {
    const account = await newAccountWithKey(1);
    const { pcm } = await wavFixture("sb_spk1_snt1.wav");
    const client = await TestClient.open(Q, { key: account.key });
    client.sendAudio(pcm);
    await client.finish();
    await expect.poll(() => of(account.accountId, "session").length).toBe(1);
    const [point] = of(account.accountId, "session");
    expect(point?.blobs?.slice(1)).toEqual(["1000", client.sessionId]);
    const [code, received, transcribed, seconds, finals] = point?.doubles ?? [];
    expect(code).toBe(1000);
    expect(received).toBeCloseTo(pcm.byteLength / 32_000, 3);
    expect(transcribed).toBeGreaterThan(0);
    expect(transcribed).toBeLessThanOrEqual(received ?? 0);
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(finals).toBe(client.finals().length);
  });

  it("records each session's end of speech → final, timed from the speech's arrival", async () => {
    const account = await newAccountWithKey(1);
    const { pcm } = await wavFixture("sb_spk1_snt1.wav");
    // No endpointing: only the Finalize, sent WAIT_MS after the audio, ends the utterance.
    const WAIT_MS = 400;
    const client = await TestClient.open(`${Q}&endpointing=false`, { key: account.key });
    client.sendAudio(pcm);
    await new Promise((resolve) => setTimeout(resolve, WAIT_MS));
    client.sendJson({ type: "Finalize" });
    await client.waitFor((m) => m.from_finalize === true, "the Finalize's final");
    await client.finish();
    await expect.poll(() => of(account.accountId, "session").length).toBe(1);
    const [p50, p95, timed] = of(account.accountId, "session")[0]?.doubles?.slice(6) ?? [];
    expect(timed).toBe(1);
    // From the audio's arrival, so about the wait (timed from the Finalize's own arrival, as a
    // broken origin would be, it reads 10); 100 ms of slack for the audio's own delivery. The
    // Workers clock moves with I/O, so the send reads as the Finalize's arrival: not much more.
    expect(p50).toBeGreaterThanOrEqual(WAIT_MS - 100);
    expect(p50).toBeLessThan(WAIT_MS + 1_000);
    expect(p95).toBe(p50);
  });

  it("times an endpointed final at once, and records 0 when no final was timed", async () => {
    const account = await newAccountWithKey(2);
    const { pcm } = await wavFixture("sb_spk1_snt1.wav");
    const client = await TestClient.open(Q, { key: account.key });
    // The clip and a second of silence in one message: the endpoint's final comes while the
    // server is still reading it (measured ~0.1 s: the VAD's pass over the 4 s, with its yields).
    const audio = new Uint8Array(pcm.byteLength + 32_000);
    audio.set(pcm);
    client.sendAudio(audio);
    await client.waitFor((m) => m.speech_final === true, "the endpoint's final");
    await client.finish();
    const silent = await TestClient.open(Q, { key: account.key });
    silent.sendAudio(new Uint8Array(32_000));
    await silent.finish();
    await expect.poll(() => of(account.accountId, "session").length).toBe(2);
    const [spoken, quiet] = of(account.accountId, "session").map((p) => p.doubles?.slice(6));
    expect(spoken?.[2]).toBe(1);
    expect(spoken?.[0]).toBeLessThan(1_000);
    expect(quiet).toEqual([0, 0, 0]);
  });
});
