/**
 * Shared by the accounts tests (not a setup file): the bindings, typed, and requests through the
 * real worker — src/index.ts's own app with every route as it mounts them, never a copy — so a
 * change to the mounting (say, /admin/isolate ahead of the admin API's authentication) fails here.
 */
import { env, exports } from "cloudflare:workers";
import worker from "../../src";
import { createAccount, createKey } from "../../src/accounts/account-store";
import type { AccountsEnv } from "../../src/accounts/http";

/** The admin token vitest.config.ts gives the worker (≥ 32 characters, as the API requires). */
export const ADMIN_TOKEN = "test-only-admin-token-0123456789abcdef";

export const testEnv = env as unknown as AccountsEnv;

/**
 * Sends a request to the real worker. With the test bindings (the default) it goes through the
 * worker's own fetch handler as an outside request would; with other bindings (a misconfigured
 * deployment, a broken namespace) through the same app, given those bindings.
 */
export function send(
  path: string,
  init: RequestInit = {},
  bindings: AccountsEnv = testEnv,
): Promise<Response> {
  const url = `http://earshot.test${path}`;
  if (bindings === testEnv) return exports.default.fetch(new Request(url, init));
  return Promise.resolve(worker.request(url, init, bindings));
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
