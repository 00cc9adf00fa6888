/** Test accounts written straight into D1 (the admin API has its own tests). */
import { env } from "cloudflare:workers";
import { hashApiKey } from "../../src/auth/api-keys";

export interface TestAccount {
  accountId: string;
  key: string;
}

export async function createAccount(limits: {
  maxConcurrentSessions: number;
  maxSessionSeconds?: number | null;
}): Promise<TestAccount> {
  const accountId = `acc_test_${crypto.randomUUID()}`;
  const key = `esk_test_${crypto.randomUUID()}`;
  const now = Date.now();
  await env.DB.batch([
    env.DB.prepare(
      "INSERT INTO accounts (id, name, max_concurrent_sessions, max_session_seconds, created_at) VALUES (?, ?, ?, ?, ?)",
    ).bind(accountId, "test", limits.maxConcurrentSessions, limits.maxSessionSeconds ?? null, now),
    await keyInsert(accountId, key, now),
  ]);
  return { accountId, key };
}

/** Another API key of `accountId`, as the admin API would add one. */
export async function addKey(accountId: string): Promise<string> {
  const key = `esk_test_${crypto.randomUUID()}`;
  await (await keyInsert(accountId, key, Date.now())).run();
  return key;
}

async function keyInsert(
  accountId: string,
  key: string,
  now: number,
): Promise<D1PreparedStatement> {
  return env.DB.prepare(
    "INSERT INTO api_keys (id, account_id, key_hash, label, created_at) VALUES (?, ?, ?, 'test', ?)",
  ).bind(`key_${crypto.randomUUID()}`, accountId, await hashApiKey(key), now);
}
