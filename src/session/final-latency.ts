/**
 * One session's final latency as the server sees it: from the moment the session received the
 * audio holding the end of an utterance's speech (the end of its last frame Silero scored as
 * speech) to the moment the utterance's final (`speech_final` or `from_finalize`) was sent. It is
 * what a person waits for minus the network, read per session at its end (the "session ended"
 * log, the session's metrics point) as p50 / p95 over every timed final.
 *
 * Clock: Date.now(), which in Workers advances with I/O, not during computation. The receipt time
 * is a message's arrival (exact); the send time is the last I/O event before the send, which
 * while a client streams audio lags the real send by at most one message interval (20–250 ms of
 * audio in practice) and one decoder step. The figure is a lower bound, tight while audio flows.
 *
 * The pure part lives here (speech ends waiting for their final, the histogram, percentiles);
 * src/session/speech-pipeline.ts reports speech ends with their receipt time, live-session.ts
 * reports finals.
 */

/**
 * Histogram resolution. Percentiles are reported as their bucket's upper edge, so they are never
 * below the truth and at most this much above it.
 */
export const LATENCY_BUCKET_MS = 10;
/**
 * Latencies at or past this land in the last bucket and read as this: 30 s is twice the longest
 * utterance a final covers (caps.ts MAX_UTTERANCE_SECONDS 15 s), so anything there is a session
 * that had fallen far behind, which the figure should show as bad, not measure finely. With 10-ms
 * buckets: 3 001 counters, 12 KB per session.
 */
export const LATENCY_MAX_MS = 30_000;
/**
 * Speech ends waiting for their final, at most. Finals come in order, within the session's
 * backlog (caps.ts: at most MAX_QUEUED_AUDIO_SECONDS = 20 s of audio queued), and the shortest
 * utterance with its endpointing silence is ~0.4 s (13 speech frames and one silence frame), so
 * fewer than 64 can be pending; past that the oldest is dropped (its final is then not timed).
 */
export const PENDING_SPEECH_ENDS_CAP = 64;

interface SpeechEnd {
  /** The end of the utterance's last speech frame, in samples of the session's 16 kHz stream. */
  sample: number;
  /** When the session received the audio holding that sample (Date.now()). */
  receivedAtMs: number;
}

export interface LatencySummary {
  /** Finals timed. */
  timed: number;
  /** Upper edges of the buckets holding the median and the 95th percentile; null when none. */
  p50Ms: number | null;
  p95Ms: number | null;
  /** Speech ends dropped past PENDING_SPEECH_ENDS_CAP, whose finals were not timed. */
  overflowed: number;
}

export class FinalLatencies {
  readonly #pending: SpeechEnd[] = [];
  readonly #buckets = new Uint32Array(Math.ceil(LATENCY_MAX_MS / LATENCY_BUCKET_MS) + 1);
  #timed = 0;
  /** Speech ends dropped past PENDING_SPEECH_ENDS_CAP (their finals are not timed). */
  #overflowed = 0;

  /** An utterance ended; its speech ended at `sample`, received at `receivedAtMs`. */
  speechEnded(sample: number, receivedAtMs: number): void {
    this.#pending.push({ sample, receivedAtMs });
    if (this.#pending.length > PENDING_SPEECH_ENDS_CAP) {
      this.#pending.shift();
      this.#overflowed += 1;
    }
  }

  /**
   * An utterance's final covering samples [start, end) was sent at `sentAtMs`: it answers the
   * oldest pending speech end inside that range. Ends before `start` belong to utterances whose
   * final never came (no words, or the session failed them) and are dropped. Returns the latency
   * counted, or null when no speech end falls in the range.
   */
  finalSent(start: number, end: number, sentAtMs: number): number | null {
    while ((this.#pending[0]?.sample ?? Number.POSITIVE_INFINITY) < start) this.#pending.shift();
    const next = this.#pending[0];
    if (next === undefined || next.sample > end) return null;
    this.#pending.shift();
    const latency = Math.max(0, sentAtMs - next.receivedAtMs);
    const bucket = Math.min(Math.floor(latency / LATENCY_BUCKET_MS), this.#buckets.length - 1);
    this.#buckets[bucket] = (this.#buckets[bucket] ?? 0) + 1;
    this.#timed += 1;
    return latency;
  }

  summary(): LatencySummary {
    return {
      timed: this.#timed,
      p50Ms: this.#percentile(0.5),
      p95Ms: this.#percentile(0.95),
      overflowed: this.#overflowed,
    };
  }

  /** Nearest rank: the upper edge of the bucket holding the ⌈q·n⌉-th smallest latency. */
  #percentile(q: number): number | null {
    if (this.#timed === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.#timed));
    let seen = 0;
    for (const [bucket, count] of this.#buckets.entries()) {
      seen += count;
      if (seen >= rank) return Math.min((bucket + 1) * LATENCY_BUCKET_MS, LATENCY_MAX_MS);
    }
    return LATENCY_MAX_MS;
  }
}
