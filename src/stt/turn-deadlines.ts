/**
 * When the isolate's inference turn (inference-scheduler.ts) counts as abandoned. The session
 * holding it may vanish (its object reset) without ending it, and every other session of the
 * isolate waits behind it, so each waiter looks again at the deadline below and the scheduler
 * withdraws the turn once it has passed. Pure: times in, times out.
 */

/** A grant not taken up within 5 s belongs to a session that is gone: a live one wakes at once. */
export const STALE_GRANT_MS = 5_000;
/**
 * A job running longer than 2 min belongs to a session that vanished mid-run (its object was
 * reset): the slowest job, a 15-s final on a loaded isolate, takes a few seconds. Its turn is
 * withdrawn so the isolate goes on transcribing. The bound for a job that never reports progress.
 */
export const MAX_RUNNING_MS = 120_000;
/**
 * A running job that reported progress (the scheduler's `run` callback: at every turn of its
 * transcription, the first after its model load) and then none for 10 s belongs to a session that
 * vanished mid-run: a live one takes a turn before its first two model runs and every fourth
 * after (runtime/turns.ts), a few tenths of a second apart here, unless it waits for the
 * inference lock, which is not counted (`lockWaited`). 10 s, not MAX_RUNNING_MS: every other
 * session of the isolate waits meanwhile, and a real-time client's queue reaches its cap (caps.ts
 * MAX_QUEUED_AUDIO_SECONDS, 20 s) before 2 min.
 */
export const STALLED_RUN_MS = 10_000;

/** What the deadline reads of the turn's holder (ms timestamps). */
export interface HeldTurn {
  /** "running" once its job runs; any other state is read as granted. */
  state: string;
  grantedAt: number;
  startedAt: number;
  /** When the running job last reported progress; null until it first does. */
  progressAt: number | null;
}

/**
 * When the turn counts as abandoned: a grant not taken up, or a run with no progress or no end.
 * `lockWaited`: a transcription's model run waits for the isolate's inference lock, its owner
 * alive (runtime/inference-lock.ts transcriptionWaiting): that is no stall, only the lock's own
 * bounds apply to what holds it up.
 */
export function abandonedAfter(turn: HeldTurn, lockWaited = false): number {
  if (turn.state !== "running") return turn.grantedAt + STALE_GRANT_MS;
  const stalled =
    turn.progressAt === null || lockWaited ? Infinity : turn.progressAt + STALLED_RUN_MS;
  return Math.min(turn.startedAt + MAX_RUNNING_MS, stalled);
}

/**
 * How long a waiter sleeps before it looks at the turn again, if the turn does not end first: just
 * past its deadline (+1 ms), and never longer than STALE_GRANT_MS.
 */
export function lookAgainIn(turn: HeldTurn | null, now: number, lockWaited = false): number {
  if (turn === null) return STALE_GRANT_MS;
  return Math.min(abandonedAfter(turn, lockWaited) - now + 1, STALE_GRANT_MS);
}
