/**
 * Waiting across Durable Objects that share an isolate.
 *
 * workerd tags each promise with the I/O context (the Durable Object) that created it, and
 * test/cross-object-wakeup.test.ts shows what that means for one object waking another
 * (workerd 1.20261102, compatibility date 2026-11-01, `handle_cross_request_promise_resolution`
 * on):
 *
 * - B awaiting a promise that A created and A resolves goes on in B's own context: B's socket and
 *   storage work after the await.
 * - B awaiting a promise that B created and A resolves is never woken: workerd refuses the
 *   hand-over ("Cannot perform I/O on behalf of a different Durable Object", raised unhandled in
 *   the isolate) and B's request fails with "Promise will never complete".
 *
 * So a turn is handed over through a promise its *owner* creates and settles: whoever holds the
 * lock, runs a job or loads a model makes a `TurnEnd` in its own context and ends it itself; the
 * objects waiting behind it await that. Nobody ever resolves a promise another object created.
 *
 * Waiters and owners can vanish (their object is reset), and a vanished owner never ends its turn.
 * So each waiter also sets one timer of its own (`awaitTurnEnd`'s `ms`) and, when it fires, judges
 * the shared state stale or not: see the staleness rules where this is used.
 */

/** Resolves after `ms`, in the caller's own I/O context. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The end of one object's turn, which other objects in the isolate may await. Create it and call
 * `end` only in the owning object's own code (see above: the promise belongs to its creator).
 */
export class TurnEnd {
  readonly ended: Promise<void>;
  #end: () => void = () => {};

  constructor() {
    this.ended = new Promise((resolve) => {
      this.#end = resolve;
    });
  }

  end(): void {
    this.#end();
  }
}

/**
 * Waits for `ended` (another object's TurnEnd, or the caller's own) or `ms`, whichever comes first,
 * and goes on in the caller's own context either way. The timer is the waiter's own, so it fires
 * even when the awaited owner vanished; it is cleared as soon as the turn ends, so a handoff costs
 * no timer wake-up.
 */
export async function awaitTurnEnd(ended: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      ended,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(1, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Shared once-per-isolate initialisation (a model load) that any object may await. The first
 * caller loads in its own context; the others await the end of its load and then read the result.
 * A failed load is forgotten, so the next caller tries again; a load whose owner vanished is taken
 * over after `staleMs`, which each waiter times itself.
 */
export class IsolateOnce<T> {
  #state:
    | { kind: "idle" }
    | { kind: "loading"; since: number; turn: TurnEnd }
    | { kind: "ready"; value: T } = { kind: "idle" };

  readonly #staleMs: number;

  // No parameter properties here: src/stt/whisper/ pulls this file into Node scripts, and Node's
  // type stripping accepts only erasable syntax.
  /** `staleMs`: a load running longer than this is presumed abandoned (its object was reset). */
  constructor(staleMs = 120_000) {
    this.#staleMs = staleMs;
  }

  get ready(): boolean {
    return this.#state.kind === "ready";
  }

  async get(load: () => Promise<T>): Promise<T> {
    for (;;) {
      const state = this.#state;
      if (state.kind === "ready") return state.value;
      const left = state.kind === "loading" ? state.since + this.#staleMs - Date.now() : 0;
      if (state.kind === "loading" && left > 0) {
        await awaitTurnEnd(state.turn.ended, left);
        continue;
      }
      const mine = { kind: "loading" as const, since: Date.now(), turn: new TurnEnd() };
      this.#state = mine;
      try {
        const value = await load();
        this.#state = { kind: "ready", value };
        return value;
      } catch (error) {
        if (this.#state === mine) this.#state = { kind: "idle" };
        throw error;
      } finally {
        mine.turn.end();
      }
    }
  }
}
