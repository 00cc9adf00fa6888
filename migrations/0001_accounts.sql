-- Accounts and their API keys. Times are milliseconds since the Unix epoch (INTEGER), so they
-- compare and sort without parsing; the API renders them as ISO 8601.

CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  -- Simultaneous sessions the account may hold; 0 refuses every new session.
  max_concurrent_sessions INTEGER NOT NULL CHECK (max_concurrent_sessions >= 0),
  -- Longest single session in seconds; NULL = only the service-wide cap applies.
  max_session_seconds INTEGER CHECK (max_session_seconds IS NULL OR max_session_seconds > 0),
  created_at INTEGER NOT NULL,
  -- Set when the account is disabled: its keys and tokens stop authenticating.
  disabled_at INTEGER
);

-- Only the SHA-256 of a key is stored (hex); the key itself is shown once, when created.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts (id),
  key_hash TEXT NOT NULL UNIQUE,
  label TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);

CREATE INDEX api_keys_by_account ON api_keys (account_id);
