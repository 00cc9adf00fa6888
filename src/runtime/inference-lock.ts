/**
 * One model inference at a time per isolate. ORT-web runs single-threaded WASM; interleaving two
 * `run` calls is not supported, and keeping runs whole makes each session's latency predictable.
 *
 * A FIFO of tickets in isolate memory. A caller whose ticket is not first waits on its own timers
 * (see own-context.ts: a promise resolved by another Durable Object would resume it in that
 * object's I/O context). The uncontended path never waits.
 *
 * A ticket whose owner vanished (its object was reset while waiting or holding) must not stop the
 * isolate's inference, so stale tickets are removed — judged against the queue's last progress,
 * not the wall clock alone: after a long hold, when no timer could fire, the next waiter gets a
 * full STALE_WAITER_MS to notice its turn. A live waiter whose ticket was removed anyway rejoins.
 */
import { sleep } from "./own-context.ts";

/** How often a waiting caller looks again: 2 ms, small next to one Whisper decoder step (~20 ms). */
export const LOCK_POLL_MS = 2;
/** A waiter silent for 5 s since the queue last moved is gone: 2500 of its polls were missed. */
const STALE_WAITER_MS = 5_000;
/** Longest one exclusive section may hold the lock: 60 s, ~30× the slowest inference (a 30-s encoder pass). */
const MAX_HOLD_MS = 60_000;

interface Ticket {
  heartbeat: number;
  runningSince: number | null;
}

const queue: Ticket[] = [];
/** When the head of the queue last changed (a ticket started or left). */
let lastProgress = 0;

function reapHead(now: number): void {
  const head = queue[0];
  if (head === undefined) return;
  const stale =
    head.runningSince === null
      ? now - Math.max(head.heartbeat, lastProgress) > STALE_WAITER_MS
      : now - head.runningSince > MAX_HOLD_MS;
  if (stale) {
    queue.shift();
    lastProgress = now;
    console.error(
      JSON.stringify({
        level: "error",
        event: "inference lock: removed an abandoned ticket",
        state: head.runningSince === null ? "waiting" : "holding",
      }),
    );
  }
}

export async function runExclusive<T>(work: () => Promise<T>): Promise<T> {
  const ticket: Ticket = { heartbeat: Date.now(), runningSince: null };
  queue.push(ticket);
  try {
    while (queue[0] !== ticket) {
      await sleep(LOCK_POLL_MS);
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
  }
}

/** How many inferences are running or queued in this isolate right now. */
export function inferenceQueueDepth(): number {
  return queue.length;
}
