/**
 * The client's side of Earshot's resumable sessions (README "Resumable sessions"), as pure state:
 * which audio must be kept, what a reconnection asks for, and whether the server's answers are
 * consistent. No I/O here, so workerd tests exercise it directly (test/resume-state.test.ts);
 * scripts/lib/resumable-client.ts drives it over a socket.
 *
 * The protocol, from the client's side:
 * - first connection with `resumable=true`; the server says `EarshotSession` (its id), then
 *   `EarshotAck {audio_bytes: H}` about once per second of audio: it holds every byte below H;
 * - the client may forget audio below the latest H and must keep the rest;
 * - it counts final Results (`is_final: true`, empty ones included);
 * - after a drop it reconnects with `session_id`, `resume_offset=R` (R ≤ latest H) and
 *   `finals_received=k`; the server answers `EarshotSession {resumed: true, audio_bytes: H',
 *   finals: F}` (H' ≥ R, F ≥ k), re-sends finals k..F-1, and the client re-sends its audio from R.
 */

import type {
  EarshotAckMessage,
  EarshotSessionMessage,
} from "../../src/protocol/earshot-messages.ts";

/** The audio stream as the client sees it: produced, sent on the current connection, acknowledged. */
export class KeptAudio {
  /** Chunks still kept, in stream order; the first starts at `#keptFrom`. */
  #chunks: Uint8Array[] = [];
  #keptFrom = 0;
  #produced = 0;
  /** Next byte to send on the current connection. */
  #wire = 0;
  /** Highest byte ever sent (on any connection): the server cannot hold more than this. */
  #highWater = 0;
  #acked = 0;
  readonly #maxKeptBytes: number;

  /**
   * `maxKeptBytes`: what the client can afford to keep unacknowledged. Past it the session cannot
   * be resumed exactly (audio would be missing), so `append` throws rather than drop audio.
   */
  constructor(maxKeptBytes: number) {
    this.#maxKeptBytes = maxKeptBytes;
  }

  /** Bytes produced by the source (the microphone, the program) so far. */
  get produced(): number {
    return this.#produced;
  }

  /** The next byte to send on the current connection. */
  get wire(): number {
    return this.#wire;
  }

  /** The highest byte ever sent, on any connection: no server can hold more. */
  get highWater(): number {
    return this.#highWater;
  }

  /** Latest acknowledged offset H (0 before any ack). */
  get acked(): number {
    return this.#acked;
  }

  /** First byte still kept; everything below it is forgotten. */
  get keptFrom(): number {
    return this.#keptFrom;
  }

  get keptBytes(): number {
    return this.#produced - this.#keptFrom;
  }

  /** Bytes produced but not yet sent on the current connection. */
  get backlog(): number {
    return this.#produced - this.#wire;
  }

  /** Adds the source's next bytes (copied: the caller may reuse its buffer). */
  append(bytes: Uint8Array): void {
    if (this.keptBytes + bytes.byteLength > this.#maxKeptBytes) {
      throw new Error(
        `kept audio would exceed ${this.#maxKeptBytes} bytes (acked ${this.#acked}, produced ${this.#produced})`,
      );
    }
    this.#chunks.push(bytes.slice());
    this.#produced += bytes.byteLength;
  }

