/**
 * Validation of the JSON bodies of the admin and account APIs. Every failure names the field, so
 * the route answers 400 `{err_code: "Bad Request", err_msg, field}`. Unknown fields are refused
 * too: a typo (`max_concurent_sessions`) must not silently leave a limit unchanged.
 */
import { DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS } from "../auth/access-token";
import type { AccountPatch, NewAccount } from "./account-store";

export const MAX_NAME_CHARS = 200;
export const MAX_LABEL_CHARS = 200;
/**
 * Highest settable concurrency: every live session renews its lease every 10 s, so 10 000
 * sessions cost their account's limiter 1 000 RPC/s, about what one Durable Object serves.
 */
export const MAX_CONCURRENT_SESSIONS_CAP = 10_000;
/** Highest settable session length: 24 h = 86 400 s. */
export const MAX_SESSION_SECONDS_CAP = 86_400;
/** Bodies are a few fields; 16 KiB is generous and keeps a hostile body from costing memory. */
export const MAX_BODY_BYTES = 16_384;

export type BodyResult<T> = { ok: true; value: T } | { ok: false; field: string; message: string };

type Fields = Record<string, unknown>;

function fail(field: string, message: string): { ok: false; field: string; message: string } {
  return { ok: false, field, message };
}

/**
 * Parses a request body as a JSON object. An empty body is `{}` when `optional` (POST .../keys and
 * /v1/auth/grant may be sent without one). The field named in failures is `body`.
 */
export function parseJsonObject(text: string, optional: boolean): BodyResult<Fields> {
  if (new TextEncoder().encode(text).byteLength > MAX_BODY_BYTES) {
    return fail("body", `body is larger than ${MAX_BODY_BYTES} bytes`);
  }
  if (text.trim() === "") return optional ? { ok: true, value: {} } : fail("body", "body is empty");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return fail("body", `body is not valid JSON: ${String(error)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail("body", "body must be a JSON object");
  }
  return { ok: true, value: value as Fields };
}

function unknownField(body: Fields, allowed: readonly string[]): string | undefined {
  return Object.keys(body).find((key) => !allowed.includes(key));
}

function checkName(value: unknown, field: string, max: number): string | null {
  if (typeof value !== "string" || value.trim() === "")
    return `${field} must be a non-empty string`;
  if (value.length > max) return `${field} must be at most ${max} characters`;
  return null;
}

function checkInteger(value: unknown, field: string, min: number, max: number): string | null {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    return `${field} must be an integer from ${min} to ${max}`;
  }
  return null;
}

const ACCOUNT_FIELDS = ["name", "max_concurrent_sessions", "max_session_seconds"] as const;

/** `POST /admin/accounts` `{name, max_concurrent_sessions, max_session_seconds?}`. */
export function parseNewAccount(body: Fields): BodyResult<NewAccount> {
  const extra = unknownField(body, ACCOUNT_FIELDS);
  if (extra !== undefined) return fail(extra, `unknown field '${extra}'`);
  const nameError = checkName(body.name, "name", MAX_NAME_CHARS);
  if (nameError !== null) return fail("name", nameError);
  const limitError = checkInteger(
    body.max_concurrent_sessions,
    "max_concurrent_sessions",
    0,
    MAX_CONCURRENT_SESSIONS_CAP,
  );
  if (limitError !== null) return fail("max_concurrent_sessions", limitError);
  const seconds = body.max_session_seconds ?? null;
  if (seconds !== null) {
    const error = checkInteger(seconds, "max_session_seconds", 1, MAX_SESSION_SECONDS_CAP);
    if (error !== null) return fail("max_session_seconds", `${error}, or null`);
  }
  return {
    ok: true,
    value: {
      name: (body.name as string).trim(),
      maxConcurrentSessions: body.max_concurrent_sessions as number,
      maxSessionSeconds: seconds as number | null,
    },
  };
}

const PATCH_FIELDS = [...ACCOUNT_FIELDS, "disabled"] as const;

/** `PATCH /admin/accounts/:id`: any of the account fields, plus `disabled` (boolean). */
export function parseAccountPatch(body: Fields): BodyResult<AccountPatch> {
  const extra = unknownField(body, PATCH_FIELDS);
  if (extra !== undefined) return fail(extra, `unknown field '${extra}'`);
  if (Object.keys(body).length === 0) {
    return fail("body", `body must set at least one of ${PATCH_FIELDS.join(", ")}`);
  }
  const patch: AccountPatch = {};
  if ("name" in body) {
    const error = checkName(body.name, "name", MAX_NAME_CHARS);
    if (error !== null) return fail("name", error);
    patch.name = (body.name as string).trim();
  }
  if ("max_concurrent_sessions" in body) {
    const value = body.max_concurrent_sessions;
    const error = checkInteger(value, "max_concurrent_sessions", 0, MAX_CONCURRENT_SESSIONS_CAP);
    if (error !== null) return fail("max_concurrent_sessions", error);
    patch.maxConcurrentSessions = value as number;
  }
  if ("max_session_seconds" in body) {
    const value = body.max_session_seconds;
    if (value !== null) {
      const error = checkInteger(value, "max_session_seconds", 1, MAX_SESSION_SECONDS_CAP);
      if (error !== null) return fail("max_session_seconds", `${error}, or null`);
    }
    patch.maxSessionSeconds = value as number | null;
  }
  if ("disabled" in body) {
    if (typeof body.disabled !== "boolean") return fail("disabled", "disabled must be a boolean");
    patch.disabled = body.disabled;
  }
  return { ok: true, value: patch };
}

/** `POST /admin/accounts/:id/keys` `{label?}`. */
export function parseNewKey(body: Fields): BodyResult<{ label: string | null }> {
  const extra = unknownField(body, ["label"]);
  if (extra !== undefined) return fail(extra, `unknown field '${extra}'`);
  const label = body.label ?? null;
  if (label !== null) {
    const error = checkName(label, "label", MAX_LABEL_CHARS);
    if (error !== null) return fail("label", `${error}, or null`);
  }
  return { ok: true, value: { label: label === null ? null : (label as string).trim() } };
}

/** `POST /v1/auth/grant` `{ttl_seconds?}` (Deepgram's field name). */
export function parseGrant(body: Fields): BodyResult<{ ttlSeconds: number }> {
  const extra = unknownField(body, ["ttl_seconds"]);
  if (extra !== undefined) return fail(extra, `unknown field '${extra}'`);
  const ttl = body.ttl_seconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  const error = checkInteger(ttl, "ttl_seconds", 1, MAX_TOKEN_TTL_SECONDS);
  if (error !== null) return fail("ttl_seconds", error);
  return { ok: true, value: { ttlSeconds: ttl as number } };
}
