/**
 * The local demo account and key: ordinary rows, created by `npm run dev:setup` for `wrangler dev`
 * and by the test setup (test/setup/d1.ts). The key is public by design and only ever seeded into
 * local databases. Idempotent (INSERT OR IGNORE), so running the setup twice changes nothing.
 *
 * This module imports nothing, so the Node script (tools/dev/setup.ts) can load it directly.
 */

export const DEMO_ACCOUNT_ID = "demo";
export const DEMO_KEY = "earshot-demo-key";
/** A fixed key id, so re-seeding finds the same row. */
export const DEMO_KEY_ID = "key_demo";
export const DEMO_ACCOUNT_NAME = "Local demo";
/** Deepgram's pay-as-you-go concurrency, so the demo behaves like a real project. */
export const DEMO_MAX_CONCURRENT_SESSIONS = 50;

/**
 * SQL statements that create the demo account and key. `keyHash` is the hex SHA-256 of DEMO_KEY
 * (src/auth/api-keys.ts `hashApiKey`); `nowMs` is the creation time. Literals only (no bindings)
 * because `wrangler d1 execute --command` takes plain SQL.
 */
export function demoSeedStatements(keyHash: string, nowMs: number): string[] {
  if (!/^[0-9a-f]{64}$/.test(keyHash)) throw new Error("keyHash must be 64 hex characters");
  const now = Math.floor(nowMs);
  return [
    `INSERT OR IGNORE INTO accounts (id, name, max_concurrent_sessions, max_session_seconds, created_at) VALUES ('${DEMO_ACCOUNT_ID}', '${DEMO_ACCOUNT_NAME}', ${DEMO_MAX_CONCURRENT_SESSIONS}, NULL, ${now});`,
    `INSERT OR IGNORE INTO api_keys (id, account_id, key_hash, label, created_at) VALUES ('${DEMO_KEY_ID}', '${DEMO_ACCOUNT_ID}', '${keyHash}', 'local demo key', ${now});`,
  ];
}
