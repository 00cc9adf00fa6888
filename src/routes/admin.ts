/**
 * The admin API, mounted at `/admin`: accounts, their limits and their API keys. Authenticated by
 * `Authorization: Bearer <admin token>`, the secret EARSHOT_ADMIN_TOKEN (random per clone in
 * local .dev.vars, written by tools/dev/dev.ts). API keys and access tokens are never admin
 * credentials. JSON in and out.
 *
 *   POST   /admin/accounts            {name, max_concurrent_sessions, max_session_seconds?} → 201
 *   GET    /admin/accounts/:id        → 200 account with its keys (metadata only)
 *   PATCH  /admin/accounts/:id        {name?, max_concurrent_sessions?, max_session_seconds?,
 *                                      disabled?} → 200 {..., ended_sessions}: disabling ends the
 *                                      account's live sessions (session/operator-end.ts)
 *   POST   /admin/accounts/:id/keys   {label?} → 201 {id, key, ...}: the key, shown this once
 *   DELETE /admin/keys/:keyId         → 204 (revoke; idempotent): the sessions opened with the
 *                                      key, or with tokens it minted, end
 *   DELETE /admin/sessions/:id        → 204: that live session ends; 404 when it is not live
 *
 * Changes take effect in this isolate at once and everywhere within KEY_CACHE_TTL_MS (5 s).
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import {
  createAccount,
  createKey,
  getAccount,
  listKeys,
  revokeKey,
  updateAccount,
} from "../accounts/account-store";
import {
  type AccountsEnv,
  accountJson,
  badBody,
  jsonReply,
  keyJson,
  newRequestId,
  notFound,
  readJsonObject,
} from "../accounts/http";
import { parseAccountPatch, parseNewAccount, parseNewKey } from "../accounts/request-bodies";
import { invalidateAccountCache } from "../auth/authenticate";
import { MAX_SESSION_ID_CHARS } from "../limits/lease";
import { httpError, invalidAuth, serviceUnavailable } from "../protocol/http-errors";
import { createLogger } from "../runtime/log";
import { endAccountSessions, endSession } from "../session/operator-end";

type AdminContext = { Bindings: AccountsEnv; Variables: { requestId: string } };

export const adminRoutes = new Hono<AdminContext>();

/** Compares secrets through their SHA-256 digests, so the time taken does not depend on them. */
async function sameSecret(a: string, b: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [da, db] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(da, db);
}

/**
 * Shortest admin token accepted: 32 characters (≥ 192 bits as base64url). A short or guessable
 * token turns the admin API over to whoever can reach the worker, so a deployment with one keeps
 * the API closed rather than open. tools/dev/dev.ts writes 43 random base64url characters.
 */
export const MIN_ADMIN_TOKEN_LENGTH = 32;

const requireAdmin: MiddlewareHandler<AdminContext> = async (c, next) => {
  const requestId = newRequestId();
  c.set("requestId", requestId);
  const adminToken = c.env.EARSHOT_ADMIN_TOKEN;
  if (adminToken === undefined || adminToken === "") {
    // Unconfigured is the operator's fault, not the caller's: say so instead of a bare 401.
    return serviceUnavailable(
      requestId,
      undefined,
      "admin API disabled: EARSHOT_ADMIN_TOKEN is not set",
    );
  }
  if (adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    return serviceUnavailable(
      requestId,
      undefined,
      `admin API disabled: EARSHOT_ADMIN_TOKEN is shorter than ${MIN_ADMIN_TOKEN_LENGTH} characters`,
    );
  }
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(c.req.header("Authorization") ?? "");
  const presented = match?.[1];
  if (presented === undefined) {
    return invalidAuth(requestId, "admin API needs 'Authorization: Bearer <admin token>'");
  }
  if (!(await sameSecret(presented, adminToken))) {
    return invalidAuth(requestId, "invalid admin token");
  }
  await next();
};

adminRoutes.use("*", requireAdmin);

