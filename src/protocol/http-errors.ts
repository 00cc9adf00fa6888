/**
 * Refusals before the WebSocket upgrade, in Deepgram's shape: a plain HTTP response with a JSON
 * body `{err_code, err_msg, request_id}` and the headers `dg-error` (the message) and
 * `dg-request-id` (Deepgram changelog 2022-11-08, "Live Streaming API Enhanced Usability Update":
 * dg-request-id on every handshake, dg-error on failures). A browser's WebSocket cannot read
 * either; Node clients and the SDK can, and curl users see the body.
 */

import type { OptionsResult } from "./options";

/** Header values must be ISO-8859-1 without CR/LF; and a long message belongs in the body. */
const MAX_HEADER_VALUE_CHARS = 1024;

/**
 * A string safe for an HTTP header value: printable ASCII only (anything else becomes "?", so a
 * non-Latin-1 character cannot make `Headers.set` throw and CR/LF cannot split headers), capped.
 */
export function headerSafe(value: string): string {
  const ascii = value.replace(/[^\x20-\x7e]/g, "?").trim();
  return ascii.length > MAX_HEADER_VALUE_CHARS
    ? `${ascii.slice(0, MAX_HEADER_VALUE_CHARS - 3)}...`
    : ascii;
}

export function httpError(
  status: number,
  errCode: string,
  errMsg: string,
  requestId: string,
  extra?: Record<string, string | number>,
  headers?: HeadersInit,
): Response {
  // The three core fields come first and cannot be overwritten by `extra`.
  const body: Record<string, string | number> = {
    err_code: errCode,
    err_msg: errMsg,
    request_id: requestId,
  };
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (!(key in body)) body[key] = value;
  }
  const responseHeaders = new Headers(headers);
  responseHeaders.set("content-type", "application/json; charset=utf-8");
  // A refusal is about this moment (load, auth); no cache may replay it.
  responseHeaders.set("cache-control", "no-store");
  responseHeaders.set("dg-error", headerSafe(errMsg));
  responseHeaders.set("dg-request-id", headerSafe(requestId));
  return new Response(JSON.stringify(body), { status, headers: responseHeaders });
}

/** Retry-After is whole seconds (RFC 9110 §10.2.3); never 0, which invites an instant retry. */
function retryAfterSeconds(seconds: number): number {
  return Number.isFinite(seconds) ? Math.max(1, Math.ceil(seconds)) : 1;
}

/** 400 for an invalid handshake option, naming it (Deepgram's err_code is "Bad Request"). */
export function badOption(
  failure: Extract<OptionsResult, { ok: false }>,
  requestId: string,
): Response {
  return httpError(400, "Bad Request", failure.message, requestId, { option: failure.option });
}

/** 400 for a malformed request that is not about one option (e.g. a bad resume offset). */
export function badRequest(errMsg: string, requestId: string): Response {
  return httpError(400, "Bad Request", errMsg, requestId);
}

/** 401: no key, an unknown or revoked key, or an expired token. */
/** Why a well-formed credential was refused, by its scheme (the same words on every route). */
export const REFUSED_CREDENTIAL = {
  token: "invalid or revoked API key",
  bearer: "invalid or expired access token",
} as const;

export function invalidAuth(requestId: string, errMsg = "Invalid credentials."): Response {
  return httpError(401, "INVALID_AUTH", errMsg, requestId, undefined, {
    // RFC 9110 §11.6.1: a 401 names the schemes it accepts (Deepgram's `Token`, and `Bearer`).
    "www-authenticate": 'Token realm="earshot", Bearer realm="earshot"',
  });
}

/** 426: `/v1/listen` was requested without `Upgrade: websocket`. */
export function upgradeRequired(requestId: string): Response {
  return httpError(
    426,
    "UPGRADE_REQUIRED",
    "/v1/listen is a WebSocket endpoint: connect with Upgrade: websocket",
    requestId,
    undefined,
    { upgrade: "websocket" },
  );
}

/**
 * 429: the account is at its concurrent-session limit. The SDK surfaces a handshake 429 as an
 * error and does not retry, so Retry-After (and `retry_after` in the body) tells a caller when.
 */
export function tooManyRequests(
  requestId: string,
  retryAfter: number,
  errMsg = "Too many concurrent sessions for this account.",
  extra?: Record<string, string | number>,
): Response {
  const seconds = retryAfterSeconds(retryAfter);
  return httpError(
    429,
    "TOO_MANY_REQUESTS",
    errMsg,
    requestId,
    { ...extra, retry_after: seconds },
    { "retry-after": String(seconds) },
  );
}

/** 503: Earshot itself is full or a dependency (model storage) is unavailable. */
export function serviceUnavailable(
  requestId: string,
  retryAfter?: number,
  errMsg = "The service is temporarily unavailable.",
): Response {
  if (retryAfter === undefined) return httpError(503, "SERVICE_UNAVAILABLE", errMsg, requestId);
  const seconds = retryAfterSeconds(retryAfter);
  return httpError(
    503,
    "SERVICE_UNAVAILABLE",
    errMsg,
    requestId,
    { retry_after: seconds },
    { "retry-after": String(seconds) },
  );
}
