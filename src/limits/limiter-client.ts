/**
 * The caller's side of the account limiter (account-limiter.ts): one DO per account, reached by
 * RPC. This module owns the lease timing, retries and the mapping of failures to results, so the
 * handshake, the session DO and the account API never see a raw DO error.
 *
 * Lease timing:
 * - The session renews every LEASE_RENEW_MS = 10 s. Per session that is 0.1 RPC/s to its account's
 *   limiter; an account at the 10 000-session cap (account-store limits) costs 1 000 RPC/s, about
 *   what one DO serves, and the usual 50 sessions cost 5 RPC/s.
 * - A lease not renewed for LEASE_TTL_MS = 35 s is reclaimed: three renewal periods and half a
 *   period's margin, so a session survives two lost or late renewals in a row (a transient DO
 *   restart, an event loop held by a long inference) — the third lands at 30 s, before the expiry,
 *   not on it — while a session that died without releasing frees its slot within 35 s. Expired leases never block an admission (every limiter call reclaims them
 *   first, synchronously), so for new sessions the bound is exactly LEASE_TTL_MS; the alarm, set for
 *   the earliest expiry, brings the usage and session views up to date within LEASE_TTL_MS plus the
 *   alarm's delivery delay (normally well under a second).
 */

import { createLogger } from "../runtime/log";
import type { AccountLimiter } from "./account-limiter";
import {
  type AcquireOutcome,
  type ActiveSession,
  type LimiterUsage,
  MAX_SESSION_ID_CHARS,
  type SessionUsage,
} from "./lease";

const log = createLogger();

/**
 * What a refused client is told to wait. A slot frees when one of the account's sessions ends,
 * which the limiter cannot predict; 5 s keeps a polling client at 0.2 attempts per second.
 */
export const LIMIT_RETRY_AFTER_SECONDS = 5;
/**
 * Attempts per limiter call. DO RPC failures flagged `retryable` (a transient disconnect, the DO
 * being moved or restarted) usually succeed on the next try; two retries with 50 ms then 100 ms
 * of backoff add at most 150 ms to a handshake. `overloaded` errors are not retried: retrying
 * makes an overloaded object worse.
 */
const LIMITER_MAX_ATTEMPTS = 3;
const LIMITER_RETRY_BASE_MS = 50;

export type SlotResult =
  | { ok: true; leaseExpiresAt: number }
  | { ok: false; reason: "limit"; limit: number; active: number; retryAfterSeconds: number }
  | { ok: false; reason: "unavailable"; message: string };

export interface LimiterEnv {
  ACCOUNT_LIMITER: DurableObjectNamespace<AccountLimiter>;
}

/** The limiter could not be reached after retries. The lease (if any) then expires on its own. */
export class LimiterUnavailableError extends Error {
  override name = "LimiterUnavailableError";
}

function limiterFor(env: LimiterEnv, accountId: string): DurableObjectStub<AccountLimiter> {
  return env.ACCOUNT_LIMITER.get(env.ACCOUNT_LIMITER.idFromName(accountId));
}

function isRetryable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const flags = error as Error & { retryable?: boolean; overloaded?: boolean };
  return flags.retryable === true && flags.overloaded !== true;
}

/**
 * Runs `call` against the account's limiter, retrying retryable failures with a fresh stub each
 * time (a stub that threw may be broken). Every limiter method is idempotent for a given session
 * id, so a retry after a lost reply is safe. Throws LimiterUnavailableError at the end.
 */
async function withLimiter<T>(
  env: LimiterEnv,
  accountId: string,
  what: string,
  call: (limiter: DurableObjectStub<AccountLimiter>) => Promise<T>,
): Promise<T> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= LIMITER_MAX_ATTEMPTS; attempt++) {
    try {
      return await call(limiterFor(env, accountId));
    } catch (error) {
      lastError = error;
      if (!isRetryable(error) || attempt === LIMITER_MAX_ATTEMPTS) break;
      log.warn("limiter call failed, retrying", { accountId, call: what, attempt, error });
      await new Promise((resolve) =>
        setTimeout(resolve, LIMITER_RETRY_BASE_MS * 2 ** (attempt - 1)),
      );
    }
  }
  const message = lastError instanceof Error ? lastError.message : String(lastError);
  throw new LimiterUnavailableError(`account limiter ${what} failed: ${message}`, {
    cause: lastError,
  });
}

