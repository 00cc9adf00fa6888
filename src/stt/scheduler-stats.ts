/**
 * What the isolate's inference scheduler (inference-scheduler.ts) counts for the benchmark, the
 * soak and each session's closing log: queue depth, jobs done and dropped, and waiting times.
 */

export type JobKind = "final" | "interim";

export interface SchedulerStats {
  /** Jobs waiting now (not counting the one running). */
  waiting: number;
  /** The most jobs that ever waited at once. */
  peakWaiting: number;
  completed: { final: number; interim: number };
  droppedInterims: number;
  /** Milliseconds from submission to start, most recent jobs (bounded sample). */
  waitMs: { final: number[]; interim: number[] };
}

/** Waiting times kept per kind for percentiles: the last 512 (4 KiB each). */
const WAIT_SAMPLES = 512;

export class SchedulerCounters {
  #peakWaiting = 0;
  readonly #completed = { final: 0, interim: 0 };
  #droppedInterims = 0;
  readonly #waitMs: { final: number[]; interim: number[] } = { final: [], interim: [] };

  /** Jobs now waiting: the peak follows. */
  queued(waiting: number): void {
    this.#peakWaiting = Math.max(this.#peakWaiting, waiting);
  }

  /** A job started after waiting `waitMs`. */
  started(kind: JobKind, waitMs: number): void {
    const samples = this.#waitMs[kind];
    samples.push(waitMs);
    if (samples.length > WAIT_SAMPLES) samples.shift();
  }

  completed(kind: JobKind): void {
    this.#completed[kind] += 1;
  }

  droppedInterim(): void {
    this.#droppedInterims += 1;
  }

  snapshot(waiting: number): SchedulerStats {
    return {
      waiting,
      peakWaiting: this.#peakWaiting,
      completed: { ...this.#completed },
      droppedInterims: this.#droppedInterims,
      waitMs: { final: [...this.#waitMs.final], interim: [...this.#waitMs.interim] },
    };
  }
}
