import { describe, expect, it } from "vitest";
import { revokeKey, updateAccount } from "../src/accounts/account-store";
import {
  DEFAULT_TOKEN_TTL_SECONDS,
  MAX_TOKEN_TTL_SECONDS,
  signAccessToken,
  TokenSecretError,
  verifyAccessToken,
} from "../src/auth/access-token";
import { base64url } from "../src/auth/api-keys";
import { authenticate, invalidateAccountCache } from "../src/auth/authenticate";
import { readCredential } from "../src/auth/credentials";
import { jsonOf, newAccountWithKey, send, testEnv } from "./setup/accounts-app";

const SECRET = testEnv.EARSHOT_TOKEN_SECRET ?? "";

function grant(key: string, body?: unknown, scheme = "Token"): Promise<Response> {
  return send("/v1/auth/grant", {
    method: "POST",
    headers: { authorization: `${scheme} ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function mint(key: string, body?: unknown): Promise<string> {
  const response = await grant(key, body);
  expect(response.status).toBe(200);
  return String((await jsonOf(response)).access_token);
}

function bearer(token: string) {
  return authenticate(testEnv, { scheme: "bearer", secret: token, subprotocol: "bearer" });
}

function decodePart(part: string): Record<string, unknown> {
  const text = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(text) as Record<string, unknown>;
}

describe("POST /v1/auth/grant", () => {
  it("trades a key for a 30 s token bound to the account (Deepgram's shape)", async () => {
    expect(SECRET.length).toBeGreaterThanOrEqual(32);
    const { accountId, key } = await newAccountWithKey(4);
    const response = await grant(key);
    expect(response.status).toBe(200);
    const body = await jsonOf(response);
    expect(Object.keys(body).sort()).toEqual(["access_token", "expires_in"]);
    expect(body.expires_in).toBe(DEFAULT_TOKEN_TTL_SECONDS);
    const token = String(body.access_token);
    const claims = decodePart(token.split(".")[1] ?? "");
    expect(claims.sub).toBe(accountId);
    expect(Number(claims.exp) - Number(claims.iat)).toBe(30);

    expect(await bearer(token)).toEqual({
      accountId,
      via: "bearer",
      limits: { maxConcurrentSessions: 4, maxSessionSeconds: null },
      keyId: expect.stringMatching(/^key_/),
    });
  });

  it("honours ttl_seconds up to the 600 s cap", async () => {
    const { key } = await newAccountWithKey();
    const response = await grant(key, { ttl_seconds: MAX_TOKEN_TTL_SECONDS });
    expect((await jsonOf(response)).expires_in).toBe(600);
  });

  it.each([
    [{ ttl_seconds: 601 }, "ttl_seconds"],
    [{ ttl_seconds: 0 }, "ttl_seconds"],
    [{ ttl_seconds: "30" }, "ttl_seconds"],
    [{ ttl_seconds: 2.5 }, "ttl_seconds"],
    [{ scope: "admin" }, "scope"],
    [[1], "body"],
  ])("refuses %j with 400 naming '%s'", async (body, field) => {
    const { key } = await newAccountWithKey();
    const response = await grant(key, body);
    expect(response.status).toBe(400);
    const error = await jsonOf(response);
    expect(error).toMatchObject({ err_code: "Bad Request", field });
  });

  it("refuses a missing, unknown or revoked key with 401", async () => {
    const missing = await send("/v1/auth/grant", { method: "POST" });
    expect(missing.status).toBe(401);
    expect((await jsonOf(missing)).err_code).toBe("INVALID_AUTH");
    expect((await grant("esk_unknown")).status).toBe(401);
    const { key, keyId, accountId } = await newAccountWithKey();
    await revokeKey(testEnv.DB, keyId, Date.now());
    invalidateAccountCache(accountId);
    expect((await grant(key)).status).toBe(401);
  });

  it("does not let a token mint tokens or read the account (403)", async () => {
    const { key } = await newAccountWithKey();
    const token = await mint(key);
    const again = await grant(token, undefined, "Bearer");
    expect(again.status).toBe(403);
    expect((await jsonOf(again)).err_code).toBe("FORBIDDEN");
    for (const path of ["/v1/usage", "/v1/sessions", "/v1/sessions/x/transcript"]) {
      const response = await send(path, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(403);
    }
    // A token that does not verify is a 401, not a 403.
    const forged = await send("/v1/usage", { headers: { authorization: "Bearer a.b.c" } });
    expect(forged.status).toBe(401);
  });

  it("answers 503 when the token secret is not configured", async () => {
    const { key } = await newAccountWithKey();
    const response = await send(
      "/v1/auth/grant",
      { method: "POST", headers: { authorization: `Token ${key}` } },
      { ...testEnv, EARSHOT_TOKEN_SECRET: undefined },
    );
    expect(response.status).toBe(503);
    expect((await jsonOf(response)).err_msg).toContain("EARSHOT_TOKEN_SECRET");
  });
});

describe("access tokens", () => {
  it("travel as a WebSocket subprotocol unchanged", async () => {
    const { accountId, key } = await newAccountWithKey();
    const token = await mint(key);
    expect(token).toMatch(/^[A-Za-z0-9_.-]+$/);
    const request = new Request("http://earshot.test/v1/listen", {
      headers: { "Sec-WebSocket-Protocol": `bearer, ${token}` },
    });
    const read = readCredential(request);
    if (!read.ok) throw new Error(read.message);
    expect((await authenticate(testEnv, read.credential))?.accountId).toBe(accountId);
  });

  it("expire at exp and not before", async () => {
    const nowMs = 1_700_000_000_000;
    const token = await signAccessToken(SECRET, {
      accountId: "acc",
      keyId: "key",
      ttlSeconds: 30,
      nowMs,
    });
    expect((await verifyAccessToken(SECRET, token, nowMs + 29_999)).ok).toBe(true);
    expect(await verifyAccessToken(SECRET, token, nowMs + 30_000)).toEqual({
      ok: false,
      reason: "expired",
    });
  });

  it("refuses an expired token in authenticate", async () => {
    const { accountId, keyId } = await newAccountWithKey();
    const stale = await signAccessToken(SECRET, {
      accountId,
      keyId,
      ttlSeconds: 30,
      nowMs: Date.now() - 31_000,
    });
    expect(await bearer(stale)).toBeNull();
    const fresh = await signAccessToken(SECRET, {
      accountId,
      keyId,
      ttlSeconds: 30,
      nowMs: Date.now(),
    });
    expect(await bearer(fresh)).not.toBeNull();
  });

  it("refuses forged tokens", async () => {
    const victim = await newAccountWithKey();
    const attacker = await newAccountWithKey();
    const token = await mint(attacker.key);
    const [header, payload, signature] = token.split(".");
    const claims = decodePart(payload ?? "");
    // Same signature, claims rewritten to another account.
    const swapped = base64url(
      new TextEncoder().encode(JSON.stringify({ ...claims, sub: victim.accountId })),
    );
    expect(await bearer(`${header}.${swapped}.${signature}`)).toBeNull();
    // Signed with another secret.
    const otherSecret = await signAccessToken("another-secret-that-is-long-enough-0123456789", {
      accountId: victim.accountId,
      keyId: victim.keyId,
      ttlSeconds: 30,
      nowMs: Date.now(),
    });
    expect(await bearer(otherSecret)).toBeNull();
    // alg "none", no signature.
    const none = base64url(new TextEncoder().encode(JSON.stringify({ alg: "none", typ: "JWT" })));
    expect(await bearer(`${none}.${payload}.`)).toBeNull();
    // A kid/sub mismatch, correctly signed (the key belongs to another account).
    const mismatched = await signAccessToken(SECRET, {
      accountId: victim.accountId,
      keyId: attacker.keyId,
      ttlSeconds: 30,
      nowMs: Date.now(),
    });
    expect(await bearer(mismatched)).toBeNull();
    for (const garbage of ["", "x", "a.b", "a.b.c.d", `${header}.${payload}`, "é.é.é"]) {
      expect(await bearer(garbage)).toBeNull();
    }
    // And the genuine one works, so the refusals above are about the forgery.
    expect((await bearer(token))?.accountId).toBe(attacker.accountId);
  });

  it("stop working when their key is revoked or their account disabled", async () => {
    const revoked = await newAccountWithKey();
    const token = await mint(revoked.key);
    expect(await bearer(token)).not.toBeNull();
    await revokeKey(testEnv.DB, revoked.keyId, Date.now());
    invalidateAccountCache(revoked.accountId);
    expect(await bearer(token)).toBeNull();

    const disabled = await newAccountWithKey();
    const token2 = await mint(disabled.key);
    await updateAccount(testEnv.DB, disabled.accountId, { disabled: true }, Date.now());
    invalidateAccountCache(disabled.accountId);
    expect(await bearer(token2)).toBeNull();
  });

  it("need a configured secret of at least 32 characters", async () => {
    await expect(verifyAccessToken(undefined, "a.b.c", Date.now())).rejects.toBeInstanceOf(
      TokenSecretError,
    );
    await expect(
      signAccessToken("short", { accountId: "a", keyId: "k", ttlSeconds: 30, nowMs: 0 }),
    ).rejects.toBeInstanceOf(TokenSecretError);
  });
});
