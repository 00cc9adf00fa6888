/**
 * `GET /v1/listen`: the WebSocket handshake. The worker is thin and stateless: it authenticates,
 * validates the options, and forwards the upgrade to a Durable Object of the session's own.
 * Every refusal happens here, before `101 Switching Protocols`, as an HTTP status with a JSON body.
 *
 * A resume (`session_id` + `resume_offset`) goes to the existing session's object instead, after
 * the same authentication; it takes no new slot (the session still holds its own), and the session
 * object decides whether it can attach (README "Resumable sessions").
 */
import type { Context } from "hono";
import { authenticate, type Principal } from "../auth/authenticate";
import { readCredential } from "../auth/credentials";
import { acquireSlot, releaseSlot } from "../limits/limiter-client";
import {
  badOption,
  invalidAuth,
  REFUSED_CREDENTIAL,
  serviceUnavailable,
  tooManyRequests,
  upgradeRequired,
} from "../protocol/http-errors";
import { parseListenOptions } from "../protocol/options";
import { createLogger } from "../runtime/log";
import { recordHandshake } from "../runtime/metrics";
import {
  encodeSessionResume,
  encodeSessionStart,
  SESSION_RESUME_HEADER,
  SESSION_START_HEADER,
  type SessionStart,
} from "../session/session-start";

const log = createLogger({ route: "listen" });

/**
 * Handshakes replayed by the demo page's probe (src/routes/dev-token.ts), which must learn why a
 * handshake would be refused without taking over a live session. Membership is held by the
 * Request object itself, so no outside request can claim it.
 */
const probes = new WeakSet<Request>();

/** Marks `request` as a probe: a resume it carries is checked, never attached. */
export function probeRequest(request: Request): Request {
  probes.add(request);
  return request;
}

/** The handshake, and a metric of how it ended (runtime/metrics.ts). */
export async function listen(c: Context<{ Bindings: Env }>): Promise<Response> {
  const seen: { accountId: string | null } = { accountId: null };
  const response = await handshake(c, seen);
  let outcome = "admitted";
  if (response.status !== 101) {
    try {
      const body = (await response.clone().json()) as { err_code?: unknown };
      outcome = typeof body.err_code === "string" ? body.err_code : String(response.status);
    } catch {
      outcome = String(response.status); // a refusal with no JSON body (the session object's own)
    }
  }
  recordHandshake(c.env, { accountId: seen.accountId, status: response.status, outcome });
  return response;
}

async function handshake(
  c: Context<{ Bindings: Env }>,
  seen: { accountId: string | null },
): Promise<Response> {
  const request = c.req.raw;
  const sessionId = crypto.randomUUID();
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return upgradeRequired(sessionId);
  }
  // Authentication first: an unauthenticated caller learns nothing about options.
  const credential = readCredential(request);
  if (!credential.ok) return invalidAuth(sessionId, credential.message);
  let principal: Principal | null;
  try {
    principal = await authenticate(c.env, credential.credential);
  } catch (error) {
    // The account store (D1) or the token secret is unavailable: the service's fault, not the
    // caller's, so 503 (a retry may succeed), never 401 (which tells the caller its key is bad).
    log.error("authentication unavailable", { sessionId, error });
    return serviceUnavailable(sessionId, 5, "authentication is temporarily unavailable");
  }
  if (principal === null) {
    return invalidAuth(sessionId, REFUSED_CREDENTIAL[credential.credential.scheme]);
  }
  seen.accountId = principal.accountId;

  const parsed = parseListenOptions(new URL(request.url).searchParams);
  if (!parsed.ok) return badOption(parsed, sessionId);

  if (parsed.resume !== null) {
    const { resume } = parsed;
    const stub = c.env.SESSION.get(c.env.SESSION.idFromName(resume.sessionId));
    const header = encodeSessionResume({
      ...resume,
      accountId: principal.accountId,
      keyId: principal.keyId,
      options: parsed.options,
      given: parsed.given,
      subprotocol: credential.credential.subprotocol,
      ...(probes.has(request) ? { probe: true } : {}),
    });
    return forwardToSession(resume.sessionId, principal.accountId, () =>
      stub.fetch("https://session.internal/resume", {
        headers: { Upgrade: "websocket", [SESSION_RESUME_HEADER]: header },
      }),
    );
  }

  // Admission before the upgrade: a refused client gets an HTTP status it can read, and the
  // official SDK does not retry a handshake 429.
  const { accountId } = principal;
  const slot = await acquireSlot(
    c.env,
    accountId,
    sessionId,
    principal.limits.maxConcurrentSessions,
  );
  if (!slot.ok) {
    if (slot.reason === "unavailable") {
      return serviceUnavailable(sessionId, 5, "session admission is temporarily unavailable");
    }
    return tooManyRequests(
      sessionId,
      slot.retryAfterSeconds,
      `too many concurrent sessions for this account (limit ${slot.limit})`,
      { limit: slot.limit, active: slot.active },
    );
  }

  const start: SessionStart = {
    sessionId,
    accountId,
    keyId: principal.keyId,
    options: parsed.options,
    subprotocol: credential.credential.subprotocol,
    maxSessionSeconds: principal.limits.maxSessionSeconds,
    createdAt: Date.now(),
  };
  // The session never started: give its slot back now rather than when the lease expires. Kept
  // alive past the response with waitUntil, so the release (and its retries) is not cancelled.
  const releaseUnused = () =>
    c.executionCtx.waitUntil(
      releaseSlot(c.env, accountId, sessionId, {
        audioSecondsReceived: 0,
        audioSecondsTranscribed: 0,
        startedAt: start.createdAt,
      }).catch((error: unknown) =>
        log.error("release of an unused slot failed", { sessionId, accountId, error }),
      ),
    );
  const stub = c.env.SESSION.get(c.env.SESSION.idFromName(sessionId));
  const response = await forwardToSession(sessionId, accountId, () =>
    stub.fetch("https://session.internal/connect", {
      headers: { Upgrade: "websocket", [SESSION_START_HEADER]: encodeSessionStart(start) },
    }),
  );
  if (response.status !== 101) releaseUnused();
  return response;
}

/**
 * The session object's answer, with the session id in `dg-request-id`. If the object fails (e.g.
 * it was reset while loading models), 503: a retry may succeed.
 */
async function forwardToSession(
  sessionId: string,
  accountId: string,
  connect: () => Promise<Response>,
): Promise<Response> {
  let response: Response;
  try {
    response = await connect();
  } catch (error) {
    log.error("session object failed", { sessionId, accountId, error });
    return serviceUnavailable(sessionId, 5, "the session could not be started");
  }
  const headers = new Headers(response.headers);
  headers.set("dg-request-id", sessionId);
  return new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers,
    webSocket: response.webSocket,
  });
}
