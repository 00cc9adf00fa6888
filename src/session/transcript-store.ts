/**
 * A session's durable record in its Durable Object's SQLite: who owns it, its options, how it
 * ended, and every final transcript in order. It is what `GET /v1/sessions/:id/transcript` reads,
 * and it outlives the socket. A resumable session also keeps every final Results message exactly
 * as sent (empty ones too), numbered from 0, to replay those a resuming client lacks.
 */
import type { Transcript } from "../stt/transcriber";

export interface StoredFinal {
  start: number;
  end: number;
  transcript: string;
}

export interface SessionRecord {
  sessionId: string;
  accountId: string;
  optionsJson: string;
  createdAt: number;
}

export class TranscriptStore {
  /** Whether the tables exist; known after the first look (see #hasSchema). */
  #schema: boolean | null = null;

  constructor(private readonly sql: SqlStorage) {}

  /**
   * The tables are created when a session begins, never by a read: a lookup of an unknown id (a
   * transcript request, a resume) must not leave storage behind in an object nobody uses.
   */
  #hasSchema(): boolean {
    this.#schema ??=
      this.sql
        .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'session'")
        .toArray().length > 0;
    return this.#schema;
  }

  #createSchema(): void {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS session (
      id TEXT PRIMARY KEY,
      account_id TEXT NOT NULL,
      options TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      ended_at INTEGER,
      bytes_received INTEGER NOT NULL DEFAULT 0,
      close_code INTEGER,
      close_reason TEXT
    )`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS final (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      start REAL NOT NULL,
      "end" REAL NOT NULL,
      transcript TEXT NOT NULL,
      words TEXT NOT NULL
    )`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS delivery (
      seq INTEGER PRIMARY KEY,
      message TEXT NOT NULL
    )`);
    this.#schema = true;
  }

  /** The session this object holds, if it ever started. */
  record(): SessionRecord | null {
    if (!this.#hasSchema()) return null;
    const row = this.sql
      .exec<{ id: string; account_id: string; options: string; created_at: number }>(
        "SELECT id, account_id, options, created_at FROM session LIMIT 1",
      )
      .toArray()[0];
    return row
      ? {
          sessionId: row.id,
          accountId: row.account_id,
          optionsJson: row.options,
          createdAt: row.created_at,
        }
      : null;
  }

  begin(record: SessionRecord): void {
    this.#createSchema();
    this.sql.exec(
      "INSERT INTO session (id, account_id, options, created_at) VALUES (?, ?, ?, ?)",
      record.sessionId,
      record.accountId,
      record.optionsJson,
      record.createdAt,
    );
  }

  addFinal(transcript: Transcript): void {
    this.sql.exec(
      `INSERT INTO final (start, "end", transcript, words) VALUES (?, ?, ?, ?)`,
      transcript.start,
      transcript.end,
      transcript.text,
      JSON.stringify(transcript.words),
    );
  }

  /** Final Results number `seq` of a resumable session, as sent (JSON text). */
  addDelivery(seq: number, message: string): void {
    this.sql.exec("INSERT INTO delivery (seq, message) VALUES (?, ?)", seq, message);
  }

  /** The final Results from number `seq` on, in order, as sent. */
  deliveriesFrom(seq: number): string[] {
    return this.sql
      .exec<{ message: string }>("SELECT message FROM delivery WHERE seq >= ? ORDER BY seq", seq)
      .toArray()
      .map((row) => row.message);
  }

  /** Whether the session's end was recorded (false for one whose object died while live). */
  hasEnded(): boolean {
    if (!this.#hasSchema()) return false;
    const row = this.sql
      .exec<{ ended_at: number | null }>("SELECT ended_at FROM session LIMIT 1")
      .toArray()[0];
    return row !== undefined && row.ended_at !== null;
  }

  finals(): StoredFinal[] {
    if (!this.#hasSchema()) return [];
    return this.sql
      .exec<{ start: number; end: number; transcript: string }>(
        `SELECT start, "end" AS end, transcript FROM final ORDER BY seq`,
      )
      .toArray()
      .map((row) => ({ start: row.start, end: row.end, transcript: row.transcript }));
  }

  end(bytesReceived: number, code: number, reason: string, at: number): void {
    this.sql.exec(
      "UPDATE session SET ended_at = ?, bytes_received = ?, close_code = ?, close_reason = ?",
      at,
      bytesReceived,
      code,
      reason,
    );
  }
}
