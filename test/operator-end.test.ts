/**
 * An operator stops an account's use at once (session/operator-end.ts): disabling the account
 * ends all its live sessions, revoking a key ends the sessions opened with that key (directly or
 * through a token it minted) and no other, and DELETE /admin/sessions/:id ends one. Each ended
 * session gets the finals of what it sent, then Metadata, then close 1008 "AUTH-0001: <why>", and
 * its slot comes back; a reconnect with the same credential is refused 401.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { revokeKey, updateAccount } from "../src/accounts/account-store";
import { parseListenOptions } from "../src/protocol/options";
import type { OperatorEndTarget } from "../src/session/operator-end";
import { encodeSessionStart, SESSION_START_HEADER } from "../src/session/session-start";
import { handshake, TestClient } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { expectSlotReleased, limiterRow, warmVad } from "./helpers/sessions";
import { ADMIN_TOKEN, adminHeaders, jsonOf, newAccountWithKey, send } from "./setup/accounts-app";

const Q = "?encoding=linear16&sample_rate=16000";

// The sessions below idle on KeepAlive: the VAD's first load must not block them past 1.5 s.
beforeAll(warmVad);

async function speaking(credential: { key?: string; bearer?: string }): Promise<TestClient> {
  const { pcm } = await wavFixture("sb_spk1_snt1.wav");
  const client =
    credential.bearer === undefined
      ? await TestClient.open(Q, { key: credential.key ?? null })
      : await TestClient.open(Q, {
          key: null,
          headers: { "Sec-WebSocket-Protocol": `bearer, ${credential.bearer}` },
        });
  client.sendAudio(pcm);
  // Held open: KeepAlive until the test ends it some way.
  const timer = setInterval(() => {
    if (client.isClosed) clearInterval(timer);
    else client.sendJson({ type: "KeepAlive" });
  }, 300);
  return client;
}

/** Metadata, then 1008 AUTH-0001 naming `why`, with the finals of the audio before them. */
async function expectEndedByOperator(client: TestClient, why: string): Promise<void> {
  const closed = await client.waitClosed();
  expect(closed).toEqual({ code: 1008, reason: `AUTH-0001: ${why}` });
  const types = client.messages.map((m) => m.type);
  expect(types.at(-1)).toBe("Metadata");
  const finals = client
    .finals()
    .filter((m) => JSON.stringify(m.channel).includes('"transcript":"at'));
  expect(finals.length).toBeGreaterThan(0);
}

async function mint(key: string): Promise<string> {
  const response = await send("/v1/auth/grant", {
    method: "POST",
    headers: { authorization: `Token ${key}`, "content-type": "application/json" },
    body: "{}",
  });
  expect(response.status).toBe(200);
  return String((await jsonOf(response)).access_token);
}

describe("disabling an account", () => {
  it("ends every live session of the account, and only of that account", async () => {
    const account = await newAccountWithKey(3);
    const other = await newAccountWithKey(3);
    const first = await speaking({ key: account.key });
    const second = await speaking({ key: account.key });
    const bystander = await speaking({ key: other.key });

    const response = await send(`/admin/accounts/${account.accountId}`, {
      method: "PATCH",
      headers: adminHeaders(),
      body: JSON.stringify({ disabled: true }),
    });
    expect(response.status).toBe(200);
    expect(((await jsonOf(response)).ended_sessions as string[]).sort()).toEqual(
      [first.sessionId, second.sessionId].sort(),
    );
    for (const client of [first, second]) {
      await expectEndedByOperator(client, "account disabled");
      // Its key no longer reads the account API: the limiter says the slot was given back.
      await expect
        .poll(async () => (await limiterRow(account.accountId, client.sessionId))?.endReason)
        .toBe("released");
    }
    expect((await handshake(Q, { key: account.key })).status).toBe(401);
    expect(bystander.isClosed).toBe(false);
    expect((await bystander.finish()).closed.code).toBe(1000);
  });

  it("ends the sessions it can reach when one session's object fails, and lists that one", async () => {
    const account = await newAccountWithKey(3);
    const reached = await speaking({ key: account.key });
    const failing = await speaking({ key: account.key });
    await expect
      .poll(async () => (await limiterRow(account.accountId, failing.sessionId))?.endReason)
      .toBe(null);
    // The SESSION namespace as the admin route sees it: the failing session's object throws.
    const sessions = {
      idFromName: (name: string) => env.SESSION.idFromName(name),
      get: (id: DurableObjectId) =>
        id.equals(env.SESSION.idFromName(failing.sessionId))
          ? { endByOperator: () => Promise.reject(new Error("object reset")) }
          : env.SESSION.get(id),
    };
    const response = await send(
      `/admin/accounts/${account.accountId}`,
      { method: "PATCH", headers: adminHeaders(), body: JSON.stringify({ disabled: true }) },
      { ...env, SESSION: sessions as unknown as typeof env.SESSION },
    );
    expect(response.status).toBe(200);
    const body = await jsonOf(response);
    expect(body.ended_sessions).toEqual([reached.sessionId]);
    expect(body.unreached_sessions).toEqual([failing.sessionId]);
    await expectEndedByOperator(reached, "account disabled");
    failing.sendJson({ type: "CloseStream" });
    await failing.waitClosed();
  });
});

