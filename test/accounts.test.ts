import { describe, expect, it } from "vitest";
import {
  createAccount,
  createKey,
  findKeyByHash,
  revokeKey,
  updateAccount,
} from "../src/accounts/account-store";
import { DEMO_ACCOUNT_ID, DEMO_KEY } from "../src/accounts/demo-seed";
import { API_KEY_PREFIX, hashApiKey } from "../src/auth/api-keys";
import { authenticate, clearKeyCache, invalidateAccountCache } from "../src/auth/authenticate";
import type { Credential } from "../src/auth/credentials";
import { KEY_CACHE_TTL_MS, TtlCache } from "../src/auth/key-cache";
import { newAccountWithKey, testEnv } from "./setup/accounts-app";

function tokenCredential(secret: string): Credential {
  return { scheme: "token", secret, subprotocol: null };
}

/** Every text value in every user table of the D1 database. */
async function allStoredText(): Promise<string[]> {
  const tables = await testEnv.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
  ).all<{ name: string }>();
  const values: string[] = [];
  for (const { name } of tables.results) {
    const rows = await testEnv.DB.prepare(`SELECT * FROM "${name}"`).all<Record<string, unknown>>();
    for (const row of rows.results) {
      for (const value of Object.values(row)) if (typeof value === "string") values.push(value);
    }
  }
  return values;
}

describe("API keys in D1", () => {
  it("stores only the SHA-256 of a key, never the key", async () => {
    const { key, keyId } = await newAccountWithKey();
    expect(key.startsWith(API_KEY_PREFIX)).toBe(true);
    // 32 random bytes in base64url = 43 characters.
    expect(key.length).toBe(API_KEY_PREFIX.length + 43);

    const row = await testEnv.DB.prepare("SELECT * FROM api_keys WHERE id = ?")
      .bind(keyId)
      .first<Record<string, unknown>>();
    expect(row?.key_hash).toBe(await hashApiKey(key));
    expect(Object.values(row ?? {})).not.toContain(key);

    const stored = await allStoredText();
    expect(stored.length).toBeGreaterThan(0);
    const secretPart = key.slice(API_KEY_PREFIX.length);
    expect(stored.filter((value) => value.includes(secretPart))).toEqual([]);
    // Nor the demo key, which is seeded the same way.
    expect(stored.filter((value) => value.includes(DEMO_KEY))).toEqual([]);
  });

  it("generates a different key every time", async () => {
    const a = await newAccountWithKey();
    const b = await newAccountWithKey();
    expect(a.key).not.toBe(b.key);
    expect(a.accountId).not.toBe(b.accountId);
  });

  it("refuses a key for an account that does not exist", async () => {
    expect(await createKey(testEnv.DB, "acc_missing", null, Date.now())).toBeNull();
  });

  it("keeps the first revocation time when revoked twice", async () => {
    const { keyId } = await newAccountWithKey();
    const first = await revokeKey(testEnv.DB, keyId, 1_000);
    const second = await revokeKey(testEnv.DB, keyId, 2_000);
    expect(first?.revokedAt).toBe(1_000);
    expect(second?.revokedAt).toBe(1_000);
    expect(await revokeKey(testEnv.DB, "key_missing", 3_000)).toBeNull();
  });
});

