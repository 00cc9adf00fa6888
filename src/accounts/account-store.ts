/**
 * The account store: accounts and API keys in D1 (schema in migrations/0001_accounts.sql).
 * Plain functions over a `D1Database`; every write is one statement, so each is atomic on its own.
 * Keys are stored only as their SHA-256 (src/auth/api-keys.ts explains why that is enough).
 */

import { generateApiKey, generateId, hashApiKey } from "../auth/api-keys";

/** What an account may hold: checked at admission (the handshake), never against a running session. */
export interface AccountLimits {
  /** Simultaneous sessions the account may hold. */
  maxConcurrentSessions: number;
  /** Longest a single session may run, in seconds; null = the service-wide cap only. */
  maxSessionSeconds: number | null;
}

export interface Account {
  id: string;
  name: string;
  maxConcurrentSessions: number;
  maxSessionSeconds: number | null;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch; null while the account is enabled. */
  disabledAt: number | null;
}

export interface ApiKeyInfo {
  id: string;
  accountId: string;
  label: string | null;
  createdAt: number;
  revokedAt: number | null;
}

/** What authentication needs to know about a key, read in one query. */
export interface KeyRecord {
  keyId: string;
  accountId: string;
  keyRevoked: boolean;
  accountDisabled: boolean;
  limits: AccountLimits;
}

export interface NewAccount {
  /** Normally generated; given explicitly only for fixed ids such as the local `demo` account. */
  id?: string;
  name: string;
  maxConcurrentSessions: number;
  maxSessionSeconds: number | null;
}

export interface AccountPatch {
  name?: string;
  maxConcurrentSessions?: number;
  maxSessionSeconds?: number | null;
  disabled?: boolean;
}

interface AccountRow {
  id: string;
  name: string;
  max_concurrent_sessions: number;
  max_session_seconds: number | null;
  created_at: number;
  disabled_at: number | null;
}

interface KeyRow {
  id: string;
  account_id: string;
  label: string | null;
  created_at: number;
  revoked_at: number | null;
}

interface KeyAuthRow {
  id: string;
  account_id: string;
  revoked_at: number | null;
  disabled_at: number | null;
  max_concurrent_sessions: number;
  max_session_seconds: number | null;
}

const ACCOUNT_COLUMNS =
  "id, name, max_concurrent_sessions, max_session_seconds, created_at, disabled_at";

function toAccount(row: AccountRow): Account {
  return {
    id: row.id,
    name: row.name,
    maxConcurrentSessions: row.max_concurrent_sessions,
    maxSessionSeconds: row.max_session_seconds,
    createdAt: row.created_at,
    disabledAt: row.disabled_at,
  };
}