describe("revoking a key", () => {
  it("ends the sessions opened with it, through a token too, and leaves the account's other key's", async () => {
    const account = await newAccountWithKey(3);
    const created = await send(`/admin/accounts/${account.accountId}/keys`, {
      method: "POST",
      headers: adminHeaders(),
      body: JSON.stringify({ label: "second" }),
    });
    const second = String((await jsonOf(created)).key);
    const byKey = await speaking({ key: account.key });
    const byToken = await speaking({ bearer: await mint(account.key) });
    const bySecond = await speaking({ key: second });

    const revoked = await send(`/admin/keys/${account.keyId}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(revoked.status).toBe(204);
    await expectEndedByOperator(byKey, "API key revoked");
    await expectEndedByOperator(byToken, "API key revoked");
    expect(bySecond.isClosed).toBe(false);
    expect((await bySecond.finish()).closed.code).toBe(1000);
  });
});

describe("DELETE /admin/sessions/:id", () => {
  it("ends that live session (204), and answers 404 once it has ended", async () => {
    const account = await newAccountWithKey(2);
    const client = await speaking({ key: account.key });
    const end = () =>
      send(`/admin/sessions/${client.sessionId}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
    expect((await end()).status).toBe(204);
    await expectEndedByOperator(client, "ended by an operator");
    await expectSlotReleased(account, client.sessionId);
    expect((await end()).status).toBe(404);
    const unauthenticated = await send(`/admin/sessions/${crypto.randomUUID()}`, {
      method: "DELETE",
    });
    expect(unauthenticated.status).toBe(401);
  });
});

describe("a session still starting (between its handshake and going live)", () => {
  /**
   * Its session object asked to start as the worker asks after the handshake, whose key check may
   * have come from a cache up to 5 s old: here the revocation is in D1 and the start is not.
   */
  function connect(account: { accountId: string; keyId: string }) {
    const parsed = parseListenOptions(new URLSearchParams(Q.slice(1)));
    if (!parsed.ok) throw new Error(parsed.message);
    const sessionId = crypto.randomUUID();
    const stub = env.SESSION.get(env.SESSION.idFromName(sessionId));
    const start = {
      sessionId,
      accountId: account.accountId,
      keyId: account.keyId,
      options: parsed.options,
      subprotocol: null,
      maxSessionSeconds: null,
      createdAt: Date.now(),
    };
    const response = stub.fetch("https://session.internal/connect", {
      headers: { Upgrade: "websocket", [SESSION_START_HEADER]: encodeSessionStart(start) },
    });
    return { stub: stub as unknown as OperatorEndTarget, response };
  }

  async function expectRefused(response: Promise<Response>, why: string): Promise<void> {
    const answer = await response;
    expect(answer.status).toBe(401);
    expect(await answer.text()).toContain(`${why} while the session started`);
  }

  it("does not go live with a key revoked, or an account disabled, since its handshake", async () => {
    const revoked = await newAccountWithKey(2);
    await revokeKey(env.DB, revoked.keyId, Date.now());
    await expectRefused(connect(revoked).response, "API key revoked");
    const disabled = await newAccountWithKey(2);
    await updateAccount(env.DB, disabled.accountId, { disabled: true }, Date.now());
    await expectRefused(connect(disabled).response, "account disabled");
    const fine = await newAccountWithKey(2);
    const live = await connect(fine).response;
    expect(live.status).toBe(101);
    live.webSocket?.accept();
    live.webSocket?.close(1000);
  });

  it("remembers an operator's end that reaches it while it starts, and refuses to go live", async () => {
    const account = await newAccountWithKey(2);
    const { stub, response } = connect(account);
    // Delivered while the start awaits its D1 read: nothing is live yet to end.
    const ended = await stub.endByOperator({ keyId: account.keyId, reason: "API key revoked" });
    expect(ended).toBe(true);
    await expectRefused(response, "API key revoked");
  });
});
