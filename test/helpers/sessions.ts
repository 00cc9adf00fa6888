/**
 * What a session left behind, read the ways an operator or a client can: the stored record in the
 * session's Durable Object (close code, bytes received), its finals through
 * `GET /v1/sessions/:id/transcript`, the account's active sessions through `GET /v1/sessions`,
 * and the slot's row in the account limiter (released by the session, or reclaimed by the alarm).
 * Fault tests use these to check that a session ended the way it says and gave its slot back.
 */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { DEMO_KEY, frames, type ServerJson, TestClient, withoutIds } from "./client";
import { wavFixture } from "./fixtures";

/** Long enough for a session to drain its queue and release its slot on a loaded machine. */
const SETTLE_MS = 20_000;

export interface StoredSession {
  bytesReceived: number;
  closeCode: number | null;
  closeReason: string | null;
  endedAt: number | null;
}

export interface StoredFinal {
  start: number;
  end: number;
  transcript: string;
}

/** The session's own record (session/transcript-store.ts), or null when it never started. */
export async function storedSession(sessionId: string): Promise<StoredSession | null> {
  const stub = env.SESSION.get(env.SESSION.idFromName(sessionId));
  return runInDurableObject(stub, (_instance, state) => {
    // The tables exist only once a session began in the object.
    const tables = state.storage.sql
      .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'session'")
      .toArray();
    if (tables.length === 0) return null;
    const row = state.storage.sql
      .exec<{
        bytes_received: number;
        close_code: number | null;
        close_reason: string | null;
        ended_at: number | null;
      }>("SELECT bytes_received, close_code, close_reason, ended_at FROM session")
      .toArray()[0];
    return row
      ? {
          bytesReceived: row.bytes_received,
          closeCode: row.close_code,
          closeReason: row.close_reason,
          endedAt: row.ended_at,
        }
      : null;
  });
}

/** Waits until the session has finished (its last final stored) and returns its record. */
export async function endedSession(sessionId: string): Promise<StoredSession> {
  await expect
    .poll(async () => (await storedSession(sessionId))?.endedAt ?? null, { timeout: SETTLE_MS })
    .not.toBeNull();
  const record = await storedSession(sessionId);
  if (record === null) throw new Error(`session ${sessionId} has no record`);
  return record;
}

/** A plain GET of the account API (not a handshake) with the account's key. */
export function accountGet(path: string, key: string): Promise<Response> {
  return exports.default.fetch(`http://earshot.test${path}`, {
    headers: { Authorization: `Token ${key}` },
  });
}

/** The finals stored for a session, through the account API (the caller's key must own it). */
export async function storedFinals(key: string, sessionId: string): Promise<StoredFinal[]> {
  const response = await accountGet(`/v1/sessions/${sessionId}/transcript`, key);
  if (response.status !== 200) {
    throw new Error(`transcript of ${sessionId}: ${response.status} ${await response.text()}`);
  }
  return ((await response.json()) as { finals: StoredFinal[] }).finals;
}

/** The ids of the account's sessions that hold a slot, through `GET /v1/sessions`. */
export async function activeSessionIds(key: string): Promise<string[]> {
  const response = await accountGet("/v1/sessions", key);
  if (response.status !== 200) {
    throw new Error(`GET /v1/sessions: ${response.status} ${await response.text()}`);
  }
  return ((await response.json()) as { sessions: { id: string }[] }).sessions.map((s) => s.id);
}

/** The session's row in its account's limiter, or null when it never asked for a slot. */
export async function limiterRow(
  accountId: string,
  sessionId: string,
): Promise<{ endReason: string | null; audioSeconds: number } | null> {
  const stub = env.ACCOUNT_LIMITER.get(env.ACCOUNT_LIMITER.idFromName(accountId));
  return runInDurableObject(stub, (_instance, state) => {
    const row = state.storage.sql
      .exec<{ end_reason: string | null; audio_received: number }>(
        "SELECT end_reason, audio_received FROM sessions WHERE session_id = ?",
        sessionId,
      )
      .toArray()[0];
    return row ? { endReason: row.end_reason, audioSeconds: row.audio_received } : null;
  });
}

/**
 * The session no longer holds a slot, and gave it back itself: its limiter row says "released",
 * not "expired" (a lease that ran out after LEASE_TTL_MS would also free the slot, but 35 s late).
 */
export async function expectSlotReleased(
  account: { accountId: string; key: string },
  sessionId: string,
): Promise<void> {
  await expect
    .poll(async () => (await limiterRow(account.accountId, sessionId))?.endReason ?? null, {
      timeout: SETTLE_MS,
    })
    .toBe("released");
  expect(await activeSessionIds(account.key)).not.toContain(sessionId);
}

/** Messages of a session as comparable across sessions: ids and the creation time removed. */
export function comparable(messages: readonly ServerJson[]): unknown[] {
  return withoutIds([...messages]).map((m) => ({ ...(m as object), created: undefined }));
}

/** Streams `audio` in `frameBytes` frames, then CloseStream; the client, after its close. */
export async function transcribe(
  query: string,
  audio: Uint8Array,
  key: string,
  frameBytes = 640,
): Promise<TestClient> {
  const client = await TestClient.open(query, { key });
  for (const frame of frames(audio, frameBytes)) client.sendAudio(frame);
  const { closed } = await client.finish();
  expect(closed.code).toBe(1000);
  return client;
}

/**
 * A well-behaved session running beside a faulty one: streams `audio` at once, then holds the
 * socket open with KeepAlive (well inside the idle timeout) until it is closed, so it spans the
 * whole fault. `close` sends CloseStream (the session then no longer needs KeepAlive: an ending
 * session has no idle timer); `finish` closes if that was not done yet and returns everything
 * the session received.
 */
export async function witness(
  query: string,
  audio: Uint8Array,
  key: string,
  keepAliveMs = 300,
): Promise<{ client: TestClient; close(): void; finish(): Promise<ServerJson[]> }> {
  const client = await TestClient.open(query, { key });
  for (const frame of frames(audio, 640)) client.sendAudio(frame);
  const timer = setInterval(() => client.sendJson({ type: "KeepAlive" }), keepAliveMs);
  let closing = false;
  const close = () => {
    if (closing) return;
    closing = true;
    clearInterval(timer);
    client.sendJson({ type: "CloseStream" });
  };
  return {
    client,
    close,
    async finish() {
      close();
      await client.waitFor((m) => m.type === "Metadata", "Metadata");
      expect((await client.waitClosed()).code).toBe(1000);
      return client.messages;
    },
  };
}

/**
 * Loads the isolate's Silero VAD by running one short session. The first audio of an isolate loads
 * ORT and the model, blocking the thread for over a second on a busy 2-core machine; a test that
 * holds sessions open with KeepAlive or paced audio in that isolate would see the protocol
 * project's 1.5-s idle timeout fire on its own sessions. Call it in beforeAll.
 */
export async function warmVad(): Promise<void> {
  const { pcm } = await wavFixture("sb_spk1_snt1.wav");
  await transcribe("?encoding=linear16&sample_rate=16000", pcm.subarray(0, 32_000), DEMO_KEY);
}
