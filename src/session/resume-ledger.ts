/**
 * A session's account of its one audio byte stream and its numbered finals, across the sockets a
 * resumable client attaches (README "Resumable sessions"). Pure bookkeeping, no sockets or timers,
 * so every rule is tested on its own (test/resume-ledger.test.ts):
 *
 * - the stream offset of the next new byte (`bytesAccepted`); a resumed client re-sends from an
 *   offset at or below it, and the bytes the session already holds are dropped on arrival, across
 *   frames, so nothing is lost or transcribed twice;
 * - an `EarshotAck` every `ackEveryBytes` of accepted audio (resumable sessions only), counted
 *   from each attach;
 * - finals numbered in the order produced, so a resuming client can say how many it has;
 * - whether a resume may attach at all, and if not, the HTTP refusal that says why.
 */
import type { ResumeRequest } from "../protocol/resume-params";

/** Why a resume cannot attach: answered as an HTTP status before the upgrade. */
export interface ResumeRefusal {
  status: 409 | 410;
  errCode: "NOT_RESUMABLE" | "RESUME_GAP" | "SESSION_ENDED";
  message: string;
}

/** What the session knows that decides whether a resume can attach. */
export interface ResumeConditions {
  /** The session is ending (or has ended): it cannot take a socket any more. */
  ending: boolean;
  /** It was opened with resumable=true. */
  resumable: boolean;
  /** The container its audio turned out to be ("wav", "ogg", "webm"), or null for raw audio. */
  container: string | null;
  /** Whether the audio's format is settled (false while container detection is still sniffing). */
  formatKnown: boolean;
}

const RAW_ONLY = "resume works for raw audio (set encoding and sample_rate)";

export class ResumeLedger {
  readonly #resumable: boolean;
  readonly #ackEveryBytes: number;
  #bytesAccepted = 0;
  /** Bytes a resumed client re-sends that the session already holds: dropped on arrival. */
  #skipBytes = 0;
  #nextAckAt = 0;
  #finals = 0;

  constructor(options: { resumable: boolean; ackEveryBytes: number }) {
    if (!(options.ackEveryBytes > 0)) throw new RangeError("ackEveryBytes must be positive");
    this.#resumable = options.resumable;
    this.#ackEveryBytes = options.ackEveryBytes;
  }

  /** Audio bytes accepted into the session: the stream offset of the next new byte. */
  get bytesAccepted(): number {
    return this.#bytesAccepted;
  }

  /** Finals numbered so far (the next final's number). */
  get finals(): number {
    return this.#finals;
  }

  /**
   * Whether a resume could attach to this audio stream: opened resumable, and raw audio (a
   * container, or a format still being sniffed after bytes came, cannot be re-sent from an offset).
   * A session that cannot be resumed is not kept for a client to come back, nor acknowledged.
   */
  resumableNow(now: Omit<ResumeConditions, "ending">): boolean {
    return (
      now.resumable && now.container === null && (now.formatKnown || this.#bytesAccepted === 0)
    );
  }

  /** Why `resume` cannot attach now, or null when it can. */
  refusal(resume: ResumeRequest, now: ResumeConditions): ResumeRefusal | null {
    if (now.ending) {
      return {
        status: 410,
        errCode: "SESSION_ENDED",
        message: "this session has ended; its transcript is at GET /v1/sessions/<id>/transcript",
      };
    }
    if (!now.resumable) {
      return {
        status: 409,
        errCode: "NOT_RESUMABLE",
        message: "this session was opened without resumable=true and cannot be resumed",
      };
    }
    if (now.container !== null || (!now.formatKnown && this.#bytesAccepted > 0)) {
      // A container's decoder state (a WAV header, and for Opus the codec's) lives in bytes the
      // client already sent; re-sent bytes from an arbitrary offset cannot be decoded alone.
      return {
        status: 409,
        errCode: "NOT_RESUMABLE",
        message:
          now.container !== null
            ? `this session's audio is a ${now.container.toUpperCase()} container, which cannot be resumed; ${RAW_ONLY}`
            : `this session's audio format is not settled yet (no encoding was given); ${RAW_ONLY}`,
      };
    }
    if (resume.resumeOffset > this.#bytesAccepted) {
      return {
        status: 409,
        errCode: "RESUME_GAP",
        message:
          `resume_offset ${resume.resumeOffset} is past the ${this.#bytesAccepted} audio bytes this ` +
          `session holds: bytes ${this.#bytesAccepted}..${resume.resumeOffset} would be missing; ` +
          `resume from ${this.#bytesAccepted} or earlier`,
      };
    }
    if (resume.finalsReceived > this.#finals) {
      return {
        status: 409,
        errCode: "RESUME_GAP",
        message: `finals_received ${resume.finalsReceived} is more than the ${this.#finals} finals this session produced`,
      };
    }
    return null;
  }

  /**
   * A socket attached: the first one (`resume` null) or a resumed client's, which `refusal`
   * accepted. The client re-sends from `resumeOffset`: what it re-sends up to `bytesAccepted` is
   * dropped. The next ack is due `ackEveryBytes` from here.
   */
  attached(resume: ResumeRequest | null): void {
    if (resume !== null) {
      if (resume.resumeOffset > this.#bytesAccepted || resume.resumeOffset < 0) {
        throw new RangeError(`resume_offset ${resume.resumeOffset} was not checked by refusal()`);
      }
      this.#skipBytes = this.#bytesAccepted - resume.resumeOffset;
    }
    this.#nextAckAt = this.#bytesAccepted + this.#ackEveryBytes;
  }

  /** The part of an arriving frame that is new audio (a view; empty when all of it is re-sent). */
  fresh(frame: Uint8Array): Uint8Array {
    if (this.#skipBytes === 0) return frame;
    const skip = Math.min(this.#skipBytes, frame.byteLength);
    this.#skipBytes -= skip;
    return frame.subarray(skip);
  }

  /**
   * `bytes` of new audio were accepted into the session. Returns the `audio_bytes` an
   * `EarshotAck` must now report (a resumable session, once per `ackEveryBytes`), else null.
   */
  accept(bytes: number): number | null {
    this.#bytesAccepted += bytes;
    if (!this.#resumable || this.#bytesAccepted < this.#nextAckAt) return null;
    this.#nextAckAt = this.#bytesAccepted + this.#ackEveryBytes;
    return this.#bytesAccepted;
  }

  /** Numbers the next final; returns its number (0 for the first). */
  numberFinal(): number {
    const number = this.#finals;
    this.#finals += 1;
    return number;
  }
}
