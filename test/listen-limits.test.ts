/**
 * Per-account concurrency at the handshake, as clients meet it: the N+1th simultaneous connection
 * gets HTTP 429 before any upgrade; closing one session frees its slot; a session that dies without
 * closing frees its slot within the lease bound; two accounts never affect each other.
 */
import {
  abortAllDurableObjects,
  createExecutionContext,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src";
import { createAccount } from "./helpers/accounts";
import { handshake, TestClient } from "./helpers/client";

const Q = "?encoding=linear16&sample_rate=16000";

async function openAll(key: string, count: number): Promise<Response[]> {
  return Promise.all(Array.from({ length: count }, () => handshake(Q, { key })));
}

function admitted(responses: Response[]): TestClient[] {
  return responses
    .filter((r) => r.status === 101 && r.webSocket !== null)
    .map((r) => new TestClient(r.webSocket as WebSocket, r.headers.get("dg-request-id") ?? ""));
}

describe("concurrency limit at the handshake", () => {
  it("admits exactly N of N+5 simultaneous connections; the rest get 429 with the limit", async () => {
    const { key } = await createAccount({ maxConcurrentSessions: 3 });
    const responses = await openAll(key, 8);
    const clients = admitted(responses);
    expect(clients.length).toBe(3);
    const refused = responses.filter((r) => r.status === 429);
    expect(refused.length).toBe(5);
    for (const response of refused) {
      const body = (await response.json()) as Record<string, unknown>;
      expect(body.err_code).toBe("TOO_MANY_REQUESTS");
      expect(body.limit).toBe(3);
      expect(body.active).toBe(3);
      expect(response.headers.get("dg-error")).toContain("too many concurrent sessions");
      expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    // Closing one frees exactly one slot.
    await clients[0]?.finish();
    await expect
      .poll(async () => (await handshake(Q, { key })).status, { timeout: 5_000 })
      .toBe(101);
    for (const client of clients.slice(1)) await client.finish();
  });

  it("keeps two accounts at their limits independent", async () => {
    const a = await createAccount({ maxConcurrentSessions: 2 });
    const b = await createAccount({ maxConcurrentSessions: 2 });
    const fromA = admitted(await openAll(a.key, 4));
    const fromB = admitted(await openAll(b.key, 4));
    expect(fromA.length).toBe(2);
    expect(fromB.length).toBe(2);
    for (const client of [...fromA, ...fromB]) await client.finish();
  });

  it("frees the slot of a session that dies without closing, once its lease expires", async () => {
    const { accountId, key } = await createAccount({ maxConcurrentSessions: 1 });
    const [first] = admitted(await openAll(key, 1));
    expect(first).toBeDefined();
    expect((await handshake(Q, { key })).status).toBe(429);
    await abortAllDurableObjects(); // the session object dies: no close, no release
    // Stand in for the passage of LEASE_TTL_MS: expire the lease, then run the limiter's alarm.
    const limiter = env.ACCOUNT_LIMITER.get(env.ACCOUNT_LIMITER.idFromName(accountId));
    await runInDurableObject(limiter, (_instance, state) => {
      state.storage.sql.exec("UPDATE sessions SET lease_expires_at = ?", Date.now() - 1);
    });
    await runDurableObjectAlarm(limiter);
    const next = await handshake(Q, { key });
    expect(next.status).toBe(101);
    next.webSocket?.accept();
    next.webSocket?.close(1000);
  });
});

describe("authentication the service cannot perform", () => {
  it("answers 503, not 401, when a bearer token cannot be checked (no token secret configured)", async () => {
    // The worker called directly, with an env whose token secret is unset.
    const request = new Request(`http://earshot.test/v1/listen${Q}`, {
      headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": "bearer, a.b.c" },
    });
    const response = await worker.fetch(
      request,
      { ...env, EARSHOT_TOKEN_SECRET: "" },
      createExecutionContext(),
    );
    expect(response.status).toBe(503);
    expect(((await response.json()) as { err_code: string }).err_code).toBe("SERVICE_UNAVAILABLE");
  });
});