function toKeyInfo(row: KeyRow): ApiKeyInfo {
  return {
    id: row.id,
    accountId: row.account_id,
    label: row.label,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

export async function createAccount(
  db: D1Database,
  input: NewAccount,
  nowMs: number,
): Promise<Account> {
  const row = await db
    .prepare(
      `INSERT INTO accounts (id, name, max_concurrent_sessions, max_session_seconds, created_at)
       VALUES (?, ?, ?, ?, ?) RETURNING ${ACCOUNT_COLUMNS}`,
    )
    .bind(
      input.id ?? generateId("acc"),
      input.name,
      input.maxConcurrentSessions,
      input.maxSessionSeconds,
      nowMs,
    )
    .first<AccountRow>();
  if (row === null) throw new Error("INSERT ... RETURNING gave no row");
  return toAccount(row);
}

export async function getAccount(db: D1Database, id: string): Promise<Account | null> {
  const row = await db
    .prepare(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = ?`)
    .bind(id)
    .first<AccountRow>();
  return row === null ? null : toAccount(row);
}

/** Applies the fields present in `patch`; null when the account does not exist. */
export async function updateAccount(
  db: D1Database,
  id: string,
  patch: AccountPatch,
  nowMs: number,
): Promise<Account | null> {
  // Column names come from this fixed list, never from the request.
  const sets: string[] = [];
  const values: Array<string | number | null> = [];
  if (patch.name !== undefined) {
    sets.push("name = ?");
    values.push(patch.name);
  }
  if (patch.maxConcurrentSessions !== undefined) {
    sets.push("max_concurrent_sessions = ?");
    values.push(patch.maxConcurrentSessions);
  }
  if (patch.maxSessionSeconds !== undefined) {
    sets.push("max_session_seconds = ?");
    values.push(patch.maxSessionSeconds);
  }
  if (patch.disabled !== undefined) {
    // Disabling twice keeps the first time; enabling clears it.
    sets.push(patch.disabled ? "disabled_at = COALESCE(disabled_at, ?)" : "disabled_at = NULL");
    if (patch.disabled) values.push(nowMs);
  }
  if (sets.length === 0) return getAccount(db, id);
  const row = await db
    .prepare(`UPDATE accounts SET ${sets.join(", ")} WHERE id = ? RETURNING ${ACCOUNT_COLUMNS}`)
    .bind(...values, id)
    .first<AccountRow>();
  return row === null ? null : toAccount(row);
}

export async function listKeys(db: D1Database, accountId: string): Promise<ApiKeyInfo[]> {
  const { results } = await db
    .prepare(
      `SELECT id, account_id, label, created_at, revoked_at FROM api_keys
       WHERE account_id = ? ORDER BY created_at, id`,
    )
    .bind(accountId)
    .all<KeyRow>();
  return results.map(toKeyInfo);
}

/**
 * Creates a key for the account and returns it in plaintext: the only time it exists outside the
 * caller's hands. Null when the account does not exist. `key` may be given (the local demo key).
 */
export async function createKey(
  db: D1Database,
  accountId: string,
  label: string | null,
  nowMs: number,
  key: string = generateApiKey(),
): Promise<{ info: ApiKeyInfo; key: string } | null> {
  // One statement: the existence check and the insert cannot be split by a concurrent write.
  const row = await db
    .prepare(
      `INSERT INTO api_keys (id, account_id, key_hash, label, created_at)
       SELECT ?, id, ?, ?, ? FROM accounts WHERE id = ?
       RETURNING id, account_id, label, created_at, revoked_at`,
    )
    .bind(generateId("key"), await hashApiKey(key), label, nowMs, accountId)
    .first<KeyRow>();
  return row === null ? null : { info: toKeyInfo(row), key };
}

/** Revokes a key (idempotent: the first revocation time is kept); null when it does not exist. */
export async function revokeKey(
  db: D1Database,
  keyId: string,
  nowMs: number,
): Promise<ApiKeyInfo | null> {
  const row = await db
    .prepare(
      `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?
       RETURNING id, account_id, label, created_at, revoked_at`,
    )
    .bind(nowMs, keyId)
    .first<KeyRow>();
  return row === null ? null : toKeyInfo(row);
}

const KEY_AUTH_SELECT = `SELECT k.id, k.account_id, k.revoked_at, a.disabled_at,
  a.max_concurrent_sessions, a.max_session_seconds
  FROM api_keys k JOIN accounts a ON a.id = k.account_id`;

function toKeyRecord(row: KeyAuthRow): KeyRecord {
  return {
    keyId: row.id,
    accountId: row.account_id,
    keyRevoked: row.revoked_at !== null,
    accountDisabled: row.disabled_at !== null,
    limits: {
      maxConcurrentSessions: row.max_concurrent_sessions,
      maxSessionSeconds: row.max_session_seconds,
    },
  };
}

/** The key whose SHA-256 is `keyHash` (hex), with its account's state and limits. */
export async function findKeyByHash(db: D1Database, keyHash: string): Promise<KeyRecord | null> {
  const row = await db
    .prepare(`${KEY_AUTH_SELECT} WHERE k.key_hash = ?`)
    .bind(keyHash)
    .first<KeyAuthRow>();
  return row === null ? null : toKeyRecord(row);
}

/** The key with id `keyId` (a token's `kid`), with its account's state and limits. */
export async function findKeyById(db: D1Database, keyId: string): Promise<KeyRecord | null> {
  const row = await db.prepare(`${KEY_AUTH_SELECT} WHERE k.id = ?`).bind(keyId).first<KeyAuthRow>();
  return row === null ? null : toKeyRecord(row);
}