function checkSessionId(sessionId: string): void {
  if (sessionId.length === 0 || sessionId.length > MAX_SESSION_ID_CHARS) {
    throw new TypeError(`session id must be 1..${MAX_SESSION_ID_CHARS} characters`);
  }
}

/**
 * Before the upgrade: ask the account's limiter for a slot for this session id. Atomic: of any
 * number of simultaneous calls for one account, at most `limit` are admitted. Asking again for a
 * session id that already holds a slot (a retry, a resume) renews it and does not take a second.
 * Never rejects: a limiter that cannot be reached gives `{ok: false, reason: "unavailable"}`
 * (answer 503); a full account gives `reason: "limit"` (answer 429).
 */
export async function acquireSlot(
  env: LimiterEnv,
  accountId: string,
  sessionId: string,
  limit: number,
): Promise<SlotResult> {
  checkSessionId(sessionId);
  if (!Number.isInteger(limit) || limit < 0) throw new TypeError("limit must be an integer >= 0");
  try {
    const result = await withLimiter(env, accountId, "acquire", async (limiter) => {
      // Awaited here: RPC's typing of a union return value is a union of promise types.
      const outcome: AcquireOutcome = await limiter.acquire(sessionId, limit);
      return outcome;
    });
    if (result.ok) return { ok: true, leaseExpiresAt: result.leaseExpiresAt };
    return {
      ok: false,
      reason: "limit",
      limit: result.limit,
      active: result.active,
      retryAfterSeconds: LIMIT_RETRY_AFTER_SECONDS,
    };
  } catch (error) {
    if (!(error instanceof LimiterUnavailableError)) throw error;
    log.error("limiter unavailable: session refused", { accountId, sessionId, error });
    return { ok: false, reason: "unavailable", message: error.message };
  }
}

/**
 * From the session DO while it lives, every LEASE_RENEW_MS: keeps the slot and reports usage. A
 * renewal that arrives after the lease was reclaimed takes the slot back (the session is alive;
 * the limiter never ends a session, it only refuses new ones). Rejects with
 * LimiterUnavailableError after retries; the caller logs it and renews again next period.
 */
export async function renewSlot(
  env: LimiterEnv,
  accountId: string,
  sessionId: string,
  usage: SessionUsage,
): Promise<void> {
  checkSessionId(sessionId);
  const outcome = await withLimiter(env, accountId, "renew", (limiter) =>
    limiter.renew(sessionId, usage),
  );
  if (outcome === "unknown" || outcome === "released") {
    // Not an error for the session (it keeps running), but a sign of a bug in the caller.
    log.warn("limiter: no lease to renew", { accountId, sessionId, outcome });
  }
}

/**
 * On close (any reason): frees the slot at once and records the final usage. Idempotent: a
 * second release, or a release after the lease expired, changes nothing but the usage counters
 * (which only ever grow to the largest reported value). Rejects with LimiterUnavailableError after
 * retries; the lease then expires on its own within LEASE_TTL_MS.
 */
export async function releaseSlot(
  env: LimiterEnv,
  accountId: string,
  sessionId: string,
  usage: SessionUsage,
): Promise<void> {
  checkSessionId(sessionId);
  await withLimiter(env, accountId, "release", (limiter) => limiter.release(sessionId, usage));
}

/** For `GET /v1/usage`. Rejects with LimiterUnavailableError after retries. */
export function getUsage(env: LimiterEnv, accountId: string): Promise<LimiterUsage> {
  return withLimiter(env, accountId, "usage", (limiter) => limiter.usage());
}

/** For `GET /v1/sessions`. Rejects with LimiterUnavailableError after retries. */
export function listActiveSessions(env: LimiterEnv, accountId: string): Promise<ActiveSession[]> {
  return withLimiter(env, accountId, "sessions", (limiter) => limiter.sessions());
}
