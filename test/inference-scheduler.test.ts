/**
 * The isolate's inference scheduler, without models: jobs are promises the test resolves, so the
 * order in which the scheduler starts them is observed exactly.
 */
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/runtime/log";
import { judgeFailure } from "../src/session/session-end";
import {
  FinalsBacklogError,
  InferenceScheduler,
  type JobKind,
  MAX_PENDING_FINALS_PER_SESSION,
} from "../src/stt/inference-scheduler";
import { STALLED_RUN_MS } from "../src/stt/turn-deadlines";

/** A job that records when it starts and finishes when the test says. */
function harness() {
  const started: string[] = [];
  const gates = new Map<string, () => void>();
  const scheduler = new InferenceScheduler();
  const submit = (session: string, kind: JobKind, label: string) =>
    scheduler.submit(session, kind, () => {
      started.push(label);
      return new Promise<string>((resolve) => gates.set(label, () => resolve(label)));
    });
  const finish = async (label: string) => {
    await expect.poll(() => gates.has(label), { timeout: 2_000 }).toBe(true);
    gates.get(label)?.();
  };
  return { scheduler, started, submit, finish };
}

describe("inference scheduler", () => {
  it("runs one job at a time, finals before interims", async () => {
    const { started, submit, finish } = harness();
    const first = submit("a", "interim", "a-interim-1");
    const interim = submit("b", "interim", "b-interim");
    const final = submit("c", "final", "c-final");
    expect(started).toEqual(["a-interim-1"]);
    await finish("a-interim-1");
    await finish("c-final");
    await finish("b-interim");
    expect(started).toEqual(["a-interim-1", "c-final", "b-interim"]);
    expect(await first).toEqual({ status: "done", value: "a-interim-1" });
    expect(await final).toEqual({ status: "done", value: "c-final" });
    expect(await interim).toEqual({ status: "done", value: "b-interim" });
  });

  it("serves sessions round-robin, keeping each session's finals in order", async () => {
    const { started, submit, finish } = harness();
    const all = [
      submit("blocker", "final", "blocker"),
      submit("a", "final", "a1"),
      submit("a", "final", "a2"),
      submit("a", "final", "a3"),
      submit("b", "final", "b1"),
      submit("c", "final", "c1"),
    ];
    for (const label of ["blocker", "a1", "b1", "c1", "a2", "a3"]) await finish(label);
    await Promise.all(all);
    expect(started).toEqual(["blocker", "a1", "b1", "c1", "a2", "a3"]);
  });

  it("keeps one waiting interim per session: a newer one replaces it", async () => {
    const { scheduler, started, submit, finish } = harness();
    const blocker = submit("x", "final", "blocker");
    const old = submit("a", "interim", "a-old");
    const fresh = submit("a", "interim", "a-new");
    expect(await old).toEqual({ status: "dropped" });
    await finish("blocker");
    await finish("a-new");
    await Promise.all([blocker, fresh]);
    expect(started).toEqual(["blocker", "a-new"]);
    expect(scheduler.stats().droppedInterims).toBe(1);
  });

  it("cancels a waiting interim when its utterance ends", async () => {
    const { scheduler, submit, finish } = harness();
    const blocker = submit("x", "final", "blocker");
    const interim = submit("a", "interim", "a-interim");
    scheduler.cancelInterim("a");
    expect(await interim).toEqual({ status: "dropped" });
    await finish("blocker");
    await blocker;
  });

  it("takes a waiting final out of the queue when its signal aborts (a voided early final)", async () => {
    const { scheduler, started, submit, finish } = harness();
    const blocker = submit("x", "final", "blocker");
    const abort = new AbortController();
    const early = scheduler.submit("a", "final", async () => "early", abort.signal);
    const next = submit("b", "final", "b1");
    expect(scheduler.waiting).toBe(2);
    abort.abort();
    expect(await early).toEqual({ status: "dropped" });
    expect(scheduler.waiting).toBe(1);
    await finish("blocker");
    await finish("b1");
    await Promise.all([blocker, next]);
    expect(started).toEqual(["blocker", "b1"]);
    expect(scheduler.stats().droppedInterims).toBe(0);
  });

  it("stops a running interim only for a due final; an early final not yet due still goes first", async () => {
    const { scheduler, started, submit, finish } = harness();
    const interim = submit("b", "interim", "b-interim");
    await expect.poll(() => started).toEqual(["b-interim"]);
    // Session a's early final at its first silent frame: not due, so b's preview runs on.
    let due = false;
    const early = scheduler.submit(
      "a",
      "final",
      async () => "a-early",
      undefined,
      () => due,
    );
    const waitingInterim = submit("c", "interim", "c-interim");
    expect(scheduler.finalsWaiting).toBe(0);
    // Not due, it is still granted before any interim once b's ends.
    await finish("b-interim");
    expect(await early).toEqual({ status: "done", value: "a-early" });
    await expect.poll(() => started).toEqual(["b-interim", "c-interim"]);
    // Behind c's interim, a's next early final: not due, then its silence goes on, and it is
    // what a client waits for: c's interim should stop.
    const next = scheduler.submit(
      "a",
      "final",
      async () => "a-next",
      undefined,
      () => due,
    );
    expect(scheduler.finalsWaiting).toBe(0);
    due = true;
    expect(scheduler.finalsWaiting).toBe(1);
    await finish("c-interim");
    expect(await next).toEqual({ status: "done", value: "a-next" });
    await Promise.all([interim, waitingInterim]);
    // A final submitted without `due` is due at once.
    const blocker = submit("x", "interim", "x-interim");
    const final = submit("y", "final", "y-final");
    expect(scheduler.finalsWaiting).toBe(1);
    await finish("x-interim");
    await finish("y-final");
    await Promise.all([blocker, final]);
  });

  it(`refuses a session's final beyond ${MAX_PENDING_FINALS_PER_SESSION} waiting`, async () => {
    const { submit, finish } = harness();
    const running = submit("x", "final", "blocker");
    const waiting = Array.from({ length: MAX_PENDING_FINALS_PER_SESSION }, (_, i) =>
      submit("a", "final", `a${i}`),
    );
    const refused = submit("a", "final", "one-too-many");
    await expect(refused).rejects.toBeInstanceOf(FinalsBacklogError);
    // The session it comes from closes 1011 STT-0001, naming the cap (session-end.ts). A
    // WhisperSession's pipeline waits before reaching it (whisper-session.ts FINALS_AHEAD), so
    // this is what a transcriber that does not wait would meet.
    const error = await refused.catch((e: unknown) => e);
    expect(judgeFailure(error, "audio", createLogger()).close).toEqual({
      code: 1011,
      reason: `STT-0001: ${MAX_PENDING_FINALS_PER_SESSION} finals already waiting for this session (cap ${MAX_PENDING_FINALS_PER_SESSION})`,
    });
    // Another session is not affected by a's backlog.
    const other = submit("b", "final", "b1");
    await finish("blocker");
    for (let i = 0; i < MAX_PENDING_FINALS_PER_SESSION; i++) {
      await finish(`a${i}`);
      if (i === 0) await finish("b1");
    }
    await Promise.all([running, other, ...waiting]);
  });

  it("passes a job's failure to its caller and goes on with the next", async () => {
    const scheduler = new InferenceScheduler();
    const failing = scheduler.submit("a", "final", () => Promise.reject(new Error("boom")));
    const next = scheduler.submit("b", "final", async () => "ok");
    await expect(failing).rejects.toThrow("boom");
    expect(await next).toEqual({ status: "done", value: "ok" });
  });

  it("measures queue depth and waiting time", async () => {
    let clock = 0;
    const scheduler = new InferenceScheduler(() => clock);
    let release: () => void = () => {};
    const first = scheduler.submit("a", "final", () => new Promise<void>((r) => (release = r)));
    const second = scheduler.submit("b", "final", async () => {});
    const third = scheduler.submit("c", "interim", async () => {});
    expect(scheduler.stats().peakWaiting).toBe(2);
    expect(scheduler.busy).toBe(true);
    clock = 250;
    release();
    await Promise.all([first, second, third]);
    const stats = scheduler.stats();
    expect(stats.waitMs.final).toEqual([0, 250]);
    expect(stats.waitMs.interim).toEqual([250]);
    expect(stats.completed).toEqual({ final: 2, interim: 1 });
  });

  it("withdraws the turn of a job that never finishes (its session vanished mid-run)", async () => {
    let clock = 0;
    const scheduler = new InferenceScheduler(() => clock);
    void scheduler.submit("gone", "final", () => new Promise<never>(() => {}));
    const next = scheduler.submit("alive", "final", async () => "ran");
    clock = 60_000; // a long run, but not implausibly long: the turn is kept
    void scheduler.submit("probe", "interim", async () => {}); // looks at the turn now
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(scheduler.stats().completed.final).toBe(0);
    clock = 121_000; // past MAX_RUNNING_MS
    expect(await next).toEqual({ status: "done", value: "ran" });
  });

  it(`withdraws the turn of a job that reported progress and then none for ${STALLED_RUN_MS / 1000} s`, async () => {
    // A session reset between two model runs: its job never takes another turn. Every other
    // session waits behind it, so it is withdrawn long before MAX_RUNNING_MS.
    let clock = 0;
    const scheduler = new InferenceScheduler(() => clock);
    let report: () => void = () => {};
    void scheduler.submit("gone", "final", (progress) => {
      report = progress;
      progress();
      return new Promise<never>(() => {});
    });
    const next = scheduler.submit("alive", "final", async () => "ran");
    // Progress keeps it: at 15 s it is still running, having reported at 8 s.
    clock = 8_000;
    report();
    clock = 15_000;
    void scheduler.submit("probe", "interim", async () => {}); // looks at the turn now
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(scheduler.stats().completed.final).toBe(0);
    expect(scheduler.waiting).toBe(2); // "alive" and the probe
    clock = 8_000 + STALLED_RUN_MS + 1;
    expect(await next).toEqual({ status: "done", value: "ran" });
  });
});
