import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLimiter } from "../src/limits/account-limiter";
import { LEASE_RENEW_MS, LEASE_TTL_MS, type SessionUsage } from "../src/limits/lease";
import {
  acquireSlot,
  getUsage,
  type LimiterEnv,
  listActiveSessions,
  releaseSlot,
  renewSlot,
} from "../src/limits/limiter-client";

const limiterEnv = env as unknown as LimiterEnv;

/** A fresh account id per test: every account has its own limiter DO, so tests cannot collide. */
function accountId(): string {
  return `acc_limiter_${crypto.randomUUID()}`;
}

function usage(received: number, transcribed: number): SessionUsage {
  return { audioSecondsReceived: received, audioSecondsTranscribed: transcribed, startedAt: 0 };
}

function limiterStub(account: string): DurableObjectStub<AccountLimiter> {
  return limiterEnv.ACCOUNT_LIMITER.get(limiterEnv.ACCOUNT_LIMITER.idFromName(account));
}

/** Moves a lease's expiry to `at` (ms), standing in for the passage of time. */
async function setLeaseExpiry(account: string, sessionId: string, at: number): Promise<void> {
  await runInDurableObject(limiterStub(account), (_instance, state) => {
    state.storage.sql.exec(
      "UPDATE sessions SET lease_expires_at = ? WHERE session_id = ?",
      at,
      sessionId,
    );
  });
}

async function activeIds(account: string): Promise<string[]> {
  return (await listActiveSessions(limiterEnv, account)).map((s) => s.sessionId).sort();
}

describe("account limiter: admission", () => {
  it("admits exactly N of N+5 simultaneous acquires, then one more after a release", async () => {
    const account = accountId();
    const limit = 4;
    const ids = Array.from({ length: limit + 5 }, (_, i) => `s${i}`);
    const results = await Promise.all(ids.map((id) => acquireSlot(limiterEnv, account, id, limit)));
    const admitted = ids.filter((_, i) => results[i]?.ok);
    const refused = results.filter((r) => !r.ok);
    expect(admitted).toHaveLength(limit);
    expect(refused).toHaveLength(5);
    for (const refusal of refused) {
      expect(refusal).toMatchObject({ ok: false, reason: "limit", limit, active: limit });
      if (!refusal.ok && refusal.reason === "limit") {
        expect(refusal.retryAfterSeconds).toBeGreaterThan(0);
      }
    }
    expect(await activeIds(account)).toEqual([...admitted].sort());

    const first = admitted[0];
    if (first === undefined) throw new Error("nothing admitted");
    await releaseSlot(limiterEnv, account, first, usage(1, 1));
    expect((await acquireSlot(limiterEnv, account, "late", limit)).ok).toBe(true);
    expect((await acquireSlot(limiterEnv, account, "later", limit)).ok).toBe(false);
  });

  it("does not take a second slot for a session id that already holds one", async () => {
    const account = accountId();
    expect((await acquireSlot(limiterEnv, account, "same", 2)).ok).toBe(true);
    expect((await acquireSlot(limiterEnv, account, "same", 2)).ok).toBe(true);
    expect((await acquireSlot(limiterEnv, account, "other", 2)).ok).toBe(true);
    expect(await activeIds(account)).toEqual(["other", "same"]);
    expect((await getUsage(limiterEnv, account)).sessionsTotal).toBe(2);
  });

  it("refuses everything with a limit of 0", async () => {
    const result = await acquireSlot(limiterEnv, accountId(), "s", 0);
    expect(result).toMatchObject({ ok: false, reason: "limit", limit: 0, active: 0 });
  });

  it("never evicts running sessions when the limit is lowered", async () => {
    const account = accountId();
    for (const id of ["a", "b", "c"]) {
      expect((await acquireSlot(limiterEnv, account, id, 3)).ok).toBe(true);
    }
    // The limit drops to 1: new sessions are refused, the three keep running and renewing.
    expect(await acquireSlot(limiterEnv, account, "d", 1)).toMatchObject({
      ok: false,
      reason: "limit",
      limit: 1,
      active: 3,
    });
    for (const id of ["a", "b", "c"]) await renewSlot(limiterEnv, account, id, usage(5, 4));
    expect(await activeIds(account)).toEqual(["a", "b", "c"]);
    await releaseSlot(limiterEnv, account, "a", usage(5, 4));
    await releaseSlot(limiterEnv, account, "b", usage(5, 4));
    // One still running = the new limit: still refused until under it.
    expect((await acquireSlot(limiterEnv, account, "d", 1)).ok).toBe(false);
    await releaseSlot(limiterEnv, account, "c", usage(5, 4));
    expect((await acquireSlot(limiterEnv, account, "d", 1)).ok).toBe(true);
  });

  it("keeps two accounts at their limits independent", async () => {
    const [one, two] = [accountId(), accountId()];
    const attempts = await Promise.all(
      [one, two].flatMap((account) =>
        Array.from({ length: 5 }, (_, i) => acquireSlot(limiterEnv, account, `s${i}`, 2)),
      ),
    );
    expect(attempts.slice(0, 5).filter((r) => r.ok)).toHaveLength(2);
    expect(attempts.slice(5).filter((r) => r.ok)).toHaveLength(2);
    // Freeing a slot in one account does not admit anything in the other.
    const held = (await activeIds(one))[0];
    if (held === undefined) throw new Error("account one holds nothing");
    await releaseSlot(limiterEnv, one, held, usage(0, 0));
    expect((await acquireSlot(limiterEnv, two, "extra", 2)).ok).toBe(false);
    expect((await acquireSlot(limiterEnv, one, "extra", 2)).ok).toBe(true);
  });
});

