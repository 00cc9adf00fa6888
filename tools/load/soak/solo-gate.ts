/**
 * How fast a solo run may send: fast while the session has shown it keeps up, real time while it
 * might not. Pure (server messages in, a pace out), tested in test/soak-verdict.test.ts.
 *
 * Why not a fixed multiple of real time: a session's VAD takes the isolate's one inference lock
 * frame by frame, in turn with Whisper's decoder steps, so while Whisper works (an interim, a
 * final) one session's VAD runs at little more than real time. Measured: Whisper solo runs at a
 * fixed 5× were closed 1008 BUF-0000 (over 20 s of audio queued); the fake transcriber at 24× never
 * was. So the client watches how far the server has visibly got:
 * - the watermark: the latest stream position any message reports (SpeechStarted's timestamp, a
 *   Results' start + duration, UtteranceEnd's last_word_end) — at most what the VAD processed;
 * - pending utterances: SpeechStarted seen minus finals with speech_final (needs vad_events=true).
 * Between utterances (none pending) nothing is reported — a 15-s music clip says nothing — but
 * then nothing of this session waits for Whisper and its VAD runs at tens of × real time (0.4 ms
 * per 32-ms frame, bench), so the estimate of what was processed also advances with the wall
 * clock at IDLE_PROCESSING_RATE, never past what was sent; any message resets it to the truth.
 * It sends at the fast pace only while the audio sent is within FAST_LEAD_S of that estimate
 * and at most one utterance is pending; otherwise at 1×, which a session alone always sustains.
 * Queued audio stays within the lead (the watermark is at most what was processed), so a solo
 * run stays clear of the 20-s flood cap; and 10 s holds at most ~3 unseen utterances (the eval
 * clips are ≥ 2.7 s each), so with the one pending the session stays within the scheduler's 4
 * waiting finals (inference-scheduler.ts).
 */

/** Seconds of audio beyond the watermark allowed at the fast pace. */
export const FAST_LEAD_S = 10;
/** Utterances without their endpoint final allowed at the fast pace. */
export const FAST_MAX_PENDING = 1;
/**
 * Audio seconds per wall second the server is assumed to process while no utterance is pending:
 * 8, a tenth of the VAD's measured speed (82× on one core), for lock turns and a shared machine.
 */
export const IDLE_PROCESSING_RATE = 8;

export class SoloGate {
  readonly #fastPace: number;
  #watermark = 0;
  /** Estimated seconds processed: the watermark, advanced while idle (see above). */
  #estimate = 0;
  #estimatedAtMs: number | null = null;
  #speechStarted = 0;
  #speechFinals = 0;

  constructor(fastPace: number) {
    this.#fastPace = fastPace;
  }

  /** Reads a server message's stream position and utterance bookkeeping. */
  observe(message: Record<string, unknown>): void {
    const at = (value: unknown) => {
      if (typeof value === "number" && Number.isFinite(value)) {
        this.#watermark = Math.max(this.#watermark, value);
      }
    };
    switch (message.type) {
      case "SpeechStarted":
        this.#speechStarted += 1;
        at(message.timestamp);
        break;
      case "Results":
        at(Number(message.start) + Number(message.duration));
        if (message.is_final === true && message.speech_final === true) this.#speechFinals += 1;
        break;
      case "UtteranceEnd":
        at(message.last_word_end);
        break;
    }
  }

  get watermark(): number {
    return this.#watermark;
  }

  get pending(): number {
    return Math.max(0, this.#speechStarted - this.#speechFinals);
  }

  /** Estimated seconds of audio the server has processed, given what was sent, at `nowMs`. */
  processed(sentSeconds: number, nowMs: number): number {
    let estimate = Math.max(this.#estimate, this.#watermark);
    if (this.pending === 0 && this.#estimatedAtMs !== null) {
      estimate += ((nowMs - this.#estimatedAtMs) / 1000) * IDLE_PROCESSING_RATE;
    }
    // Busy (an utterance pending): only what the server reported counts.
    if (this.pending > 0) estimate = this.#watermark;
    this.#estimate = Math.min(estimate, sentSeconds);
    this.#estimatedAtMs = nowMs;
    return this.#estimate;
  }

  /** The pace for the next frame, given the seconds of audio sent so far, at `nowMs`. */
  pace(sentSeconds: number, nowMs: number): number {
    const lead = sentSeconds - this.processed(sentSeconds, nowMs);
    return this.pending <= FAST_MAX_PENDING && lead < FAST_LEAD_S ? this.#fastPace : 1;
  }
}
