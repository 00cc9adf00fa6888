/**
 * Sharing one isolate's CPU between sessions. Whisper runs single-threaded WASM, so one
 * transcription runs at a time per isolate; this scheduler decides which:
 *
 * - finals before interims: a final is an answer a client is waiting for; an interim is a preview;
 * - round-robin between sessions within each class: the session served least recently goes first,
 *   so one talkative session cannot starve the others;
 * - at most one waiting interim per session: a newer one replaces the older (whose result would be
 *   stale anyway), and interims are what gets dropped when the isolate falls behind — never finals,
 *   never audio;
 * - a session whose finals pile up beyond MAX_PENDING_FINALS_PER_SESSION is refused: it gets a
 *   clear error instead of answers that arrive later and later;
 * - a job submitted with an AbortSignal leaves the queue when it is aborted while waiting (an
 *   early final that speech made useless);
 * - a running interim stops for another session's final waiting (`finalsWaiting`), not for an
 *   early final not yet `due` (one silent frame between words, withdrawn 32 ms later).
 *
 * Sessions are Durable Objects that may share the isolate, and one may await only promises their
 * owners settle (runtime/own-context.ts, test/cross-object-wakeup.test.ts). So the scheduler is
 * shared *state* plus one TurnEnd per job, created and ended by the job's own session: the job that
 * finishes grants the next one and then ends its turn, and every waiting job, awaiting the turn
 * now running, wakes in its own context and runs if it was granted. A job's own session wakes it
 * when it drops the job (a newer interim, a cancel, an abort). Owners can vanish, so each waiting
 * job also sets one timer of its own, and a turn past its deadline (turn-deadlines.ts: a grant not
 * taken up, a run with no progress or no end for too long) is withdrawn when it fires.
 *
 * Queue depth and waiting times are counted (`stats`, scheduler-stats.ts) for bench and soak.
 */

import { transcriptionWaiting } from "../runtime/inference-lock.ts";
import { createLogger } from "../runtime/log.ts";
import { awaitTurnEnd, TurnEnd } from "../runtime/own-context.ts";
import { type JobKind, SchedulerCounters, type SchedulerStats } from "./scheduler-stats.ts";
import { abandonedAfter, lookAgainIn } from "./turn-deadlines.ts";

const log = createLogger();

/**
 * Finals one session may have waiting: 4. An utterance is at least minSpeechMs + endpointing
 * (≈ 1 s) of audio, and a final of a 10-s utterance costs ≈ 0.5–1 s here; four waiting finals
 * means the isolate is several seconds of speech behind that session.
 */
export const MAX_PENDING_FINALS_PER_SESSION = 4;

export type { JobKind, SchedulerStats } from "./scheduler-stats.ts";

export type JobOutcome<T> = { status: "done"; value: T } | { status: "dropped" };

export class FinalsBacklogError extends Error {
  override name = "FinalsBacklogError";
}

type JobState = "waiting" | "granted" | "running" | "dropped";

interface Job {
  sessionId: string;
  /** Ended by the job's own session when the job leaves the turn (ran, or was dropped). */
  turn: TurnEnd;
  /** Ended by the job's own session when it drops the job while it waits. */
  dropped: TurnEnd;
  kind: JobKind;
  enqueuedAt: number;
  state: JobState;
  grantedAt: number;
  startedAt: number;
  /** When the running job last reported progress; null until it first does. */
  progressAt: number | null;
  /** Whether a waiting final should stop the interim running (see the header). */
  due: () => boolean;
}

export class InferenceScheduler {
  readonly #finals: Job[] = [];
  readonly #interims = new Map<string, Job>();
  /** When each session was last served (a counter, for round-robin). */
  readonly #lastServed = new Map<string, number>();
  #turn = 0;
  /** The job granted or running now, if any. */
  #current: Job | null = null;
  readonly #counters = new SchedulerCounters();

  readonly #now: () => number;

  constructor(now: () => number = () => Date.now()) {
    this.#now = now;
  }

  /**
   * Queues `run` for `sessionId`. Resolves `{status: "done"}` with its value once it ran, or
   * `{status: "dropped"}` for an interim replaced by a newer one or cancelled. Rejects with
   * FinalsBacklogError when the session already has MAX_PENDING_FINALS_PER_SESSION finals
   * waiting, and with `run`'s own error if it throws. `due` (finals): whether the final is one
   * the client will wait for now, so a running interim should stop for it (default: always).
   * `run` calls `progress` as it goes (turn-deadlines.ts STALLED_RUN_MS), in its own context.
   */
  submit<T>(
    sessionId: string,
    kind: JobKind,
    run: (progress: () => void) => Promise<T>,
    signal?: AbortSignal,
    due: () => boolean = () => true,
  ): Promise<JobOutcome<T>> {
    if (kind === "final") {
      const pending = this.#finals.filter((job) => job.sessionId === sessionId).length;
      if (pending >= MAX_PENDING_FINALS_PER_SESSION) {
        return Promise.reject(
          new FinalsBacklogError(
            `${pending} finals already waiting for this session (cap ${MAX_PENDING_FINALS_PER_SESSION})`,
          ),
        );
      }
    }
    const job: Job = {
      sessionId,
      turn: new TurnEnd(),
      dropped: new TurnEnd(),
      kind,
      enqueuedAt: this.#now(),
      state: "waiting",
      grantedAt: 0,
      startedAt: 0,
      progressAt: null,
      due,
    };
    if (kind === "final") {
      this.#finals.push(job);
    } else {
      const replaced = this.#interims.get(sessionId);
      if (replaced) this.#drop(replaced);
      this.#interims.set(sessionId, job);
    }
    this.#counters.queued(this.waiting);
    return this.#await(job, run, signal);
  }

