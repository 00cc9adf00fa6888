/**
 * One model inference at a time per isolate. ORT-web runs single-threaded WASM; interleaving two
 * `run` calls on one session is not supported, and keeping runs whole makes each session's
 * latency predictable. This is a FIFO mutex: callers are served in the order they asked.
 */
let tail: Promise<unknown> = Promise.resolve();
let waiting = 0;

export async function runExclusive<T>(work: () => Promise<T>): Promise<T> {
  const previous = tail;
  let release: () => void = () => {};
  tail = new Promise<void>((resolve) => {
    release = resolve;
  });
  waiting += 1;
  try {
    await previous;
    return await work();
  } finally {
    waiting -= 1;
    release();
  }
}

/** How many inferences are running or queued in this isolate right now. */
export function inferenceQueueDepth(): number {
  return waiting;
}
