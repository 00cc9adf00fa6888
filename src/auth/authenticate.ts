/**
 * Who is calling. The handshake and the HTTP API depend only on `authenticate`; behind it, API keys
 * are looked up in D1 by their SHA-256 and tokens are verified by HMAC, then checked against D1 so
 * that revoking the minting key or disabling the account ends them too.
 *
 * Lookups go through a per-isolate cache (key-cache.ts): a revoked key, a disabled account or a
 * changed limit takes effect everywhere within KEY_CACHE_TTL_MS (5 s), and at once in the isolate
 * that served the admin call.
 */
import {
  type AccountLimits,
  findKeyByHash,
  findKeyById,
  type KeyRecord,
} from "../accounts/account-store";
import { verifyAccessToken } from "./access-token";
import { hashApiKey } from "./api-keys";
import type { Credential } from "./credentials";
import { KEY_CACHE_MAX_ENTRIES, KEY_CACHE_TTL_MS, TtlCache } from "./key-cache";

export interface Principal {
  accountId: string;
  via: "key" | "bearer";
  limits: AccountLimits;
  /** The API key behind the credential (a token's is the key that minted it). */
  keyId: string;
}

export interface AuthEnv {
  /** The account store (D1, `binding = "DB"`). */
  DB: D1Database;
  /** HMAC secret for access tokens, at least 32 characters; unset = bearer tokens are refused. */
  EARSHOT_TOKEN_SECRET?: string;
}

/** A key that authenticates, with the id needed to bind a token to it. */
export interface KeyPrincipal extends Principal {
  via: "key";
}

/**
 * Cached lookups, keyed `hash:<sha256>` or `kid:<key id>`, tagged with the account id so an admin
 * change can drop them. A null value (no such key) is cached too: a client retrying a bad key in a
 * loop costs D1 one read per TTL, and a new key cannot already be cached (it is 256 random bits).
 */
const keyCache = new TtlCache<KeyRecord | null>(KEY_CACHE_TTL_MS, KEY_CACHE_MAX_ENTRIES);
/**
 * Bumped by every invalidation: a D1 read that began before one may hold what the admin change
 * replaced, so its result is used once but not cached (it would otherwise undo the invalidation
 * for KEY_CACHE_TTL_MS).
 */
let invalidations = 0;

/** Drops this isolate's cached lookups for an account (after an admin change to it or its keys). */
export function invalidateAccountCache(accountId: string): void {
  invalidations += 1;
  keyCache.deleteTag(accountId);
}

/** Empties this isolate's cache (tests that change D1 behind the admin API's back). */
export function clearKeyCache(): void {
  invalidations += 1;
  keyCache.clear();
}

/** Entries in this isolate's cache: at most KEY_CACHE_MAX_ENTRIES, whatever callers send. */
export function keyCacheSize(): number {
  return keyCache.size;
}

async function lookup(
  cacheKey: string,
  load: () => Promise<KeyRecord | null>,
): Promise<KeyRecord | null> {
  const cached = keyCache.get(cacheKey);
  if (cached !== undefined) return cached;
  const before = invalidations;
  const record = await load();
  if (invalidations === before) keyCache.set(cacheKey, record, record?.accountId ?? "");
  return record;
}

function isLive(record: KeyRecord | null): record is KeyRecord {
  return record !== null && !record.keyRevoked && !record.accountDisabled;
}

/**
 * Resolves an API key (the `Token` scheme) to its account, or null when it is unknown, revoked or
 * its account is disabled. Rejects when D1 cannot be reached (callers answer 503).
 */
export async function authenticateKey(env: AuthEnv, key: string): Promise<KeyPrincipal | null> {
  const keyHash = await hashApiKey(key);
  const record = await lookup(`hash:${keyHash}`, () => findKeyByHash(env.DB, keyHash));
  if (!isLive(record)) return null;
  return { accountId: record.accountId, via: "key", limits: record.limits, keyId: record.keyId };
}

/**
 * Resolves a credential to an account, or null when it is not valid: an unknown or revoked key; a
 * forged, malformed or expired token; a token whose key was revoked or whose account is disabled.
 * Rejects when D1 cannot be reached, or for a bearer token when EARSHOT_TOKEN_SECRET is not
 * configured (TokenSecretError): both are the service's fault, so callers answer 503, not 401.
 */
export async function authenticate(
  env: AuthEnv,
  credential: Credential,
): Promise<Principal | null> {
  if (credential.scheme === "token") {
    const principal = await authenticateKey(env, credential.secret);
    if (principal === null) return null;
    return principal;
  }
  const verified = await verifyAccessToken(env.EARSHOT_TOKEN_SECRET, credential.secret, Date.now());
  if (!verified.ok) return null;
  const { kid, sub } = verified.claims;
  const record = await lookup(`kid:${kid}`, () => findKeyById(env.DB, kid));
  // The key must still be live and still belong to the account the token names.
  if (!isLive(record) || record.accountId !== sub) return null;
  return { accountId: record.accountId, via: "bearer", limits: record.limits, keyId: kid };
}
