/**
 * A session object reset while it waits for the inference lock or a scheduler turn must not stop
 * the isolate: its turn never ends (its TurnEnd is never ended, runtime/own-context.ts), so the
 * waiters behind it time it out with their own timers and go on. The object is reset for real
 * (`ctx.abort()`), which cancels its pending code.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { inferenceQueueDepth, runExclusive } from "../src/runtime/inference-lock";
import { InferenceScheduler } from "../src/stt/inference-scheduler";
import { STALLED_RUN_MS } from "../src/stt/turn-deadlines";
import { holdInferenceLock } from "./helpers/busy-isolate";

/** The waiter behind the vanished one is reaped after 5 s (STALE_WAITER_MS, STALE_GRANT_MS). */
const WITHIN_MS = 30_000;

function freshObject() {
  return env.SESSION.get(env.SESSION.idFromName(`vanished-${crypto.randomUUID()}`));
}

/** Resets the object; the reset also fails the request that asks for it. */
async function reset(stub: DurableObjectStub): Promise<void> {
  await runInDurableObject(stub, (_instance, state) => state.abort("reset by the test")).catch(
    () => {},
  );
}

/** The `event` of each JSON line logged through console.error. */
function loggedEvents(spy: { mock: { calls: unknown[][] } }): string[] {
  return spy.mock.calls.flatMap((call) => {
    try {
      return [String((JSON.parse(String(call[0])) as { event?: unknown }).event)];
    } catch {
      return [];
    }
  });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("a waiter whose object was reset", () => {
  it("does not stop the inference lock", async () => {
    const errors = vi.spyOn(console, "error");
    const hold = await holdInferenceLock();
    const gone = freshObject();
    const abandoned = runInDurableObject(gone, () => runExclusive(async () => "never")).catch(
      (error: unknown) => String(error),
    );
    await expect.poll(() => inferenceQueueDepth(), { timeout: 10_000 }).toBe(2);
    await reset(gone);
    await abandoned;
    const next = runExclusive(async () => "ran");
    expect(inferenceQueueDepth()).toBe(3);
    await hold.release();
    await expect.poll(() => inferenceQueueDepth(), { timeout: WITHIN_MS, interval: 100 }).toBe(0);
    expect(await next).toBe("ran");
    expect(loggedEvents(errors)).toContain("inference lock: removed an abandoned ticket");
  });

  it("does not stop the scheduler when it is granted the turn", async () => {
    const errors = vi.spyOn(console, "error");
    const scheduler = new InferenceScheduler();
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const first = scheduler.submit("first", "final", () => gate);
    const gone = freshObject();
    const abandoned = runInDurableObject(gone, () =>
      scheduler.submit("gone", "final", async () => "never"),
    ).catch((error: unknown) => String(error));
    await expect.poll(() => scheduler.waiting, { timeout: 10_000 }).toBe(1);
    await reset(gone);
    await abandoned;
    const next = scheduler.submit("next", "final", async () => "ran");
    open();
    await first;
    expect(await next).toEqual({ status: "done", value: "ran" });
    expect(scheduler.stats().completed.final).toBe(2);
    expect(loggedEvents(errors)).toContain("inference scheduler: withdrew an abandoned turn");
  });

  it(`does not stop the scheduler for long when reset mid-run (${STALLED_RUN_MS / 1000} s without progress)`, async () => {
    const errors = vi.spyOn(console, "error");
    const scheduler = new InferenceScheduler();
    const gone = freshObject();
    let running = false;
    const abandoned = runInDurableObject(gone, () =>
      scheduler.submit("gone", "final", (progress) => {
        running = true;
        progress(); // as a transcription does after its model load, at its first turn
        return new Promise<never>(() => {});
      }),
    ).catch((error: unknown) => String(error));
    await expect.poll(() => running, { timeout: 10_000 }).toBe(true);
    await reset(gone);
    await abandoned;
    const started = Date.now();
    const next = scheduler.submit("next", "final", async () => "ran");
    expect(await next).toEqual({ status: "done", value: "ran" });
    // Withdrawn at the first look past STALLED_RUN_MS (waiters look at least every 5 s), where
    // the 2-min bound for a job that never reports progress held every session of the isolate.
    expect(Date.now() - started).toBeLessThan(STALLED_RUN_MS + 6_000);
    expect(loggedEvents(errors)).toContain("inference scheduler: withdrew an abandoned turn");
  });

  it(`does not withdraw a live job that waits over ${STALLED_RUN_MS / 1000} s for the inference lock`, async () => {
    // The lock is held up (here by the test; in production by a vanished holder, which the lock
    // reaps itself): the job granted the scheduler's turn waits for it without reporting
    // progress, alive. Withdrawing it would let the next job run beside it.
    const errors = vi.spyOn(console, "error");
    const hold = await holdInferenceLock();
    const scheduler = new InferenceScheduler();
    const order: string[] = [];
    const waiting = scheduler.submit("waits", "final", async (progress) => {
      progress();
      await runExclusive(async () => order.push("waits ran"), true);
      order.push("waits done");
      return "waited";
    });
    const behind = scheduler.submit("behind", "final", async () => {
      order.push("behind ran");
      return "ran";
    });
    await new Promise((resolve) => setTimeout(resolve, STALLED_RUN_MS + 2_000));
    expect(order).toEqual([]);
    await hold.release();
    expect(await waiting).toEqual({ status: "done", value: "waited" });
    expect(await behind).toEqual({ status: "done", value: "ran" });
    expect(order).toEqual(["waits ran", "waits done", "behind ran"]);
    expect(loggedEvents(errors)).not.toContain("inference scheduler: withdrew an abandoned turn");
  });
});