  /**
   * Runs in the submitter's own context: waits for the turn now running to end (or its own drop,
   * or its own timer), until it is granted; then runs.
   */
  async #await<T>(
    job: Job,
    run: (progress: () => void) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<JobOutcome<T>> {
    // The abort comes from the job's own session, so it may end the job's own `dropped`.
    const onAbort = () => {
      if (job.state === "waiting") this.#withdraw(job);
    };
    signal?.addEventListener("abort", onAbort);
    try {
      this.#grantNext();
      while (job.state === "waiting") {
        if (signal?.aborted) {
          this.#withdraw(job);
          break;
        }
        const current = this.#current;
        const ends = Promise.race([job.dropped.ended, current?.turn.ended ?? job.dropped.ended]);
        const waits = transcriptionWaiting();
        await awaitTurnEnd(ends, lookAgainIn(current, this.#now(), waits));
        this.#grantNext();
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    if (job.state === "granted" && signal?.aborted) {
      // Its turn came just as it was withdrawn: hand the turn on.
      job.state = "dropped";
      if (this.#current === job) this.#current = null;
      this.#grantNext();
    }
    if (job.state === "dropped") {
      job.turn.end();
      return { status: "dropped" };
    }
    job.state = "running";
    job.startedAt = this.#now();
    this.#counters.started(job.kind, job.startedAt - job.enqueuedAt);
    try {
      const value = await run(() => {
        job.progressAt = this.#now();
      });
      this.#counters.completed(job.kind);
      return { status: "done", value };
    } finally {
      // A job withdrawn while it ran (turn-deadlines.ts) no longer holds the turn: leave it be.
      if (this.#current === job) this.#current = null;
      this.#grantNext();
      job.turn.end();
    }
  }

  /** Drops the session's waiting interim, if any (its utterance ended or the session closed). */
  cancelInterim(sessionId: string): void {
    const job = this.#interims.get(sessionId);
    if (job) {
      this.#interims.delete(sessionId);
      this.#drop(job);
    }
  }

  /** Forgets a closed session: its waiting interim is dropped; its finals still run. */
  forget(sessionId: string): void {
    this.cancelInterim(sessionId);
    if (!this.#finals.some((job) => job.sessionId === sessionId))
      this.#lastServed.delete(sessionId);
  }

  get waiting(): number {
    return this.#finals.length + this.#interims.size;
  }

  /**
   * Due finals waiting for their turn (not the one running, nor early finals not yet due): an
   * interim running should stop. Every waiting final still goes before every interim.
   */
  get finalsWaiting(): number {
    return this.#finals.filter((job) => job.due()).length;
  }

  /** Whether work is waiting behind the job now running: interims should slow down. */
  get busy(): boolean {
    return this.#current !== null && this.waiting > 0;
  }

  stats(): SchedulerStats {
    return this.#counters.snapshot(this.waiting);
  }

  /** A waiting job whose submitter no longer wants it (its signal aborted): out of the queue. */
  #withdraw(job: Job): void {
    const at = this.#finals.indexOf(job);
    if (at >= 0) this.#finals.splice(at, 1);
    if (this.#interims.get(job.sessionId) === job) this.#interims.delete(job.sessionId);
    job.state = "dropped";
    job.dropped.end();
  }

  /** Only ever called from the job's own session (a newer interim, a cancel, a close). */
  #drop(job: Job): void {
    this.#counters.droppedInterim();
    job.state = "dropped";
    job.dropped.end();
  }

  /**
   * Grants the next job when none is granted or running. A turn past its deadline
   * (turn-deadlines.ts) is withdrawn (the owner's object is gone), so the queue never stalls on it.
   */
  #grantNext(): void {
    const current = this.#current;
    if (current !== null) {
      const now = this.#now();
      if (now <= abandonedAfter(current, transcriptionWaiting())) return;
      log.error("inference scheduler: withdrew an abandoned turn", {
        sessionId: current.sessionId,
        state: current.state,
        kind: current.kind,
        runningMs: current.state === "running" ? now - current.startedAt : null,
        sinceProgressMs: current.progressAt === null ? null : now - current.progressAt,
      });
      if (current.state === "granted") current.state = "dropped";
    }
    const next = this.#next();
    this.#current = next ?? null;
    if (next === undefined) return;
    this.#turn += 1;
    this.#lastServed.set(next.sessionId, this.#turn);
    next.state = "granted";
    next.grantedAt = this.#now();
  }

  /** The next job: finals first, each class round-robin by when its session was last served. */
  #next(): Job | undefined {
    const served = (job: Job) => this.#lastServed.get(job.sessionId) ?? -1;
    if (this.#finals.length > 0) {
      // Each session's finals stay in order: only its oldest is a candidate.
      let best: Job | undefined;
      const seen = new Set<string>();
      for (const job of this.#finals) {
        if (seen.has(job.sessionId)) continue;
        seen.add(job.sessionId);
        if (best === undefined || served(job) < served(best)) best = job;
      }
      if (best) this.#finals.splice(this.#finals.indexOf(best), 1);
      return best;
    }
    let best: Job | undefined;
    for (const job of this.#interims.values()) {
      if (best === undefined || served(job) < served(best)) best = job;
    }
    if (best) this.#interims.delete(best.sessionId);
    return best;
  }
}