describe("account limiter: leases", () => {
  it("renews well inside the lease", () => {
    expect(LEASE_RENEW_MS).toBeLessThan(LEASE_TTL_MS / 2);
  });

  it("grants a lease of at most LEASE_TTL_MS and arms the alarm no later than its expiry", async () => {
    const account = accountId();
    const before = Date.now();
    const result = await acquireSlot(limiterEnv, account, "s", 1);
    const after = Date.now();
    if (!result.ok) throw new Error("not admitted");
    // Granted at some instant between `before` and `after`, for exactly LEASE_TTL_MS.
    expect(result.leaseExpiresAt).toBeGreaterThanOrEqual(before + LEASE_TTL_MS);
    expect(result.leaseExpiresAt).toBeLessThanOrEqual(after + LEASE_TTL_MS);
    const alarm = await runInDurableObject(limiterStub(account), (_i, state) =>
      state.storage.getAlarm(),
    );
    expect(alarm).not.toBeNull();
    expect(alarm ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(result.leaseExpiresAt);
  });

  it("frees the slot of a session that died without releasing, by the alarm", async () => {
    const account = accountId();
    expect((await acquireSlot(limiterEnv, account, "dead", 1)).ok).toBe(true);
    expect((await acquireSlot(limiterEnv, account, "next", 1)).ok).toBe(false);
    // The session stops renewing; its lease runs out.
    await setLeaseExpiry(account, "dead", Date.now() - 1);
    expect(await runDurableObjectAlarm(limiterStub(account))).toBe(true);
    const rows = await runInDurableObject(limiterStub(account), (_i, state) =>
      state.storage.sql
        .exec<{ end_reason: string | null }>(
          "SELECT end_reason FROM sessions WHERE session_id = 'dead'",
        )
        .toArray(),
    );
    expect(rows).toEqual([{ end_reason: "expired" }]);
    expect(await activeIds(account)).toEqual([]);
    expect((await acquireSlot(limiterEnv, account, "next", 1)).ok).toBe(true);
  });

  it("never lets an expired lease block an admission, even before the alarm runs", async () => {
    const account = accountId();
    expect((await acquireSlot(limiterEnv, account, "dead", 1)).ok).toBe(true);
    await setLeaseExpiry(account, "dead", Date.now() - 1);
    expect((await acquireSlot(limiterEnv, account, "next", 1)).ok).toBe(true);
    expect(await activeIds(account)).toEqual(["next"]);
  });

  it("keeps a renewed session's slot past its old expiry", async () => {
    const account = accountId();
    expect((await acquireSlot(limiterEnv, account, "alive", 1)).ok).toBe(true);
    const nearlyExpired = Date.now() + 1_000;
    await setLeaseExpiry(account, "alive", nearlyExpired);
    await renewSlot(limiterEnv, account, "alive", usage(1, 0));
    const [session] = await listActiveSessions(limiterEnv, account);
    expect(session?.leaseExpiresAt).toBeGreaterThan(nearlyExpired);
  });

  it("gives a reclaimed but living session its slot back on renewal, never a released one", async () => {
    const account = accountId();
    expect((await acquireSlot(limiterEnv, account, "slow", 1)).ok).toBe(true);
    await setLeaseExpiry(account, "slow", Date.now() - 1);
    await runDurableObjectAlarm(limiterStub(account));
    expect(await activeIds(account)).toEqual([]);
    await renewSlot(limiterEnv, account, "slow", usage(2, 1));
    expect(await activeIds(account)).toEqual(["slow"]);

    await releaseSlot(limiterEnv, account, "slow", usage(2, 1));
    // A renewal that crossed the release in flight must not resurrect the slot.
    await renewSlot(limiterEnv, account, "slow", usage(2, 1));
    expect(await activeIds(account)).toEqual([]);
  });

  it("does not renew a session it never admitted", async () => {
    const account = accountId();
    await renewSlot(limiterEnv, account, "stranger", usage(1, 1));
    expect(await activeIds(account)).toEqual([]);
    expect((await getUsage(limiterEnv, account)).audioSecondsReceived).toBe(0);
  });
});

describe("account limiter: usage", () => {
  it("adds cumulative reports once, across renewals, releases, repeats and reclaims", async () => {
    const account = accountId();
    await acquireSlot(limiterEnv, account, "a", 5);
    await acquireSlot(limiterEnv, account, "b", 5);
    await renewSlot(limiterEnv, account, "a", usage(10, 8));
    await renewSlot(limiterEnv, account, "a", usage(20, 15));
    await releaseSlot(limiterEnv, account, "a", usage(25, 20));
    await releaseSlot(limiterEnv, account, "a", usage(25, 20)); // repeated: counts nothing more
    await renewSlot(limiterEnv, account, "b", usage(3.5, 2.5));
    // b dies without releasing; what it reported stays counted.
    await setLeaseExpiry(account, "b", Date.now() - 1);
    await runDurableObjectAlarm(limiterStub(account));

    const totals = await getUsage(limiterEnv, account);
    expect(totals).toEqual({
      activeSessions: 0,
      sessionsTotal: 2,
      audioSecondsReceived: 28.5,
      audioSecondsTranscribed: 22.5,
    });
  });

  it("lists active sessions with their start and audio seconds", async () => {
    const account = accountId();
    const before = Date.now();
    await acquireSlot(limiterEnv, account, "x", 5);
    await renewSlot(limiterEnv, account, "x", usage(4, 3));
    const sessions = await listActiveSessions(limiterEnv, account);
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({
      sessionId: "x",
      audioSecondsReceived: 4,
      audioSecondsTranscribed: 3,
    });
    expect(sessions[0]?.startedAt).toBeGreaterThanOrEqual(before);
  });

  it("refuses nonsense usage reports", async () => {
    const account = accountId();
    await acquireSlot(limiterEnv, account, "x", 1);
    await expect(renewSlot(limiterEnv, account, "x", usage(Number.NaN, 0))).rejects.toThrow(
      /audioSecondsReceived/,
    );
  });
});

describe("limiter client: failures", () => {
  /** A namespace whose stubs fail every call with `error`; counts the attempts. */
  function failingEnv(error: Error): { env: LimiterEnv; attempts: () => number } {
    let attempts = 0;
    const stub = {
      acquire: () => {
        attempts++;
        return Promise.reject(error);
      },
    };
    const namespace = { idFromName: (name: string) => name, get: () => stub };
    return {
      env: { ACCOUNT_LIMITER: namespace } as unknown as LimiterEnv,
      attempts: () => attempts,
    };
  }

  it("retries retryable errors, then answers 'unavailable'", async () => {
    const error = Object.assign(new Error("network lost"), { retryable: true });
    const { env: broken, attempts } = failingEnv(error);
    const result = await acquireSlot(broken, "acc", "s", 1);
    expect(result).toMatchObject({ ok: false, reason: "unavailable" });
    if (!result.ok && result.reason === "unavailable") {
      expect(result.message).toContain("network lost");
    }
    expect(attempts()).toBe(3);
  });

  it("does not retry an overloaded limiter", async () => {
    const error = Object.assign(new Error("overloaded"), { retryable: true, overloaded: true });
    const { env: broken, attempts } = failingEnv(error);
    expect(await acquireSlot(broken, "acc", "s", 1)).toMatchObject({ reason: "unavailable" });
    expect(attempts()).toBe(1);
  });
});
