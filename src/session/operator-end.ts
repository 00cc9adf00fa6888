/**
 * Ending live sessions from outside them, for an operator: every session of a disabled account,
 * the sessions opened with a revoked API key (directly or through tokens it minted), or one session
 * by id. Each session ends as on CloseStream — what it received is transcribed, its finals and
 * Metadata are sent — then closes 1008 `AUTH-0001: <why>` (protocol/close-codes.ts).
 *
 * Deepgram documents nothing about live streams when a key is deleted or a project disabled. Earshot
 * ends them: an operator who revokes a leaked key or disables an abusive account wants its use to
 * stop now, not when the session reaches its length cap (4 h by default).
 */
import { findKeyById } from "../accounts/account-store";
import { type LimiterEnv, listActiveSessions } from "../limits/limiter-client";
import { createLogger } from "../runtime/log";

/** Which sessions to end: the session object checks these against its own record. */
export interface OperatorEnd {
  /** Only if the session belongs to this account. */
  accountId?: string;
  /** Only if the session was opened with this API key. */
  keyId?: string;
  /** Goes into the close reason: "account disabled", "API key revoked", … */
  reason: string;
}

/** Whether `end` applies to a session of `accountId` opened with `keyId`. */
export function endApplies(end: OperatorEnd, accountId: string, keyId: string): boolean {
  return (
    (end.accountId === undefined || end.accountId === accountId) &&
    (end.keyId === undefined || end.keyId === keyId)
  );
}

/** The one RPC this needs from a session object (SessionObject.endByOperator). */
export interface OperatorEndTarget {
  endByOperator(end: OperatorEnd): Promise<boolean>;
}

export interface OperatorEndEnv extends LimiterEnv {
  SESSION: DurableObjectNamespace;
}

function target(env: OperatorEndEnv, sessionId: string): OperatorEndTarget {
  // The session class is typed where it is defined; this relies only on OperatorEndTarget.
  return env.SESSION.get(env.SESSION.idFromName(sessionId)) as unknown as OperatorEndTarget;
}

/** Ends one session by id; false when it is not live (ended, or never existed). */
export function endSession(
  env: OperatorEndEnv,
  sessionId: string,
  reason: string,
): Promise<boolean> {
  return target(env, sessionId).endByOperator({ reason });
}

/** What a sweep did: the sessions it ended, and those whose object could not be reached. */
export interface Swept {
  ended: string[];
  unreached: string[];
}

/**
 * Ends the account's live sessions (only those opened with `keyId` when given), as its limiter
 * lists them. One object that cannot be reached (reset, or failing) does not stop the others: it
 * is logged with its ids and reported as unreached.
 */
export async function endAccountSessions(
  env: OperatorEndEnv,
  accountId: string,
  end: Omit<OperatorEnd, "accountId">,
): Promise<Swept> {
  const active = await listActiveSessions(env, accountId);
  const results = await Promise.allSettled(
    active.map(({ sessionId }) => target(env, sessionId).endByOperator({ ...end, accountId })),
  );
  const swept: Swept = { ended: [], unreached: [] };
  results.forEach((result, i) => {
    const sessionId = active[i]?.sessionId ?? "";
    if (result.status === "fulfilled") {
      if (result.value) swept.ended.push(sessionId);
      return;
    }
    createLogger({ sessionId, accountId }).error("operator end could not reach the session", {
      reason: end.reason,
      error: result.reason,
    });
    swept.unreached.push(sessionId);
  });
  return swept;
}

/**
 * A session between its handshake and going live, which an operator's end can miss: the handshake
 * checked the key against a cache up to 5 s old (auth/key-cache.ts), the models may take seconds to
 * load, and an end that reaches the object then finds nothing live. So an end that matches is
 * remembered here (`end`), and `refusal` reads the key and its account from D1 itself, as the last
 * step before the session goes live: a revocation committed before that read is seen there, and
 * one after it lists the session's lease (taken before it starts) and finds it starting or live.
 */
export class StartingSession {
  #ended: string | null = null;

  constructor(
    private readonly accountId: string,
    private readonly keyId: string,
  ) {}

  /** An operator's end reached the session while it started: whether it applies. */
  end(end: OperatorEnd): boolean {
    if (!endApplies(end, this.accountId, this.keyId)) return false;
    this.#ended ??= end.reason;
    return true;
  }

  /** Why the session may not go live after all, or null. Throws when D1 cannot be read. */
  async refusal(db: D1Database): Promise<string | null> {
    if (this.#ended !== null) return this.#ended;
    const key = await findKeyById(db, this.keyId);
    if (this.#ended !== null) return this.#ended;
    if (key === null || key.accountId !== this.accountId || key.keyRevoked)
      return "API key revoked";
    if (key.accountDisabled) return "account disabled";
    return null;
  }
}
