/**
 * A live session keeps its slot past the lease and meters what it receives: a session streams in
 * real time for longer than LEASE_TTL_MS (35 s), so its slot survives only if the session really
 * renews it (a second session of the one-slot account is refused 429 the whole time, and the
 * account lists the session with its audio so far); when it ends, the account's usage holds
 * exactly the audio it sent and its limiter row says the session released the slot itself.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { LEASE_RENEW_MS, LEASE_TTL_MS } from "../src/limits/lease";
import { handshake, TestClient } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { accountGet, expectSlotReleased, limiterRow, warmVad } from "./helpers/sessions";
import { newAccountWithKey } from "./setup/accounts-app";

const Q = "?encoding=linear16&sample_rate=16000";
const BYTES_PER_SECOND = 32_000;
/** Sent every STEP_MS: 200 ms of audio, so the session never idles (1.5 s in this project). */
const STEP_MS = 200;
const STEP_BYTES = (STEP_MS / 1000) * BYTES_PER_SECOND;
/** Past the lease by one renewal period. */
const RUN_MS = LEASE_TTL_MS + LEASE_RENEW_MS;

interface Usage {
  active_sessions: number;
  audio_seconds_received: number;
  audio_seconds_transcribed: number;
}

async function usage(key: string): Promise<Usage> {
  const response = await accountGet("/v1/usage", key);
  expect(response.status).toBe(200);
  return (await response.json()) as Usage;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a session that outlives its lease", () => {
  beforeAll(warmVad);

  it("keeps its slot by renewing it, and meters exactly the audio it received", async () => {
    const account = await newAccountWithKey(1);
    const before = await usage(account.key);
    const speech = (await wavFixture("sb_spk1_snt1.wav")).pcm;
    const client = await TestClient.open(Q, { key: account.key });
    client.sendAudio(speech);
    let sent = speech.byteLength;
    const silence = new Uint8Array(STEP_BYTES);
    const started = Date.now();
    let checkedPastLease = false;
    while (Date.now() - started < RUN_MS) {
      await sleep(STEP_MS);
      if (client.isClosed) throw new Error(`closed: ${JSON.stringify(await client.closed)}`);
      if (client.isClosed) throw new Error(`closed early: ${JSON.stringify(await client.closed)}`);
      client.sendAudio(silence);
      sent += silence.byteLength;
      const elapsed = Date.now() - started;
      if (!checkedPastLease && elapsed > LEASE_TTL_MS + 1000) {
        checkedPastLease = true;
        // Past the lease: still the account's one session, and the slot is still taken.
        const refused = await handshake(Q, { key: account.key });
        expect(refused.status).toBe(429);
        const listed = await accountGet("/v1/sessions", account.key);
        const sessions = (
          (await listed.json()) as {
            sessions: { id: string; audio_seconds_received: number }[];
          }
        ).sessions;
        expect(sessions.map((s) => s.id)).toEqual([client.sessionId]);
        // Renewals report the audio so far: at most one renewal period (plus the send loop's
        // lag) behind what was sent.
        const reported = sessions[0]?.audio_seconds_received ?? 0;
        expect(reported).toBeGreaterThan(sent / BYTES_PER_SECOND - LEASE_RENEW_MS / 1000 - 2);
        expect(reported).toBeLessThanOrEqual(sent / BYTES_PER_SECOND);
      }
    }
    expect(checkedPastLease).toBe(true);
    expect(client.finals().length + client.of("Results").length).toBeGreaterThan(0);
    const { closed } = await client.finish();
    expect(closed.code).toBe(1000);
    await expectSlotReleased(account, client.sessionId);

    const row = await limiterRow(account.accountId, client.sessionId);
    expect(row?.audioSeconds).toBeCloseTo(sent / BYTES_PER_SECOND, 3);
    const after = await usage(account.key);
    expect(after.active_sessions).toBe(0);
    expect(after.audio_seconds_received - before.audio_seconds_received).toBeCloseTo(
      sent / BYTES_PER_SECOND,
      3,
    );
    // The speech at the start was transcribed; the silence after it was not.
    const transcribed = after.audio_seconds_transcribed - before.audio_seconds_transcribed;
    expect(transcribed).toBeGreaterThan(0);
    expect(transcribed).toBeLessThanOrEqual(speech.byteLength / BYTES_PER_SECOND + 1);
  }, 120_000);
});
