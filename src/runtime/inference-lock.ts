/**
 * One model inference at a time per isolate. ORT-web runs single-threaded WASM; interleaving two
 * `run` calls is not supported, and keeping runs whole makes each session's latency predictable.
 *
 * A FIFO of tickets in isolate memory. Each ticket carries a TurnEnd its owner created and ends
 * when it leaves the queue (own-context.ts: a waiter may await a promise another object created
 * and settles, never have its own promise settled by another). A caller whose ticket is not first
 * awaits the ticket just ahead of it, so each release wakes exactly the next waiter, at once and
 * in its own context. The uncontended path never waits.
 *
 * A ticket whose owner vanished (its object was reset while waiting or holding) never ends, so it
 * must not stop the isolate's inference: each waiter also sets one timer of its own (for when the
 * head of the queue would turn stale, at most STALE_WAITER_MS) and then removes a stale head. Staleness is judged against the queue's
 * last progress, not the wall clock alone: after a long hold the next waiter gets a full
 * STALE_WAITER_MS to take its turn. A live waiter whose ticket was removed anyway rejoins.
 */
import { createLogger } from "./log.ts";
import { awaitTurnEnd, TurnEnd } from "./own-context.ts";

const log = createLogger();

/** A head that has not taken its turn 5 s after the queue last moved is gone (a live one takes it at once). */
const STALE_WAITER_MS = 5_000;
/** Longest one exclusive section may hold the lock: 60 s, ~30× the slowest inference (a 30-s encoder pass). */
const MAX_HOLD_MS = 60_000;

interface Ticket {
  turn: TurnEnd;
  /** When its owner last woke while waiting. */
  heartbeat: number;
  runningSince: number | null;
  /** A run of a transcription the isolate's scheduler granted (see transcriptionWaiting). */
  transcription: boolean;
}

const queue: Ticket[] = [];
/** When the head of the queue last changed (a ticket started or left). */
let lastProgress = 0;

/** Milliseconds until the head of the queue counts as abandoned (≤ 0: it does now). */
function headStaleIn(now: number): number {
  const head = queue[0];
  if (head === undefined) return STALE_WAITER_MS;
  return head.runningSince === null
    ? Math.max(head.heartbeat, lastProgress) + STALE_WAITER_MS - now
    : head.runningSince + MAX_HOLD_MS - now;
}

function reapHead(now: number): void {
  const head = queue[0];
  if (head === undefined || headStaleIn(now) >= 0) return;
  queue.shift();
  lastProgress = now;
  log.error("inference lock: removed an abandoned ticket", {
    state: head.runningSince === null ? "waiting" : "holding",
  });
}

/**
 * Runs `work` alone in the isolate. `transcription`: it is a model run of the transcription the
 * inference scheduler granted (src/stt/inference-scheduler.ts), whose wait here is not a stall.
 */
export async function runExclusive<T>(work: () => Promise<T>, transcription = false): Promise<T> {
  const ticket: Ticket = {
    turn: new TurnEnd(),
    heartbeat: Date.now(),
    runningSince: null,
    transcription,
  };
  queue.push(ticket);
  try {
    while (queue[0] !== ticket) {
      const ahead = queue[queue.indexOf(ticket) - 1];
      // Wake just after the head would turn stale (+1 ms), and at least every STALE_WAITER_MS:
      // the ticket ahead may be a vanished waiter that never ends, to be reaped once it is head.
      const wakeIn = Math.min(headStaleIn(Date.now()) + 1, STALE_WAITER_MS);
      if (ahead !== undefined) await awaitTurnEnd(ahead.turn.ended, wakeIn);
      ticket.heartbeat = Date.now();
      reapHead(ticket.heartbeat);
      // Removed as stale while alive (a very long hold elsewhere): take a place again.
      if (!queue.includes(ticket)) queue.push(ticket);
    }
    ticket.runningSince = Date.now();
    lastProgress = ticket.runningSince;
    return await work();
  } finally {
    const at = queue.indexOf(ticket);
    if (at >= 0) queue.splice(at, 1);
    if (at === 0) lastProgress = Date.now();
    ticket.turn.end();
  }
}

/**
 * Whether a transcription's model run is waiting here with its owner alive (woken within
 * STALE_WAITER_MS, as a live waiter always is). The scheduler does not count that wait as its
 * running job's stall: the lock itself reaps what holds it up (a vanished holder after
 * MAX_HOLD_MS, a vanished waiter after STALE_WAITER_MS).
 */
export function transcriptionWaiting(now = Date.now()): boolean {
  return queue.some(
    (ticket) =>
      ticket.transcription &&
      ticket.runningSince === null &&
      now - ticket.heartbeat <= STALE_WAITER_MS + 1_000,
  );
}

/** How many inferences are running or queued in this isolate right now. */
export function inferenceQueueDepth(): number {
  return queue.length;
}