adminRoutes.onError((error, c) => {
  createLogger().error("admin API: request failed", {
    method: c.req.method,
    path: c.req.path,
    error,
  });
  return httpError(
    500,
    "INTERNAL_ERROR",
    "admin request failed",
    c.get("requestId") ?? newRequestId(),
  );
});

function accountNotFound(c: Context<AdminContext>, id: string): Response {
  return notFound(`no account '${id}'`, c.get("requestId"));
}

adminRoutes.post("/accounts", async (c) => {
  const requestId = c.get("requestId");
  const body = await readJsonObject(c.req.raw, false);
  if (!body.ok) return badBody(body, requestId);
  const input = parseNewAccount(body.value);
  if (!input.ok) return badBody(input, requestId);
  const account = await createAccount(c.env.DB, input.value, Date.now());
  return jsonReply(accountJson(account), 201, requestId);
});

adminRoutes.get("/accounts/:id", async (c) => {
  const requestId = c.get("requestId");
  const id = c.req.param("id");
  const account = await getAccount(c.env.DB, id);
  if (account === null) return accountNotFound(c, id);
  const keys = await listKeys(c.env.DB, id);
  return jsonReply({ ...accountJson(account), keys: keys.map(keyJson) }, 200, requestId);
});

adminRoutes.patch("/accounts/:id", async (c) => {
  const requestId = c.get("requestId");
  const id = c.req.param("id");
  const body = await readJsonObject(c.req.raw, false);
  if (!body.ok) return badBody(body, requestId);
  const patch = parseAccountPatch(body.value);
  if (!patch.ok) return badBody(patch, requestId);
  const account = await updateAccount(c.env.DB, id, patch.value, Date.now());
  if (account === null) return accountNotFound(c, id);
  invalidateAccountCache(id);
  // Disabling stops the account's use now: its live sessions end (finals and Metadata first).
  const { ended, unreached } =
    patch.value.disabled === true
      ? await endAccountSessions(c.env, id, { reason: "account disabled" })
      : { ended: [], unreached: [] };
  return jsonReply(
    { ...accountJson(account), ended_sessions: ended, unreached_sessions: unreached },
    200,
    requestId,
  );
});

adminRoutes.post("/accounts/:id/keys", async (c) => {
  const requestId = c.get("requestId");
  const id = c.req.param("id");
  const body = await readJsonObject(c.req.raw, true);
  if (!body.ok) return badBody(body, requestId);
  const input = parseNewKey(body.value);
  if (!input.ok) return badBody(input, requestId);
  const created = await createKey(c.env.DB, id, input.value.label, Date.now());
  if (created === null) return accountNotFound(c, id);
  // The only response that ever contains the key: D1 keeps its hash.
  return jsonReply({ ...keyJson(created.info), key: created.key }, 201, requestId);
});

adminRoutes.delete("/keys/:keyId", async (c) => {
  const requestId = c.get("requestId");
  const keyId = c.req.param("keyId");
  const revoked = await revokeKey(c.env.DB, keyId, Date.now());
  if (revoked === null) return notFound(`no key '${keyId}'`, requestId);
  invalidateAccountCache(revoked.accountId);
  // The sessions opened with the key (or with tokens it minted) end now; the account's others run on.
  await endAccountSessions(c.env, revoked.accountId, { keyId, reason: "API key revoked" });
  return jsonReply(null, 204, requestId);
});

/** Ends one live session (finals and Metadata first, then close 1008 AUTH-0001); 404 if not live. */
adminRoutes.delete("/sessions/:id", async (c) => {
  const requestId = c.get("requestId");
  const sessionId = c.req.param("id");
  if (
    sessionId.length > MAX_SESSION_ID_CHARS ||
    !(await endSession(c.env, sessionId, "ended by an operator"))
  ) {
    return notFound(`no live session '${sessionId}'`, requestId);
  }
  return jsonReply(null, 204, requestId);
});
