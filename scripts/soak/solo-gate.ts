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
 * It sends at the fast pace only while the audio sent is within FAST_LEAD_IDLE_S of the watermark
 * with nothing pending (Whisper idle for this session: the VAD runs at tens of × real time), or
 * within FAST_LEAD_BUSY_S with at most one utterance pending; otherwise at 1×, which a session
 * alone always sustains. Queued audio never exceeds the lead, so a solo run cannot reach the 20-s
 * flood cap from the fast pace, and at most ~4 utterances are ever unseen — the per-session cap
 * on waiting finals is 4 (inference-scheduler.ts).
 */

/** Seconds of audio beyond the watermark allowed at the fast pace with nothing pending. */
export const FAST_LEAD_IDLE_S = 10;
/** …and with one utterance pending (its final or interims keep Whisper busy). */
export const FAST_LEAD_BUSY_S = 6;

export class SoloGate {
  readonly #fastPace: number;
  #watermark = 0;
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

  /** The pace for the next frame, given the seconds of audio sent so far. */
  pace(sentSeconds: number): number {
    const lead = sentSeconds - this.#watermark;
    const pending = this.pending;
    if (pending === 0 && lead < FAST_LEAD_IDLE_S) return this.#fastPace;
    if (pending <= 1 && lead < FAST_LEAD_BUSY_S) return this.#fastPace;
    return 1;
  }
}
