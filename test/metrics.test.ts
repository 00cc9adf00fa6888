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
});
