import { describe, expect, it } from "vitest";
import type { AccountsEnv } from "../src/accounts/http";
import { acquireSlot, releaseSlot, renewSlot } from "../src/limits/limiter-client";
import type { StoredFinal, TranscriptSource } from "../src/routes/account-api";
import { jsonOf, newAccountWithKey, send, testEnv } from "./setup/accounts-app";

function withKey(key: string): RequestInit {
  return { headers: { authorization: `Token ${key}` } };
}

/**
 * A stand-in SESSION namespace at the seam the session DO will fill: each session id maps to its
 * owner and finals; getTranscript answers null for anyone else, as the real DO does.
 */
function fakeSessions(sessions: Record<string, { owner: string; finals: StoredFinal[] }>): {
  bindings: AccountsEnv;
  calls: string[];
} {
  const calls: string[] = [];
  const namespace = {
    idFromName: (name: string) => ({ name }),
    get: (id: { name: string }): TranscriptSource => ({
      async getTranscript(accountId) {
        calls.push(`${id.name}:${accountId}`);
        const session = sessions[id.name];
        if (session === undefined || session.owner !== accountId) return null;
        return { sessionId: id.name, finals: session.finals };
      },
    }),
  };
  return {
    bindings: { ...testEnv, SESSION: namespace as unknown as DurableObjectNamespace },
    calls,
  };
}

describe("GET /v1/usage", () => {
  it("reports the account's own sessions, limit and audio seconds", async () => {
    const mine = await newAccountWithKey(3, 900);
    const theirs = await newAccountWithKey(2);
    await acquireSlot(testEnv, mine.accountId, "m1", 3);
    await acquireSlot(testEnv, mine.accountId, "m2", 3);
    await renewSlot(testEnv, mine.accountId, "m1", {
      audioSecondsReceived: 12.5,
      audioSecondsTranscribed: 10,
      startedAt: 0,
    });
    await releaseSlot(testEnv, mine.accountId, "m2", {
      audioSecondsReceived: 3,
      audioSecondsTranscribed: 3,
      startedAt: 0,
    });
    await acquireSlot(testEnv, theirs.accountId, "t1", 2);

    const response = await send("/v1/usage", withKey(mine.key));
    expect(response.status).toBe(200);
    expect(await jsonOf(response)).toEqual({
      account_id: mine.accountId,
      active_sessions: 1,
      limit: 3,
      max_session_seconds: 900,
      sessions_total: 2,
      audio_seconds_received: 15.5,
      audio_seconds_transcribed: 13,
    });
    const other = await jsonOf(await send("/v1/usage", withKey(theirs.key)));
    expect(other).toMatchObject({
      account_id: theirs.accountId,
      active_sessions: 1,
      sessions_total: 1,
      audio_seconds_received: 0,
    });
  });

  it("refuses a missing or unknown key with 401", async () => {
    expect((await send("/v1/usage")).status).toBe(401);
    expect((await send("/v1/usage", withKey("esk_nope"))).status).toBe(401);
  });
});

describe("GET /v1/sessions", () => {
  it("lists only the caller's active sessions", async () => {
    const mine = await newAccountWithKey(5);
    const theirs = await newAccountWithKey(5);
    await acquireSlot(testEnv, mine.accountId, "mine-a", 5);
    await acquireSlot(testEnv, mine.accountId, "mine-b", 5);
    await releaseSlot(testEnv, mine.accountId, "mine-b", {
      audioSecondsReceived: 1,
      audioSecondsTranscribed: 1,
      startedAt: 0,
    });
    await acquireSlot(testEnv, theirs.accountId, "theirs-a", 5);

    const body = (await jsonOf(await send("/v1/sessions", withKey(mine.key)))) as {
      sessions: Array<Record<string, unknown>>;
    };
    expect(body.sessions.map((s) => s.id)).toEqual(["mine-a"]);
    expect(body.sessions[0]).toMatchObject({
      audio_seconds_received: 0,
      audio_seconds_transcribed: 0,
    });
    expect(Number.isNaN(Date.parse(String(body.sessions[0]?.started)))).toBe(false);

    const other = (await jsonOf(await send("/v1/sessions", withKey(theirs.key)))) as {
      sessions: Array<Record<string, unknown>>;
    };
    expect(other.sessions.map((s) => s.id)).toEqual(["theirs-a"]);
  });
});

describe("GET /v1/sessions/:id/transcript", () => {
  it("returns the stored finals of the caller's session, and 404 for anyone else's", async () => {
    const mine = await newAccountWithKey();
    const theirs = await newAccountWithKey();
    const finals = [
      { start: 0, end: 1.5, transcript: "ask not" },
      { start: 1.5, end: 3.25, transcript: "what your country can do for you" },
    ];
    const { bindings, calls } = fakeSessions({
      "session-1": { owner: mine.accountId, finals },
    });

    const response = await send("/v1/sessions/session-1/transcript", withKey(mine.key), bindings);
    expect(response.status).toBe(200);
    expect(await jsonOf(response)).toEqual({ session_id: "session-1", finals });

    const stolen = await send("/v1/sessions/session-1/transcript", withKey(theirs.key), bindings);
    expect(stolen.status).toBe(404);
    expect((await jsonOf(stolen)).err_code).toBe("NOT_FOUND");
    const unknown = await send("/v1/sessions/session-9/transcript", withKey(mine.key), bindings);
    expect(unknown.status).toBe(404);
    // Ownership was asked of the session itself, with the caller's account id.
    expect(calls).toEqual([
      `session-1:${mine.accountId}`,
      `session-1:${theirs.accountId}`,
      `session-9:${mine.accountId}`,
    ]);
  });

  it("404s an id no session could have without waking a DO", async () => {
    const mine = await newAccountWithKey();
    const { bindings, calls } = fakeSessions({});
    const longId = "x".repeat(200);
    const response = await send(`/v1/sessions/${longId}/transcript`, withKey(mine.key), bindings);
    expect(response.status).toBe(404);
    expect(calls).toEqual([]);
  });

  it("answers 503 when the session cannot be reached", async () => {
    const mine = await newAccountWithKey();
    const broken = {
      idFromName: (name: string) => name,
      get: () => ({ getTranscript: () => Promise.reject(new Error("DO reset")) }),
    };
    const response = await send("/v1/sessions/s/transcript", withKey(mine.key), {
      ...testEnv,
      SESSION: broken as unknown as DurableObjectNamespace,
    });
    expect(response.status).toBe(503);
  });

  it("answers 503 without the limiter's own error text when the limiter fails", async () => {
    const mine = await newAccountWithKey();
    const internal = "SQLITE_INTERNAL: no such table: sessions";
    const failing = {
      idFromName: (name: string) => name,
      get: () => ({
        usage: () => Promise.reject(new Error(internal)),
        sessions: () => Promise.reject(new Error(internal)),
      }),
    };
    for (const path of ["/v1/usage", "/v1/sessions"]) {
      const response = await send(path, withKey(mine.key), {
        ...testEnv,
        ACCOUNT_LIMITER: failing as unknown as typeof testEnv.ACCOUNT_LIMITER,
      });
      expect(response.status).toBe(503);
      const body = await response.text();
      expect(body).toContain("the account's session limiter is unavailable, retry");
      expect(body).not.toContain("SQLITE");
    }
  });
});