  /**
   * Takes up to `maxBytes` of the backlog for sending on the current connection and advances the
   * wire offset past them. Returns the offset they start at and the bytes (empty: nothing to send).
   */
  takeForWire(maxBytes: number): { offset: number; bytes: Uint8Array } {
    const offset = this.#wire;
    const end = Math.min(this.#produced, offset + maxBytes);
    const bytes = this.#read(offset, end);
    this.#wire = end;
    this.#highWater = Math.max(this.#highWater, end);
    return { offset, bytes };
  }

  /**
   * The server holds every byte below `h`. Acks never go backwards and never exceed what was
   * sent; either would be a server bug, reported by throwing. Forgets what is no longer needed:
   * below the ack, but never at or above the wire offset (a resumed connection re-sends from its
   * resume offset, contiguously, even bytes the server turns out to hold already).
   */
  ack(h: number): void {
    if (!Number.isSafeInteger(h) || h < 0) throw new Error(`ack offset ${h} is not a byte count`);
    if (h < this.#acked) throw new Error(`ack went backwards: ${h} after ${this.#acked}`);
    if (h > this.#highWater) {
      throw new Error(`ack ${h} exceeds the ${this.#highWater} bytes ever sent`);
    }
    this.#acked = h;
    this.#forget(Math.min(h, this.#wire));
  }

  /** A new connection re-sends from `offset` (≥ the first kept byte, ≤ what was ever sent). */
  rewind(offset: number): void {
    if (offset < this.#keptFrom) {
      throw new Error(`cannot re-send from ${offset}: audio below ${this.#keptFrom} is forgotten`);
    }
    if (offset > this.#highWater) throw new Error(`cannot re-send from ${offset}: never sent`);
    this.#wire = offset;
  }

  /** Bytes [from, to) of the kept audio. */
  #read(from: number, to: number): Uint8Array {
    if (from < this.#keptFrom) throw new Error(`audio at ${from} is forgotten`);
    const out = new Uint8Array(Math.max(0, to - from));
    let at = this.#keptFrom;
    let written = 0;
    for (const chunk of this.#chunks) {
      const end = at + chunk.byteLength;
      if (end > from && at < to) {
        const piece = chunk.subarray(Math.max(0, from - at), Math.min(chunk.byteLength, to - at));
        out.set(piece, written);
        written += piece.byteLength;
      }
      at = end;
      if (at >= to) break;
    }
    return out;
  }

  #forget(below: number): void {
    while (this.#chunks.length > 0) {
      const first = this.#chunks[0];
      if (first === undefined) break;
      const end = this.#keptFrom + first.byteLength;
      if (end > below) {
        if (below > this.#keptFrom) {
          this.#chunks[0] = first.subarray(below - this.#keptFrom);
          this.#keptFrom = below;
        }
        return;
      }
      this.#chunks.shift();
      this.#keptFrom = end;
    }
  }
}

/** The server's EarshotSession (src/protocol/earshot-messages.ts), checked and in the client's terms. */
export interface SessionAnswer {
  type: "EarshotSession";
  sessionId: string;
  resumed: boolean;
  audioBytes: number;
  finals: number;
  resumeWindowMs: number;
}

/** The server's EarshotAck, checked. */
export interface AckAnswer {
  type: "EarshotAck";
  audioBytes: number;
}

/** A wire message's fields as received: named by the server's own type, not yet checked. */
type Unchecked<T> = { [K in keyof T]?: unknown };

const isCount = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

/**
 * Earshot's resume messages from a parsed server JSON message; null for any other type. Throws
 * when the type is one of them but a field is missing or malformed.
 */
export function parseResumeMessage(
  message: Record<string, unknown>,
): SessionAnswer | AckAnswer | null {
  if (message.type === "EarshotAck") {
    const { audio_bytes } = message as Unchecked<EarshotAckMessage>;
    if (!isCount(audio_bytes)) throw new Error("EarshotAck without a valid audio_bytes");
    return { type: "EarshotAck", audioBytes: audio_bytes };
  }
  if (message.type !== "EarshotSession") return null;
  // Named by the server's type: a field renamed there no longer compiles here.
  const { session_id, resumed, audio_bytes, finals, resume_window_ms } =
    message as Unchecked<EarshotSessionMessage>;
  if (
    typeof session_id !== "string" ||
    session_id === "" ||
    typeof resumed !== "boolean" ||
    !isCount(audio_bytes) ||
    !isCount(finals) ||
    !isCount(resume_window_ms)
  ) {
    throw new Error(`malformed EarshotSession ${JSON.stringify(message)}`);
  }
  return {
    type: "EarshotSession",
    sessionId: session_id,
    resumed,
    audioBytes: audio_bytes,
    finals,
    resumeWindowMs: resume_window_ms,
  };
}

/** What a resumed connection must do after the server's EarshotSession. */
export interface ResumePlan {
  /** Finals the server is about to re-send (received before, lost with the old connection). */
  replays: number;
  /** The byte the client re-sends from (its resume_offset). */
  resendFrom: number;
  /** Bytes of that re-sent audio the server already holds and will drop. */
  serverDrops: number;
}

/**
 * One resumable session's protocol state: its id, the kept audio, the finals counted. Methods
 * throw on answers the protocol rules out; the caller reports them as failures.
 */
export class ResumeState {
  readonly audio: KeptAudio;
  #sessionId: string | null = null;
  #finals = 0;
  /** Set between a reconnection request and the server's EarshotSession answering it. */
  #pendingResume: { offset: number; finals: number } | null = null;
  /** Finals still to come as replays of the last resume. */
  #replaysLeft = 0;

  constructor(maxKeptBytes: number) {
    this.audio = new KeptAudio(maxKeptBytes);
  }

  get sessionId(): string | null {
    return this.#sessionId;
  }

  get finalsReceived(): number {
    return this.#finals;
  }

  /** The first connection's EarshotSession. */
  started(message: SessionAnswer): void {
    if (this.#sessionId !== null) throw new Error("a second EarshotSession on one connection");
    if (message.resumed || message.audioBytes !== 0 || message.finals !== 0) {
      throw new Error(`a new session announced itself as ${JSON.stringify(message)}`);
    }
    this.#sessionId = message.sessionId;
  }

  ack(message: AckAnswer): void {
    this.audio.ack(message.audioBytes);
  }

  /**
   * Counts a final Results; returns true when it is a replay of one the client lost with its old
   * connection (its latency says nothing about live transcription).
   */
  final(): boolean {
    this.#finals += 1;
    if (this.#replaysLeft > 0) {
      this.#replaysLeft -= 1;
      return true;
    }
    return false;
  }

  /** The query parameters that resume this session (added to its original options). */
  resumeParams(): { session_id: string; resume_offset: string; finals_received: string } {
    const id = this.#sessionId;
    if (id === null) throw new Error("no session to resume: EarshotSession never arrived");
    const offset = this.audio.acked;
    this.#pendingResume = { offset, finals: this.#finals };
    return {
      session_id: id,
      resume_offset: String(offset),
      finals_received: String(this.#finals),
    };
  }

  /** The resumed connection's EarshotSession: checks it, rewinds the audio to the offset. */
  resumed(message: SessionAnswer): ResumePlan {
    const pending = this.#pendingResume;
    if (pending === null) throw new Error("EarshotSession on a resume that was never asked for");
    this.#pendingResume = null;
    if (!message.resumed) throw new Error("the server started a new session instead of resuming");
    if (message.sessionId !== this.#sessionId) {
      throw new Error(`resumed ${message.sessionId}, asked for ${this.#sessionId}`);
    }
    if (message.audioBytes < pending.offset) {
      throw new Error(
        `server holds ${message.audioBytes} bytes, below its own ack ${pending.offset}`,
      );
    }
    if (message.finals < pending.finals) {
      throw new Error(`server produced ${message.finals} finals, client has ${pending.finals}`);
    }
    // The server may hold more than it acknowledged, but never more than was ever sent.
    if (message.audioBytes > this.audio.highWater) {
      throw new Error(
        `server holds ${message.audioBytes} bytes, only ${this.audio.highWater} were ever sent`,
      );
    }
    this.audio.rewind(pending.offset);
    this.#replaysLeft = message.finals - pending.finals;
    return {
      replays: this.#replaysLeft,
      resendFrom: pending.offset,
      serverDrops: message.audioBytes - pending.offset,
    };
  }
}