describe("authenticate with API keys", () => {
  it("resolves a key to its account and limits", async () => {
    const { accountId, key, keyId } = await newAccountWithKey(7, 120);
    expect(await authenticate(testEnv, tokenCredential(key))).toEqual({
      accountId,
      via: "key",
      limits: { maxConcurrentSessions: 7, maxSessionSeconds: 120 },
      keyId,
    });
  });

  it("knows the seeded demo account and key", async () => {
    const principal = await authenticate(testEnv, tokenCredential(DEMO_KEY));
    expect(principal?.accountId).toBe(DEMO_ACCOUNT_ID);
    expect(principal?.via).toBe("key");
  });

  it("refuses unknown, revoked and disabled-account keys", async () => {
    expect(await authenticate(testEnv, tokenCredential("esk_not-a-real-key"))).toBeNull();

    const revoked = await newAccountWithKey();
    await revokeKey(testEnv.DB, revoked.keyId, Date.now());
    invalidateAccountCache(revoked.accountId);
    expect(await authenticate(testEnv, tokenCredential(revoked.key))).toBeNull();

    const disabled = await newAccountWithKey();
    await updateAccount(testEnv.DB, disabled.accountId, { disabled: true }, Date.now());
    invalidateAccountCache(disabled.accountId);
    expect(await authenticate(testEnv, tokenCredential(disabled.key))).toBeNull();
  });

  it("serves a revoked key from the isolate cache until the entry is dropped", async () => {
    const { accountId, key, keyId } = await newAccountWithKey();
    expect(await authenticate(testEnv, tokenCredential(key))).not.toBeNull();
    // Revoked behind this isolate's back (as by another isolate): the cached entry still answers...
    await revokeKey(testEnv.DB, keyId, Date.now());
    expect((await authenticate(testEnv, tokenCredential(key)))?.accountId).toBe(accountId);
    // ...until it expires (KEY_CACHE_TTL_MS, tested on the cache below) or is dropped.
    clearKeyCache();
    expect(await authenticate(testEnv, tokenCredential(key))).toBeNull();
  });

  it("does not cache what a lookup read before the revocation that dropped the cache", async () => {
    clearKeyCache();
    const { accountId, key, keyId } = await newAccountWithKey();
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // D1 as a slow read sees it: the row is read now (live), the answer arrives after the gate.
    const slowDb = {
      prepare: (sql: string) => ({
        bind: (...args: unknown[]) => ({
          first: async () => {
            const row = await testEnv.DB.prepare(sql)
              .bind(...args)
              .first();
            await gate;
            return row;
          },
        }),
      }),
    } as unknown as D1Database;
    const inFlight = authenticate({ ...testEnv, DB: slowDb }, tokenCredential(key));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The admin route: revoke in D1, then drop this isolate's entries for the account.
    await revokeKey(testEnv.DB, keyId, Date.now());
    invalidateAccountCache(accountId);
    release();
    // The in-flight lookup answers what it read (the key was live then)...
    expect((await inFlight)?.accountId).toBe(accountId);
    // ...but the next one reads D1 again instead of that stale answer.
    expect(await authenticate(testEnv, tokenCredential(key))).toBeNull();
  });

  it("finds keys by hash with their account's limits", async () => {
    const { accountId, key } = await newAccountWithKey(2);
    const record = await findKeyByHash(testEnv.DB, await hashApiKey(key));
    expect(record).toMatchObject({
      accountId,
      keyRevoked: false,
      accountDisabled: false,
      limits: { maxConcurrentSessions: 2, maxSessionSeconds: null },
    });
  });
});

describe("account store", () => {
  it("creates, reads back and patches an account", async () => {
    const account = await createAccount(
      testEnv.DB,
      { name: "Acme", maxConcurrentSessions: 10, maxSessionSeconds: null },
      5_000,
    );
    expect(account).toMatchObject({ name: "Acme", maxConcurrentSessions: 10, createdAt: 5_000 });
    expect(account.id).toMatch(/^acc_[A-Za-z0-9_-]{16}$/);
    const patched = await updateAccount(
      testEnv.DB,
      account.id,
      { maxConcurrentSessions: 2, maxSessionSeconds: 60, disabled: true },
      6_000,
    );
    expect(patched).toMatchObject({
      maxConcurrentSessions: 2,
      maxSessionSeconds: 60,
      disabledAt: 6_000,
      name: "Acme",
    });
    const enabled = await updateAccount(testEnv.DB, account.id, { disabled: false }, 7_000);
    expect(enabled?.disabledAt).toBeNull();
    expect(await updateAccount(testEnv.DB, "acc_missing", { name: "x" }, 0)).toBeNull();
  });
});

describe("key cache", () => {
  it("answers for KEY_CACHE_TTL_MS after a lookup and not a millisecond longer", () => {
    let now = 1_000_000;
    const cache = new TtlCache<string>(KEY_CACHE_TTL_MS, 10, () => now);
    cache.set("k", "v", "acc");
    now += KEY_CACHE_TTL_MS - 1;
    expect(cache.get("k")).toBe("v");
    now += 1;
    expect(cache.get("k")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("drops the oldest entry at its cap and entries by account tag", () => {
    const cache = new TtlCache<number>(KEY_CACHE_TTL_MS, 3, () => 0);
    cache.set("a", 1, "one");
    cache.set("b", 2, "two");
    cache.set("c", 3, "one");
    cache.set("d", 4, "two");
    expect(cache.size).toBe(3);
    expect(cache.get("a")).toBeUndefined();
    cache.deleteTag("two");
    expect([cache.get("b"), cache.get("c"), cache.get("d")]).toEqual([undefined, 3, undefined]);
  });
});
