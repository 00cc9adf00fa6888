/**
 * The account limiter's SQLite schema (one row per session, one row of totals) and the row shapes
 * read back from it, with the check every usage report passes before it is stored.
 */
import type { SessionUsage } from "./lease";

export type SessionRow = {
  session_id: string;
  started_at: number;
  lease_expires_at: number | null;
  audio_received: number;
  audio_transcribed: number;
  ended_at: number | null;
  end_reason: string | null;
};

export type TotalsRow = {
  sessions_total: number;
  audio_received: number;
  audio_transcribed: number;
};

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS sessions (
  session_id TEXT PRIMARY KEY,
  started_at INTEGER NOT NULL,
  -- ms since the epoch; NULL once ended.
  lease_expires_at INTEGER,
  -- Latest cumulative report, seconds.
  audio_received REAL NOT NULL DEFAULT 0,
  audio_transcribed REAL NOT NULL DEFAULT 0,
  -- NULL while the session holds a slot.
  ended_at INTEGER,
  -- 'released' (closed by the session) or 'expired' (reclaimed: the session stopped renewing).
  end_reason TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (lease_expires_at);
CREATE TABLE IF NOT EXISTS totals (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  sessions_total INTEGER NOT NULL,
  audio_received REAL NOT NULL,
  audio_transcribed REAL NOT NULL
);
INSERT OR IGNORE INTO totals (id, sessions_total, audio_received, audio_transcribed)
  VALUES (1, 0, 0, 0);
`;

export function checkUsage(usage: SessionUsage): void {
  for (const [name, value] of Object.entries(usage)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`usage.${name} must be a finite number >= 0`);
    }
  }
}
