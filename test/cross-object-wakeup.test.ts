/**
 * Can one Durable Object wake another in the same isolate through a promise? The inference lock,
 * the scheduler and the shared model load (src/runtime/own-context.ts) hand turns over between
 * session objects, so it matters exactly which promise a waiter may await.
 *
 * workerd tags every promise with the I/O context that created it. Measured here (workerd
 * 1.20261102, compatibility date 2026-11-01, so `handle_cross_request_promise_resolution` is on):
 *
 * - A waiter that awaits a promise *another* object created and resolves goes on in its *own*
 *   context: its storage and its socket work after the await. This is what the runtime's handoff
 *   is built on: each turn's owner creates and resolves its own "done" promise, and waiters await it.
 * - A waiter that awaits a promise *it* created, which another object resolves, is never woken:
 *   the resolve raises an unhandled "Cannot perform I/O on behalf of a different Durable Object
 *   (I/O type: RefcountedFulfiller)" in the isolate, and the waiter's request then fails with
 *   "Promise will never complete". So, between Durable Objects, the flag does not make it safe to
 *   wake a waiter by resolving the waiter's own promise: the opposite of what issue 11 expected.
 *
 * The third case runs the runtime's own handoff (inference lock, scheduler) between two objects.
 *
 * Session objects (fresh names, never given a session) run code through `runInDurableObject`;
 * they and this test share the isolate and this module's state.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { inferenceQueueDepth, runExclusive } from "../src/runtime/inference-lock";
import { InferenceScheduler } from "../src/stt/inference-scheduler";

/** How long the waiter waits for its wake-up before it records that none came. */
const WAKE_TIMEOUT_MS = 3_000;

/** What the waiting object saw and then managed to do in its own context. */
interface AfterWait {
  woken: boolean;
  stored: string | undefined;
  sqlRows: number;
  echoed: string;
}

function freshObject() {
  return env.SESSION.get(env.SESSION.idFromName(`wakeup-${crypto.randomUUID()}`));
}

/**
 * Runs in the waiting object: accepts a socket pair, waits for `waitFor()` (or its own timer), then
 * writes its storage (KV and SQL) and sends on its socket, and reports what arrived. Any I/O that
 * workerd refuses in this context rejects the returned promise.
 */
function waiter(waitFor: () => Promise<void>) {
  return runInDurableObject(freshObject(), async (_instance, state): Promise<AfterWait> => {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    client.accept();
    server.accept();
    const echoed = new Promise<string>((resolve) =>
      client.addEventListener("message", (event) => resolve(String(event.data)), { once: true }),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const woken = await Promise.race([
      waitFor().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), WAKE_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    server.send("after the wait");
    await state.storage.put("woken", String(woken));
    state.storage.sql.exec("CREATE TABLE IF NOT EXISTS woken (at INTEGER)");
    state.storage.sql.exec("INSERT INTO woken VALUES (?)", Date.now());
    return {
      woken,
      stored: await state.storage.get<string>("woken"),
      sqlRows: state.storage.sql.exec("SELECT * FROM woken").toArray().length,
      echoed: await echoed,
    };
  });
}

describe("waking another Durable Object in the isolate", () => {
  it("a waiter awaiting a promise another object created and resolves goes on in its own context", async () => {
    let resolveTurn: (() => void) | null = null;
    let turn: Promise<void> | null = null;
    let waiting = false;
    const other = freshObject();
    await runInDurableObject(other, () => {
      turn = new Promise<void>((resolve) => {
        resolveTurn = resolve;
      });
    });
    const result = waiter(() => {
      waiting = true;
      return turn ?? Promise.reject(new Error("no promise to wait for"));
    });
    await expect.poll(() => waiting, { timeout: 10_000 }).toBe(true);
    // The other object resolves its own promise, in a later request of its own.
    await runInDurableObject(other, () => resolveTurn?.());
    await expect(result).resolves.toEqual({
      woken: true,
      stored: "true",
      sqlRows: 1,
      echoed: "after the wait",
    });
  });

  it("the inference lock and the scheduler hand a turn from one object to another, which then uses its own I/O", async () => {
    // The gate is this test's promise, so either object may await it (the first case above).
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let holding = false;
    const holder = runInDurableObject(freshObject(), () =>
      runExclusive(async () => {
        holding = true;
        await gate;
      }),
    );
    await expect.poll(() => holding, { timeout: 10_000 }).toBe(true);
    const locked = waiter(() => runExclusive(async () => {}));
    const scheduler = new InferenceScheduler();
    const running = runInDurableObject(freshObject(), () =>
      scheduler.submit("a", "final", () => gate.then(() => "a")),
    );
    const scheduled = waiter(async () => {
      const outcome = await scheduler.submit("b", "final", async () => "b");
      expect(outcome).toEqual({ status: "done", value: "b" });
    });
    // Both waiters are queued behind the turn the other object holds.
    await expect.poll(() => inferenceQueueDepth(), { timeout: 10_000 }).toBe(2);
    await expect.poll(() => scheduler.waiting, { timeout: 10_000 }).toBe(1);
    open();
    await holder;
    await expect(running).resolves.toEqual({ status: "done", value: "a" });
    for (const result of [locked, scheduled]) {
      await expect(result).resolves.toEqual({
        woken: true,
        stored: "true",
        sqlRows: 1,
        echoed: "after the wait",
      });
    }
  });

  it("a waiter awaiting its own promise, resolved by another object, is never woken", async () => {
    // workerd reports the failed hand-over as an unhandled rejection in the isolate, not to the
    // resolver's call: caught here, so it is checked rather than failing the run.
    const unhandled: unknown[] = [];
    const onUnhandled = (event: PromiseRejectionEvent) => {
      unhandled.push(event.reason);
      event.preventDefault();
    };
    addEventListener("unhandledrejection", onUnhandled);
    try {
      let wake: (() => void) | null = null;
      const result = waiter(
        () =>
          new Promise<void>((resolve) => {
            wake = resolve;
          }),
      );
      await expect.poll(() => wake !== null, { timeout: 10_000 }).toBe(true);
      await runInDurableObject(freshObject(), () => wake?.());
      await expect(result).rejects.toThrow("Promise will never complete");
      expect(unhandled.map(String)).toEqual([
        expect.stringContaining("Cannot perform I/O on behalf of a different Durable Object"),
      ]);
    } finally {
      removeEventListener("unhandledrejection", onUnhandled);
    }
  });
});
