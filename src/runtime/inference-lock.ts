/**
 * One model inference at a time per isolate. ORT-web runs single-threaded WASM; interleaving two
 * `run` calls is not supported, and keeping runs whole makes each session's latency predictable.
 *
 * A FIFO of tickets in isolate memory. A caller whose ticket is not first waits on its own timers
 * (see own-context.ts: a promise resolved by another Durable Object would resume it in that
 * object's I/O context). The uncontended path never waits. A ticket whose owner stopped polling
 * (its object was reset while waiting) or that has held the lock implausibly long is removed, so a
 * vanished object can never stop the isolate's inference.
 */
import { sleep } from "./own-context.ts";

/** How often a waiting caller looks again: 2 ms, small next to a VAD frame's 0.5 ms × queue. */
export const LOCK_POLL_MS = 2;
/** A waiter that has not polled for 5 s is gone (250× its poll interval). */
const STALE_WAITER_MS = 5_000;
/** Longest one exclusive section may hold the lock: 60 s, ~30× the slowest inference (a 30-s encoder pass). */
const MAX_HOLD_MS = 60_000;

interface Ticket {
  heartbeat: number;
  runningSince: number | null;
}

const queue: Ticket[] = [];

function reapHead(now: number): void {
  const head = queue[0];
  if (head === undefined) return;
  const stale =
    head.runningSince === null
      ? now - head.heartbeat > STALE_WAITER_MS
      : now - head.runningSince > MAX_HOLD_MS;
  if (stale) {
    queue.shift();
    console.error(
      JSON.stringify({ level: "error", event: "inference lock: removed an abandoned ticket" }),
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
    }
    ticket.runningSince = Date.now();
    return await work();
  } finally {
    const at = queue.indexOf(ticket);
    if (at >= 0) queue.splice(at, 1);
  }
}

/** How many inferences are running or queued in this isolate right now. */
export function inferenceQueueDepth(): number {
  return queue.length;
}
