/**
 * Everything a session does runs through one serial queue: a Durable Object's handlers interleave
 * at every `await`, so without it a Finalize could overtake the audio sent before it, or two audio
 * frames could reach the VAD out of order. Tasks run one at a time in the order they were pushed.
 *
 * The queue also counts the audio bytes waiting in it, so the session can refuse a client that
 * sends faster than the session can process (see MAX_QUEUED_AUDIO_SECONDS in caps.ts).
 */
export class SerialQueue {
  #tail: Promise<void> = Promise.resolve();
  #pendingTasks = 0;
  #pendingAudioBytes = 0;
  #closed = false;

  /** `onError` receives a task's failure; the queue goes on with the next task. */
  constructor(private readonly onError: (error: unknown, label: string) => void) {}

  get pendingTasks(): number {
    return this.#pendingTasks;
  }

  /** Audio bytes pushed but not yet processed. */
  get pendingAudioBytes(): number {
    return this.#pendingAudioBytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Queues `task`. Returns a promise that settles when it has run (never rejects: failures go to
   * `onError`). After `close()`, pushes are ignored and resolve at once with false.
   */
  push(label: string, task: () => Promise<void> | void, audioBytes = 0): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    this.#pendingTasks += 1;
    this.#pendingAudioBytes += audioBytes;
    const run = this.#tail.then(async () => {
      try {
        await task();
      } catch (error) {
        this.onError(error, label);
      } finally {
        this.#pendingTasks -= 1;
        this.#pendingAudioBytes -= audioBytes;
      }
    });
    this.#tail = run;
    return run.then(() => true);
  }

  /** Stops accepting tasks; what is already queued still runs. Resolves when it has. */
  close(): Promise<void> {
    this.#closed = true;
    return this.#tail;
  }
}
