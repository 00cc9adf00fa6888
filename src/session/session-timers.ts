/**
 * A session's three clocks, and nothing else: the idle timeout, the session's maximum length, and
 * the resume window. Each fires its hook once; the session decides what that means (live-session.ts).
 *
 * - Idle: armed while a client is attached. Every message received pushes it back; it fires once
 *   nothing has arrived for `idleTimeoutMs` (checked against the last receipt when the timer runs,
 *   so a busy socket costs no timer churn: the timer is re-armed for the remainder).
 * - Lifetime: armed at construction, fires after `maxSessionSeconds`.
 * - Resume window: armed when a resumable session loses its socket, fires after `resumeWindowMs`
 *   unless a client attaches first. Attaching stops it and re-arms the idle clock.
 */

export interface SessionClockLimits {
  idleTimeoutMs: number;
  maxSessionSeconds: number;
  resumeWindowMs: number;
}

export interface SessionClockHooks {
  /** Nothing received for `idleTimeoutMs` while a client was attached. */
  idle(): void;
  /** The session reached `maxSessionSeconds`. */
  lifetimeOver(): void;
}

export class SessionTimers {
  #lastReceivedAt = Date.now();
  #idle: ReturnType<typeof setTimeout> | undefined;
  #lifetime: ReturnType<typeof setTimeout> | undefined;
  #resume: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly limits: SessionClockLimits,
    private readonly hooks: SessionClockHooks,
  ) {
    this.#lifetime = setTimeout(() => hooks.lifetimeOver(), limits.maxSessionSeconds * 1000);
  }

  /** A message arrived from the client: the idle clock starts over. */
  received(): void {
    this.#lastReceivedAt = Date.now();
  }

  /** A client attached (first or resumed): no resume wait, a fresh idle clock. */
  attached(): void {
    clearTimeout(this.#resume);
    clearTimeout(this.#idle);
    this.#lastReceivedAt = Date.now();
    this.#armIdle(this.limits.idleTimeoutMs);
  }

  /** The socket is gone; `expired` runs unless a client attaches within the resume window. */
  awaitResume(expired: () => void): void {
    clearTimeout(this.#idle);
    clearTimeout(this.#resume);
    this.#resume = setTimeout(expired, this.limits.resumeWindowMs);
  }

  /** The session is ending: no clock fires any more. */
  stop(): void {
    clearTimeout(this.#idle);
    clearTimeout(this.#lifetime);
    clearTimeout(this.#resume);
  }

  #armIdle(delayMs: number): void {
    this.#idle = setTimeout(() => {
      const idleFor = Date.now() - this.#lastReceivedAt;
      if (idleFor >= this.limits.idleTimeoutMs) this.hooks.idle();
      else this.#armIdle(this.limits.idleTimeoutMs - idleFor);
    }, delayMs);
  }
}
