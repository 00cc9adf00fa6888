/**
 * Faults at the handshake, before any socket exists: the account store (D1) failing, and a storm
 * of bad credentials. Each refusal is an HTTP status with a JSON body that says why; none takes a
 * slot or creates a session object; the worker serves the next good client as if nothing happened.
 */
import {
  createExecutionContext,
  listDurableObjectIds,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../src";
import { revokeKey } from "../src/accounts/account-store";
import { signAccessToken } from "../src/auth/access-token";
import { invalidateAccountCache, keyCacheSize } from "../src/auth/authenticate";
import { KEY_CACHE_MAX_ENTRIES } from "../src/auth/key-cache";
import { getUsage } from "../src/limits/limiter-client";
import { headerSafe } from "../src/protocol/http-errors";
import { createAccount } from "./helpers/accounts";
import { DEMO_KEY, handshake } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { comparable, transcribe } from "./helpers/sessions";
import { newAccountWithKey } from "./setup/accounts-app";

const Q = "?encoding=linear16&sample_rate=16000";
/** What a refused credential is told (REFUSED_CREDENTIAL by scheme, or what was malformed). */
const REJECTED = /credentials|API key|access token/i;

let speech: Uint8Array;
let alone: unknown[];

beforeAll(async () => {
  speech = (await wavFixture("sb_spk1_snt1.wav")).pcm;
  alone = comparable((await transcribe(Q, speech, DEMO_KEY)).messages);
});

/** Ids (as strings) of every object of a namespace created so far in this file's storage. */
async function objectIds(namespace: DurableObjectNamespace): Promise<string[]> {
  return (await listDurableObjectIds(namespace)).map((id) => id.toString()).sort();
}

/**
 * A D1 binding that is down: every query rejects the way a lost connection does. Counts the
 * queries, so a test can tell the store was asked (and the answer did not come from a cache).
 */
function unavailableD1(): { db: D1Database; queries: () => number } {
  let queries = 0;
  const fail = () => {
    queries++;
    return Promise.reject(new Error("D1_ERROR: Network connection lost. (simulated outage)"));
  };
  const statement = {
    bind: () => statement,
    first: fail,
    all: fail,
    run: fail,
    raw: fail,
  };
  const db = { prepare: () => statement, batch: fail, exec: fail, dump: fail };
  return { db: db as unknown as D1Database, queries: () => queries };
}

interface ErrorBody {
  err_code: string;
  err_msg: string;
  request_id: string;
}

/** The refusal's body, after checking what every handshake refusal carries. */
async function refusal(response: Response, status: number): Promise<ErrorBody> {
  expect(response.status).toBe(status);
  expect(response.webSocket).toBeNull();
  const body = (await response.json()) as ErrorBody;
  expect(body.request_id).toBe(response.headers.get("dg-request-id"));
  expect(response.headers.get("dg-error")).toBe(headerSafe(body.err_msg));
  expect(body.err_msg.length).toBeGreaterThan(0);
  return body;
}

describe("D1 unavailable at the handshake", () => {
  it("answers 503 'authentication is temporarily unavailable', takes no slot, and remembers nothing of it", async () => {
    const account = await createAccount({ maxConcurrentSessions: 1 });
    const limiterId = env.ACCOUNT_LIMITER.idFromName(account.accountId).toString();
    const sessionsBefore = await objectIds(env.SESSION);
    const down = unavailableD1();

    /** The worker called with this one request's env: D1 down, every other binding real. */
    async function listenWithD1Down(headers: Record<string, string>): Promise<Response> {
      const request = new Request(`http://earshot.test/v1/listen${Q}`, {
        headers: { Upgrade: "websocket", ...headers },
      });
      const context = createExecutionContext();
      const response = await worker.fetch(request, { ...env, DB: down.db }, context);
      await waitOnExecutionContext(context);
      return response;
    }

    // An API key: looked up by its hash (first use, so not cached).
    const byKey = await refusal(
      await listenWithD1Down({ Authorization: `Token ${account.key}` }),
      503,
    );
    // A browser token: its signature checks out without D1, its key's liveness does not.
    const grant = await exports.default.fetch("http://earshot.test/v1/auth/grant", {
      method: "POST",
      headers: { Authorization: `Token ${account.key}` },
    });
    const token = ((await grant.json()) as { access_token: string }).access_token;
    const byToken = await refusal(
      await listenWithD1Down({ "Sec-WebSocket-Protocol": `bearer, ${token}` }),
      503,
    );
    for (const body of [byKey, byToken]) {
      expect(body).toMatchObject({
        err_code: "SERVICE_UNAVAILABLE",
        err_msg: "authentication is temporarily unavailable",
        retry_after: 5,
      });
    }
    expect(down.queries()).toBe(2);

    // No slot was asked for (the account's limiter was never even created), no session object.
    expect(await objectIds(env.ACCOUNT_LIMITER)).not.toContain(limiterId);
    expect(await objectIds(env.SESSION)).toEqual(sessionsBefore);

    // D1 is back: the same key opens a session at once (the failure was not cached as "no such
    // key"), and with the account's only slot, so nothing was held.
    expect(comparable((await transcribe(Q, speech, account.key)).messages)).toEqual(alone);
    expect(await objectIds(env.ACCOUNT_LIMITER)).toContain(limiterId); // so the check above can fail
    expect(await getUsage(env, account.accountId)).toMatchObject({
      activeSessions: 0,
      sessionsTotal: 1,
    });
  });
});

describe("a storm of bad credentials", () => {
  /** Handshakes in flight at once: a client pool hammering the endpoint, not 1 000 at a time. */
  const CONCURRENCY = 25;
  const STORM = 1_000;

  async function inBatches<T>(count: number, attempt: (i: number) => Promise<T>): Promise<T[]> {
    const results: T[] = [];
    for (let start = 0; start < count; start += CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONCURRENCY, count - start) }, (_, j) =>
        attempt(start + j),
      );
      results.push(...(await Promise.all(batch)));
    }
    return results;
  }

  it(`answers ${STORM} of them 401 with a reason each; no slot, no session object, a bounded key cache; a good key is served after`, async () => {
    const good = await createAccount({ maxConcurrentSessions: 1 });
    // Cached before the storm, so the storm's unknown keys push it out of the cache.
    expect(comparable((await transcribe(Q, speech, good.key)).messages)).toEqual(alone);

    const revoked = await newAccountWithKey(5);
    await revokeKey(env.DB, revoked.keyId, Date.now());
    invalidateAccountCache(revoked.accountId);
    const expiring = await newAccountWithKey(5);
    const expired = await signAccessToken(env.EARSHOT_TOKEN_SECRET, {
      accountId: expiring.accountId,
      keyId: expiring.keyId,
      ttlSeconds: 30,
      nowMs: Date.now() - 60_000,
    });
    const unknown = () => `esk_${crypto.randomUUID().replaceAll("-", "")}`;

    /**
     * [kind, headers, what err_msg must say]: a mix of everything a bad client sends. A credential
     * that reads but does not authenticate gets one message for all (an unknown key, a revoked one
     * and an expired token are not told apart); it names what was wrong with it.
     */
    const kinds: [string, () => Record<string, string>, RegExp][] = [
      ["an unknown key", () => ({ Authorization: `Token ${unknown()}` }), REJECTED],
      [
        "an unknown key as subprotocols",
        () => ({ "Sec-WebSocket-Protocol": `token, ${unknown()}` }),
        REJECTED,
      ],
      ["no credentials", () => ({}), /no credentials/],
      ["a malformed header", () => ({ Authorization: "Token" }), /must be 'Token <api key>'/],
      [
        "a malformed header",
        () => ({ Authorization: `Token ${unknown()} extra` }),
        /must be 'Token <api key>'/,
      ],
      [
        "a wrong scheme",
        () => ({ Authorization: "Basic dXNlcjpwYXNz" }),
        /must be 'Token <api key>'/,
      ],
      [
        "a wrong subprotocol scheme",
        () => ({ "Sec-WebSocket-Protocol": `apikey, ${good.key}` }),
        /must be 'token, <api key>'/,
      ],
      [
        "an API key sent as a bearer token",
        () => ({ Authorization: `Bearer ${good.key}` }),
        REJECTED,
      ],
      ["an expired token", () => ({ Authorization: `Bearer ${expired}` }), REJECTED],
      [
        "an expired token as subprotocols",
        () => ({ "Sec-WebSocket-Protocol": `bearer, ${expired}` }),
        REJECTED,
      ],
      ["a revoked key", () => ({ Authorization: `Token ${revoked.key}` }), REJECTED],
    ];

    const limitersBefore = await objectIds(env.ACCOUNT_LIMITER);
    const sessionsBefore = await objectIds(env.SESSION);
    const outcomes = await inBatches(STORM, async (i) => {
      const [kind, headers, says] = kinds[i % kinds.length] ?? kinds[0] ?? ["", () => ({}), /./];
      const response = await handshake(Q, { key: null, headers: headers() });
      const body = (await response.json()) as ErrorBody;
      return { kind, says, response, body };
    });

    for (const { kind, says, response, body } of outcomes) {
      expect(response.status, kind).toBe(401);
      expect(response.webSocket).toBeNull();
      expect(body.err_code, kind).toBe("INVALID_AUTH");
      expect(body.err_msg, kind).toMatch(says);
      expect(body.request_id).toBe(response.headers.get("dg-request-id"));
      expect(response.headers.get("www-authenticate")).toMatch(/Token.*Bearer/);
    }
    expect(new Set(outcomes.map((o) => o.kind)).size).toBe(kinds.length - 1); // two "malformed"

    // Nothing was admitted or started: no limiter and no session object came into being.
    expect(await objectIds(env.ACCOUNT_LIMITER)).toEqual(limitersBefore);
    expect(await objectIds(env.SESSION)).toEqual(sessionsBefore);

    // More distinct unknown keys than the cache holds: it stays at its cap, never above.
    await inBatches(KEY_CACHE_MAX_ENTRIES, async () => {
      const response = await handshake(Q, { key: unknown() });
      expect(response.status).toBe(401);
      await response.body?.cancel();
    });
    expect(keyCacheSize()).toBe(KEY_CACHE_MAX_ENTRIES);

    // The worker still serves a good key (read from D1 again: the storm evicted it), with the
    // account's only slot — so none of the storm held one.
    expect(comparable((await transcribe(Q, speech, good.key)).messages)).toEqual(alone);
  });
});
