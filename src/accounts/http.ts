/**
 * What the admin and account APIs share: the bindings they need, JSON renderings of accounts and
 * keys, and the error responses (in the project's Deepgram shape, src/protocol/http-errors.ts).
 */
import type { AuthEnv } from "../auth/authenticate";
import type { LimiterEnv } from "../limits/limiter-client";
import { httpError } from "../protocol/http-errors";
import { readBoundedText } from "../runtime/bounded-body";
import type { Account, ApiKeyInfo } from "./account-store";
import { type BodyResult, MAX_BODY_BYTES, parseJsonObject } from "./request-bodies";

/**
 * The bindings these routes use. The worker's generated `Env` satisfies it once wrangler.toml
 * declares DB, ACCOUNT_LIMITER and SESSION and the secrets are set.
 */
export interface AccountsEnv extends AuthEnv, LimiterEnv {
  /** Secret for the admin API (`Authorization: Bearer <token>`); unset = admin API disabled. */
  EARSHOT_ADMIN_TOKEN?: string;
  /**
   * Session Durable Objects, one per session id (`idFromName(sessionId)`). Typed loosely: the
   * account API only calls `getTranscript` (see TranscriptSource in routes/account-api.ts).
   */
  SESSION: DurableObjectNamespace;
}

/** A fresh id for a response that is not about a session (Deepgram sends one on every reply). */
export function newRequestId(): string {
  return crypto.randomUUID();
}

export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function accountJson(account: Account): Record<string, unknown> {
  return {
    id: account.id,
    name: account.name,
    max_concurrent_sessions: account.maxConcurrentSessions,
    max_session_seconds: account.maxSessionSeconds,
    created: isoTime(account.createdAt),
    disabled: account.disabledAt !== null,
    disabled_at: isoTime(account.disabledAt),
  };
}

/** A key's metadata; never its hash (the hash is not a secret, but it has no use outside D1). */
export function keyJson(key: ApiKeyInfo): Record<string, unknown> {
  return {
    id: key.id,
    account_id: key.accountId,
    label: key.label,
    created: isoTime(key.createdAt),
    revoked: isoTime(key.revokedAt),
  };
}

/** 400 naming the offending field in the message and in `field`. */
export function badBody(failure: { field: string; message: string }, requestId: string): Response {
  return httpError(400, "Bad Request", failure.message, requestId, { field: failure.field });
}

export function notFound(message: string, requestId: string): Response {
  return httpError(404, "NOT_FOUND", message, requestId);
}

/**
 * Reads the request body as a JSON object (see parseJsonObject), reading at most MAX_BODY_BYTES
 * of it whether or not a Content-Length was declared (src/runtime/bounded-body.ts).
 */
export async function readJsonObject(
  request: Request,
  optional: boolean,
): Promise<BodyResult<Record<string, unknown>>> {
  const body = await readBoundedText(request, MAX_BODY_BYTES);
  if (!body.ok) {
    return { ok: false, field: "body", message: `body is larger than ${MAX_BODY_BYTES} bytes` };
  }
  return parseJsonObject(body.text, optional);
}

/** A JSON reply with the request id header every Earshot HTTP answer carries. */
export function jsonReply(body: unknown, status: number, requestId: string): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: {
      ...(status === 204 ? {} : { "content-type": "application/json; charset=utf-8" }),
      "cache-control": "no-store",
      "dg-request-id": requestId,
    },
  });
}
