/**
 * The account's own API, mounted at `/v1` beside `/v1/listen`. Every route needs the account's API
 * key (`Authorization: Token <key>`). An access token is refused with 403: it only opens sockets,
 * and a page holding one must not read the account's other sessions, transcripts or usage, nor
 * mint more tokens.
 *
 *   POST /v1/auth/grant                {ttl_seconds?} → {access_token, expires_in} (Deepgram's shape)
 *   GET  /v1/usage                     → active sessions, limit, audio seconds, sessions total
 *   GET  /v1/sessions                  → the account's active sessions
 *   GET  /v1/sessions/:id/transcript   → stored finals of one of the account's sessions; 404 for
 *                                        any other id (another account's included: no 403 that
 *                                        would confirm the id exists)
 *
 * Middleware is attached per route, never with `use("*")`: mounted at /v1, a wildcard would also
 * run in front of `/v1/listen`.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import {
  type AccountsEnv,
  badBody,
  isoTime,
  jsonReply,
  newRequestId,
  notFound,
  readJsonObject,
} from "../accounts/http";
import { parseGrant } from "../accounts/request-bodies";
import { signAccessToken, TokenSecretError } from "../auth/access-token";
import { authenticate, authenticateKey, type KeyPrincipal } from "../auth/authenticate";
import { readCredential } from "../auth/credentials";
import { MAX_SESSION_ID_CHARS } from "../limits/lease";
import { getUsage, LimiterUnavailableError, listActiveSessions } from "../limits/limiter-client";
import {
  httpError,
  invalidAuth,
  REFUSED_CREDENTIAL,
  serviceUnavailable,
} from "../protocol/http-errors";
import { createLogger, type LogFields } from "../runtime/log";

const log = createLogger();

/** Seconds a caller is asked to wait when a dependency (D1, the limiter) is unavailable. */
const DEPENDENCY_RETRY_AFTER_SECONDS = 1;

/** One stored final, as the session DO returns it (seconds since the session began). */
export interface StoredFinal {
  start: number;
  end: number;
  transcript: string;
}

/**
 * The one RPC the account API needs from a session DO. Returns null when `accountId` does not own
 * the session (or it never existed), so ownership is decided where the session's state lives.
 */
export interface TranscriptSource {
  getTranscript(accountId: string): Promise<{ sessionId: string; finals: StoredFinal[] } | null>;
}

type AccountContext = {
  Bindings: AccountsEnv;
  Variables: { requestId: string; principal: KeyPrincipal };
};

export const accountRoutes = new Hono<AccountContext>();

/** What a failed request's log line says: the route, the request id, the account when known. */
function requestFields(c: Context<AccountContext>, requestId: string, error: unknown): LogFields {
  // Unset when the request failed before authentication.
  const principal: KeyPrincipal | undefined = c.get("principal");
  return {
    method: c.req.method,
    path: c.req.path,
    requestId,
    ...(principal ? { accountId: principal.accountId, keyId: principal.keyId } : {}),
    error,
  };
}

/** API key required; a valid access token gets 403, anything else 401. */
const requireKey: MiddlewareHandler<AccountContext> = async (c, next) => {
  const requestId = newRequestId();
  c.set("requestId", requestId);
  const read = readCredential(c.req.raw);
  if (!read.ok) return invalidAuth(requestId, read.message);
  const { credential } = read;
  if (credential.scheme === "bearer") {
    const principal = await authenticate(c.env, credential);
    if (principal === null) return invalidAuth(requestId, REFUSED_CREDENTIAL.bearer);
    return httpError(
      403,
      "FORBIDDEN",
      "access tokens only open /v1/listen sockets; this endpoint needs an API key",
      requestId,
    );
  }
  const principal = await authenticateKey(c.env, credential.secret);
  if (principal === null) return invalidAuth(requestId, REFUSED_CREDENTIAL.token);
  c.set("principal", principal);
  await next();
};

accountRoutes.onError((error, c) => {
  const requestId = c.get("requestId") ?? newRequestId();
  if (error instanceof LimiterUnavailableError || error instanceof TokenSecretError) {
    log.error("account API: dependency unavailable", requestFields(c, requestId, error));
    // The token secret's message is ours and names the setting to fix; the limiter's carries the
    // runtime's or SQLite's own text, which stays in the log.
    const message =
      error instanceof TokenSecretError
        ? error.message
        : "the account's session limiter is unavailable, retry";
    return serviceUnavailable(requestId, DEPENDENCY_RETRY_AFTER_SECONDS, message);
  }
  // Anything else (D1 unreachable, a session DO failing) is also not the caller's fault.
  log.error("account API: request failed", requestFields(c, requestId, error));
  return serviceUnavailable(requestId, DEPENDENCY_RETRY_AFTER_SECONDS, "request failed, retry");
});

accountRoutes.post("/auth/grant", requireKey, async (c) => {
  const requestId = c.get("requestId");
  const principal = c.get("principal");
  const body = await readJsonObject(c.req.raw, true);
  if (!body.ok) return badBody(body, requestId);
  const grant = parseGrant(body.value);
  if (!grant.ok) return badBody(grant, requestId);
  const accessToken = await signAccessToken(c.env.EARSHOT_TOKEN_SECRET, {
    accountId: principal.accountId,
    keyId: principal.keyId,
    ttlSeconds: grant.value.ttlSeconds,
    nowMs: Date.now(),
  });
  return jsonReply(
    { access_token: accessToken, expires_in: grant.value.ttlSeconds },
    200,
    requestId,
  );
});

accountRoutes.get("/usage", requireKey, async (c) => {
  const principal = c.get("principal");
  const usage = await getUsage(c.env, principal.accountId);
  return jsonReply(
    {
      account_id: principal.accountId,
      active_sessions: usage.activeSessions,
      limit: principal.limits.maxConcurrentSessions,
      max_session_seconds: principal.limits.maxSessionSeconds,
      sessions_total: usage.sessionsTotal,
      audio_seconds_received: usage.audioSecondsReceived,
      audio_seconds_transcribed: usage.audioSecondsTranscribed,
    },
    200,
    c.get("requestId"),
  );
});

accountRoutes.get("/sessions", requireKey, async (c) => {
  const sessions = await listActiveSessions(c.env, c.get("principal").accountId);
  return jsonReply(
    {
      sessions: sessions.map((session) => ({
        id: session.sessionId,
        started: isoTime(session.startedAt),
        audio_seconds_received: session.audioSecondsReceived,
        audio_seconds_transcribed: session.audioSecondsTranscribed,
      })),
    },
    200,
    c.get("requestId"),
  );
});

accountRoutes.get("/sessions/:id/transcript", requireKey, async (c) => {
  const requestId = c.get("requestId");
  const sessionId = c.req.param("id");
  const missing = () => notFound(`no session '${sessionId}' for this account`, requestId);
  // Not an id the service could have issued; no need to wake a DO for it.
  if (sessionId.length === 0 || sessionId.length > MAX_SESSION_ID_CHARS) return missing();
  const stub = c.env.SESSION.get(c.env.SESSION.idFromName(sessionId));
  // The session class is typed where it is defined; this API relies only on TranscriptSource.
  const source = stub as unknown as TranscriptSource;
  const transcript = await source.getTranscript(c.get("principal").accountId);
  if (transcript === null) return missing();
  return jsonReply(
    {
      session_id: transcript.sessionId,
      finals: transcript.finals.map(({ start, end, transcript: text }) => ({
        start,
        end,
        transcript: text,
      })),
    },
    200,
    requestId,
  );
});
