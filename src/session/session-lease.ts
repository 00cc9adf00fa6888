/**
 * A live session's slot in its account's limiter: renewed every LEASE_RENEW_MS while the session
 * runs, released when it ends, however it ends. If this object dies without releasing, the
 * limiter's alarm reclaims the slot within LEASE_TTL_MS (src/limits/limiter-client.ts).
 */

import { LEASE_RENEW_MS, type SessionUsage } from "../limits/lease";
import { type LimiterEnv, releaseSlot, renewSlot } from "../limits/limiter-client";
import { runBackground } from "../runtime/background";
import type { Logger } from "../runtime/log";

export class SessionLease {
  #timer: ReturnType<typeof setInterval> | undefined;
  #released = false;

  constructor(
    private readonly env: LimiterEnv,
    private readonly accountId: string,
    private readonly sessionId: string,
    private readonly log: Logger,
  ) {}

  /**
   * Starts renewing; `usage` is read at each renewal. The first renewal is immediate: the lease
   * was taken at the handshake, and loading models before the session started used part of it.
   */
  start(usage: () => SessionUsage): void {
    const renew = () =>
      // A failed renewal is logged and retried next period.
      runBackground(this.log, "renew slot", () =>
        renewSlot(this.env, this.accountId, this.sessionId, usage()),
      );
    renew();
    this.#timer = setInterval(renew, LEASE_RENEW_MS);
  }

  /** Frees the slot now. Idempotent. */
  release(usage: SessionUsage): void {
    clearInterval(this.#timer);
    if (this.#released) return;
    this.#released = true;
    runBackground(this.log, "release slot", () =>
      releaseSlot(this.env, this.accountId, this.sessionId, usage),
    );
  }
}
