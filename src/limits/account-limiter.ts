/**
 * One Durable Object per account (`idFromName(accountId)`): the account's session slots, as
 * leases, and its usage counters, in the DO's SQLite.
 *
 * Atomic admission: a DO runs one event at a time, but an `await` lets the next RPC in. Every
 * decision here (reclaim expired leases, count, admit or refuse, record) is made with synchronous
 * `sql.exec` calls and no `await` in between, so N+5 simultaneous acquires with limit N admit
 * exactly N. The only `await` is the alarm write at the end, after the decision is stored.
 *
 * Leases: a slot holds `lease_expires_at`; the session renews it every LEASE_RENEW_MS and releases
 * it on close. A lease past its expiry is reclaimed by the first limiter call that runs after it
 * (so it never blocks an admission) and by an alarm set for the earliest expiry (so the usage and
 * session views are right even when nobody calls). See limiter-client.ts for the numbers.
 *
 * Limits are the caller's (read from D1 by the handshake) and only gate admission: lowering a limit
 * never ends a session; the account is refused new ones until it is back under the limit.
 */
import { DurableObject } from "cloudflare:workers";
import { createLogger } from "../runtime/log";
import {
  type AcquireOutcome,
  type ActiveSession,
  LEASE_TTL_MS,
  type LimiterUsage,
  MAX_SESSION_ID_CHARS,
  type ReleaseOutcome,
  type RenewOutcome,
  type SessionUsage,
} from "./lease";
import { checkUsage, SCHEMA, type SessionRow, type TotalsRow } from "./limiter-schema";

/**
 * Ended sessions are kept this long (1 h), so that a late or repeated release or renew is
 * recognised (idempotent, no double-counted usage, no resurrected slot), then pruned by the alarm.
 * Rows are small (~100 bytes); an account ending one session per second keeps ~3 600 rows ≈ 360 KB.
 */
const ENDED_RETENTION_MS = 3_600_000;

