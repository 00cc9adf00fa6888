/**
 * Shared by the accounts tests (not a setup file): the bindings, typed, and the admin and account
 * sub-apps mounted the way src/index.ts mounts them, plus a stand-in `/v1/listen` route to prove
 * the account API's middleware does not run in front of it.
 */
import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { createAccount, createKey } from "../../src/accounts/account-store";
import type { AccountsEnv } from "../../src/accounts/http";
import { accountRoutes } from "../../src/routes/account-api";
import { adminRoutes } from "../../src/routes/admin";

/** The admin token vitest.config.ts gives the worker (≥ 32 characters, as the API requires). */
export const ADMIN_TOKEN = "test-only-admin-token-0123456789abcdef";

export const testEnv = env as unknown as AccountsEnv;

export const app = new Hono<{ Bindings: AccountsEnv }>();
app.get("/v1/listen", (c) => c.text("listen reached"));
app.route("/admin", adminRoutes);
app.route("/v1", accountRoutes);

/** Sends a request through the mounted app with the test bindings (overridable per call). */
export function send(
  path: string,
  init: RequestInit = {},
  bindings: AccountsEnv = testEnv,
): Promise<Response> {
  return Promise.resolve(app.request(`http://earshot.test${path}`, init, bindings));
}

export function adminHeaders(token = ADMIN_TOKEN): Record<string, string> {
  return { authorization: `Bearer ${token}`, "content-type": "application/json" };
}

/** A fresh account (random id) and one API key for it, straight through the store. */
export async function newAccountWithKey(
  maxConcurrentSessions = 3,
  maxSessionSeconds: number | null = null,
): Promise<{ accountId: string; key: string; keyId: string }> {
  const account = await createAccount(
    testEnv.DB,
    { name: "test account", maxConcurrentSessions, maxSessionSeconds },
    Date.now(),
  );
  const created = await createKey(testEnv.DB, account.id, "test key", Date.now());
  if (created === null) throw new Error("account vanished");
  return { accountId: account.id, key: created.key, keyId: created.info.id };
}

export async function jsonOf(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}
