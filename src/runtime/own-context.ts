/**
 * Waiting across Durable Objects that share an isolate.
 *
 * workerd runs a promise's continuations in the I/O context of the code that resolved it. If
 * session B awaits a promise that session A resolves (a shared lock, a shared model load, a shared
 * scheduler), B's code after the `await` runs as A: B's socket and storage then refuse it
 * ("Cannot perform I/O on behalf of a different Durable Object"). So objects in one isolate never
 * wake each other through promises. A waiter reads shared *state* on timers it registers itself —
 * a timer fires in the context that set it — and goes on in its own context.
 *
 * Waiters can vanish (their object is reset mid-wait), so shared state that others wait on must
 * not depend on the waiter coming back: see the staleness rules where this is used.
 */

/** Resolves after `ms`, in the caller's own I/O context. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Shared once-per-isolate initialisation (a model load) that any object may await. The first
 * caller loads in its own context; the others poll until it is done. A failed load is forgotten,
 * so the next caller tries again; a load whose owner vanished is taken over after `staleMs`.
 */
export class IsolateOnce<T> {
  #state: { kind: "idle" } | { kind: "loading"; since: number } | { kind: "ready"; value: T } = {
    kind: "idle",
  };

  readonly #pollMs: number;
  readonly #staleMs: number;

  // No parameter properties here: src/stt/whisper/ pulls this file into Node scripts, and Node's
  // type stripping accepts only erasable syntax.
  /** `staleMs`: a load running longer than this is presumed abandoned (its object was reset). */
  constructor(pollMs = 10, staleMs = 120_000) {
    this.#pollMs = pollMs;
    this.#staleMs = staleMs;
  }

  get ready(): boolean {
    return this.#state.kind === "ready";
  }

  async get(load: () => Promise<T>): Promise<T> {
    for (;;) {
      const state = this.#state;
      if (state.kind === "ready") return state.value;
      if (state.kind === "loading" && Date.now() - state.since < this.#staleMs) {
        await sleep(this.#pollMs);
        continue;
      }
      const mine = { kind: "loading" as const, since: Date.now() };
      this.#state = mine;
      try {
        const value = await load();
        this.#state = { kind: "ready", value };
        return value;
      } catch (error) {
        if (this.#state === mine) this.#state = { kind: "idle" };
        throw error;
      }
    }
  }
}