export class AccountLimiter extends DurableObject {
  private readonly sql: SqlStorage;
  /**
   * The object is named by its account id (limiter-client.ts), which the object itself is not
   * told: its logs carry the object id and the session id, and the session's logs the account.
   */
  readonly #log = createLogger({ limiterId: this.ctx.id.toString() });

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // Synchronous, so no RPC can run before the schema exists.
    this.sql.exec(SCHEMA);
  }

  /** Admits `sessionId` if the account holds fewer than `limit` slots (see the module comment). */
  async acquire(sessionId: string, limit: number): Promise<AcquireOutcome> {
    if (sessionId.length === 0 || sessionId.length > MAX_SESSION_ID_CHARS) {
      throw new TypeError(`session id must be 1..${MAX_SESSION_ID_CHARS} characters`);
    }
    if (!Number.isInteger(limit) || limit < 0) throw new TypeError("limit must be an integer >= 0");
    // --- synchronous from here to the decision: no await ---
    const now = Date.now();
    this.reclaimExpired(now);
    const leaseExpiresAt = now + LEASE_TTL_MS;
    const row = this.findSession(sessionId);
    if (row !== null && row.ended_at === null) {
      // Already holds a slot (a retried call, a resumed session): renew, do not take another.
      this.sql.exec(
        "UPDATE sessions SET lease_expires_at = ? WHERE session_id = ?",
        leaseExpiresAt,
        sessionId,
      );
      const active = this.activeCount();
      await this.scheduleAlarm();
      return { ok: true, leaseExpiresAt, active };
    }
    const active = this.activeCount();
    if (active >= limit) return { ok: false, limit, active };
    if (row === null) {
      this.sql.exec(
        "INSERT INTO sessions (session_id, started_at, lease_expires_at) VALUES (?, ?, ?)",
        sessionId,
        now,
        leaseExpiresAt,
      );
      this.sql.exec("UPDATE totals SET sessions_total = sessions_total + 1 WHERE id = 1");
    } else {
      // An ended session coming back (resume after close): it counts as active again, not anew.
      this.sql.exec(
        `UPDATE sessions SET lease_expires_at = ?, ended_at = NULL, end_reason = NULL
         WHERE session_id = ?`,
        leaseExpiresAt,
        sessionId,
      );
    }
    // --- decision stored ---
    await this.scheduleAlarm();
    return { ok: true, leaseExpiresAt, active: active + 1 };
  }

  /** Extends the session's lease and records its usage. */
  async renew(sessionId: string, usage: SessionUsage): Promise<RenewOutcome> {
    checkUsage(usage);
    const now = Date.now();
    this.reclaimExpired(now);
    const row = this.findSession(sessionId);
    // Unknown: never admitted here (or pruned long ago). Creating it would bypass admission.
    if (row === null) return "unknown";
    this.recordUsage(row, usage);
    let outcome: RenewOutcome;
    if (row.ended_at === null) {
      outcome = "renewed";
    } else if (row.end_reason === "expired") {
      // The session stopped renewing long enough to be reclaimed, yet it is alive: it takes its
      // slot back even above the limit, because the limiter never ends a running session.
      this.#log.warn("limiter: session renewed after its lease was reclaimed", { sessionId });
      outcome = "retaken";
    } else {
      // Released: a renewal that crossed the release in flight must not resurrect the slot.
      return "released";
    }
    this.sql.exec(
      `UPDATE sessions SET lease_expires_at = ?, ended_at = NULL, end_reason = NULL
       WHERE session_id = ?`,
      now + LEASE_TTL_MS,
      sessionId,
    );
    await this.scheduleAlarm();
    return outcome;
  }

  /** Frees the session's slot and records its final usage. Idempotent. */
  async release(sessionId: string, usage: SessionUsage): Promise<ReleaseOutcome> {
    checkUsage(usage);
    const now = Date.now();
    this.reclaimExpired(now);
    const row = this.findSession(sessionId);
    if (row === null) return "unknown";
    this.recordUsage(row, usage);
    if (row.end_reason === "released") return "already-released";
    // Active, or reclaimed after expiry: either way it is now released for good. A reclaimed
    // session keeps its original end time (the slot was free from then on).
    this.sql.exec(
      `UPDATE sessions SET lease_expires_at = NULL, ended_at = COALESCE(ended_at, ?),
       end_reason = 'released' WHERE session_id = ?`,
      now,
      sessionId,
    );
    await this.scheduleAlarm();
    return "released";
  }

  /** Usage counters of the account, for `GET /v1/usage`. */
  usage(): LimiterUsage {
    this.reclaimExpired(Date.now());
    const totals = this.sql
      .exec<TotalsRow>(
        "SELECT sessions_total, audio_received, audio_transcribed FROM totals WHERE id = 1",
      )
      .one();
    return {
      activeSessions: this.activeCount(),
      sessionsTotal: totals.sessions_total,
      audioSecondsReceived: totals.audio_received,
      audioSecondsTranscribed: totals.audio_transcribed,
    };
  }

  /** The sessions holding a slot, oldest first, for `GET /v1/sessions`. */
  sessions(): ActiveSession[] {
    this.reclaimExpired(Date.now());
    return this.sql
      .exec<SessionRow>("SELECT * FROM sessions WHERE ended_at IS NULL ORDER BY started_at")
      .toArray()
      .map((row) => ({
        sessionId: row.session_id,
        startedAt: row.started_at,
        leaseExpiresAt: row.lease_expires_at ?? 0,
        audioSecondsReceived: row.audio_received,
        audioSecondsTranscribed: row.audio_transcribed,
      }));
  }

  /** Reclaims expired leases and prunes old ended sessions, then re-arms for the next one. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const reclaimed = this.reclaimExpired(now);
    if (reclaimed > 0) this.#log.info("limiter: reclaimed expired leases", { reclaimed });
    this.sql.exec(
      "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at <= ?",
      now - ENDED_RETENTION_MS,
    );
    await this.scheduleAlarm();
  }

  private findSession(sessionId: string): SessionRow | null {
    const rows = this.sql
      .exec<SessionRow>("SELECT * FROM sessions WHERE session_id = ?", sessionId)
      .toArray();
    return rows[0] ?? null;
  }

  private activeCount(): number {
    return this.sql
      .exec<{ n: number }>("SELECT COUNT(*) AS n FROM sessions WHERE ended_at IS NULL")
      .one().n;
  }

  /** Ends every lease past its expiry at `now`; returns how many. Synchronous. */
  private reclaimExpired(now: number): number {
    // Counted through RETURNING: rowsWritten would include the index's writes too.
    return this.sql
      .exec(
        `UPDATE sessions SET ended_at = lease_expires_at, lease_expires_at = NULL,
         end_reason = 'expired' WHERE ended_at IS NULL AND lease_expires_at <= ?
         RETURNING session_id`,
        now,
      )
      .toArray().length;
  }

  /** Usage reports are cumulative: add only what grew since the last report. */
  private recordUsage(row: SessionRow, usage: SessionUsage): void {
    const received = Math.max(0, usage.audioSecondsReceived - row.audio_received);
    const transcribed = Math.max(0, usage.audioSecondsTranscribed - row.audio_transcribed);
    this.sql.exec(
      `UPDATE sessions SET audio_received = audio_received + ?,
       audio_transcribed = audio_transcribed + ?, started_at = MIN(started_at, ?)
       WHERE session_id = ?`,
      received,
      transcribed,
      // startedAt 0 would mean "unknown"; the acquire time stands then.
      usage.startedAt > 0 ? usage.startedAt : row.started_at,
      row.session_id,
    );
    this.sql.exec(
      `UPDATE totals SET audio_received = audio_received + ?,
       audio_transcribed = audio_transcribed + ? WHERE id = 1`,
      received,
      transcribed,
    );
  }

  /** Arms the alarm for the next lease expiry or ended-row pruning, whichever is first. */
  private async scheduleAlarm(): Promise<void> {
    const next = this.sql
      .exec<{ at: number | null }>(
        `SELECT MIN(at) AS at FROM (
           SELECT MIN(lease_expires_at) AS at FROM sessions WHERE ended_at IS NULL
           UNION ALL
           SELECT MIN(ended_at) + ? AS at FROM sessions WHERE ended_at IS NOT NULL)`,
        ENDED_RETENTION_MS,
      )
      .one().at;
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next);
  }
}
