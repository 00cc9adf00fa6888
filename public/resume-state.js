// @ts-check
/**
 * The client's side of Earshot's resumable sessions (README "Resumable sessions"), as pure state:
 * which audio must be kept, what a reconnection asks for, and whether the server's answers are
 * consistent. One implementation for every client: live-stream.js runs it for the demo page
 * (live-client.js) and the Node client (tools/client/resumable-client.ts); the tests import it
 * (test/resume-state.test.ts). Plain JavaScript typed by JSDoc, so a browser runs it unbuilt;
 * `npm run check` type-checks it (public/tsconfig.json). No I/O here.
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

/** @typedef {import("../src/protocol/earshot-messages.ts").EarshotSessionMessage} EarshotSessionMessage */
/** @typedef {import("../src/protocol/earshot-messages.ts").EarshotAckMessage} EarshotAckMessage */

/** The audio stream as the client sees it: produced, sent on the current connection, acknowledged. */
export class KeptAudio {
  /** @type {Uint8Array[]} Chunks still kept, in stream order; the first starts at `#keptFrom`. */
  #chunks = [];
  #keptFrom = 0;
  #produced = 0;
  /** Next byte to send on the current connection. */
  #wire = 0;
  /** Highest byte ever sent (on any connection): the server cannot hold more than this. */
  #highWater = 0;
  #acked = 0;
  /** @type {number} */
  #maxKeptBytes;

  /**
   * @param {number} maxKeptBytes what the client can afford to keep unacknowledged. Past it the
   *   session cannot be resumed exactly (audio would be missing), so `append` throws rather than
   *   drop audio.
   */
  constructor(maxKeptBytes) {
    this.#maxKeptBytes = maxKeptBytes;
  }

  /** Bytes produced by the source (the microphone, the program) so far. */
  get produced() {
    return this.#produced;
  }

  /** The next byte to send on the current connection. */
  get wire() {
    return this.#wire;
  }

  /** The highest byte ever sent, on any connection: no server can hold more. */
  get highWater() {
    return this.#highWater;
  }

  /** Latest acknowledged offset H (0 before any ack). */
  get acked() {
    return this.#acked;
  }

  /** First byte still kept; everything below it is forgotten. */
  get keptFrom() {
    return this.#keptFrom;
  }

  get keptBytes() {
    return this.#produced - this.#keptFrom;
  }

  /** Bytes produced but not yet sent on the current connection. */
  get backlog() {
    return this.#produced - this.#wire;
  }

  /**
   * Adds the source's next bytes (copied: the caller may reuse its buffer).
   * @param {Uint8Array} bytes
   */
  append(bytes) {
    if (this.keptBytes + bytes.byteLength > this.#maxKeptBytes) {
      throw new Error(
        `kept audio would exceed ${this.#maxKeptBytes} bytes (acked ${this.#acked}, produced ${this.#produced})`,
      );
    }
    this.#chunks.push(bytes.slice());
    this.#produced += bytes.byteLength;
  }

  /**
   * Adds bytes the caller has already sent on the current connection, with nothing waiting before
   * them (a live client's frame): `append` and `takeForWire` in one, without reading them back.
   * @param {Uint8Array} bytes
   */
  appendSent(bytes) {
    if (this.backlog > 0) throw new Error(`appendSent behind a backlog of ${this.backlog} bytes`);
    this.append(bytes);
    this.#wire = this.#produced;
    this.#highWater = Math.max(this.#highWater, this.#wire);
  }

  /**
   * Takes up to `maxBytes` of the backlog for sending on the current connection and advances the
   * wire offset past them. Returns the offset they start at and the bytes (empty: nothing to send).
   * @param {number} maxBytes
   * @returns {{ offset: number, bytes: Uint8Array<ArrayBuffer> }}
   */
  takeForWire(maxBytes) {
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
   * @param {number} h
   */
  ack(h) {
    if (!Number.isSafeInteger(h) || h < 0) throw new Error(`ack offset ${h} is not a byte count`);
    if (h < this.#acked) throw new Error(`ack went backwards: ${h} after ${this.#acked}`);
    if (h > this.#highWater) {
      throw new Error(`ack ${h} exceeds the ${this.#highWater} bytes ever sent`);
    }
    this.#acked = h;
    this.#forget(Math.min(h, this.#wire));
  }

  /**
   * A new connection re-sends from `offset` (≥ the first kept byte, ≤ what was ever sent).
   * @param {number} offset
   */
  rewind(offset) {
    if (offset < this.#keptFrom) {
      throw new Error(`cannot re-send from ${offset}: audio below ${this.#keptFrom} is forgotten`);
    }
    if (offset > this.#highWater) throw new Error(`cannot re-send from ${offset}: never sent`);
    this.#wire = offset;
  }

  /**
   * Bytes [from, to) of the kept audio.
   * @param {number} from
   * @param {number} to
   */
  #read(from, to) {
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

  /** @param {number} below */
  #forget(below) {
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

/**
 * The server's EarshotSession (src/protocol/earshot-messages.ts), checked and in the client's terms.
 * @typedef {object} SessionAnswer
 * @property {"EarshotSession"} type
 * @property {string} sessionId
 * @property {boolean} resumed
 * @property {number} audioBytes
 * @property {number} finals
 * @property {number} resumeWindowMs
 */

/**
 * The server's EarshotAck, checked.
 * @typedef {object} AckAnswer
 * @property {"EarshotAck"} type
 * @property {number} audioBytes
 */

/**
 * A wire message's fields as received: named by the server's own type, not yet checked.
 * @template T
 * @typedef {{ [K in keyof T]?: unknown }} Unchecked
 */

/**
 * @param {unknown} value
 * @returns {value is number}
 */
const isCount = (value) => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

/**
 * Earshot's resume messages from a parsed server JSON message; null for any other type. Throws
 * when the type is one of them but a field is missing or malformed.
 * @param {Record<string, unknown>} message
 * @returns {SessionAnswer | AckAnswer | null}
 */
export function parseResumeMessage(message) {
  if (message.type === "EarshotAck") {
    const { audio_bytes } = /** @type {Unchecked<EarshotAckMessage>} */ (message);
    if (!isCount(audio_bytes)) throw new Error("EarshotAck without a valid audio_bytes");
    return { type: "EarshotAck", audioBytes: audio_bytes };
  }
  if (message.type !== "EarshotSession") return null;
  // Named by the server's type: a field renamed there no longer type-checks here.
  const { session_id, resumed, audio_bytes, finals, resume_window_ms } =
    /** @type {Unchecked<EarshotSessionMessage>} */ (message);
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

/**
 * What a resumed connection must do after the server's EarshotSession.
 * @typedef {object} ResumePlan
 * @property {number} replays Finals the server is about to re-send (received before, lost with
 *   the old connection).
 * @property {number} resendFrom The byte the client re-sends from (its resume_offset).
 * @property {number} serverDrops Bytes of that re-sent audio the server already holds and will drop.
 */

/**
 * One resumable session's protocol state: its id, the kept audio, the finals counted. Methods
 * throw on answers the protocol rules out; the caller reports them as failures.
 */
export class ResumeState {
  /** @type {KeptAudio} */
  audio;
  /** @type {string | null} */
  #sessionId = null;
  #finals = 0;
  /**
   * Set between a reconnection request and the server's EarshotSession answering it.
   * @type {{ offset: number, finals: number } | null}
   */
  #pendingResume = null;
  /** Finals still to come as replays of the last resume. */
  #replaysLeft = 0;

  /** @param {number} maxKeptBytes */
  constructor(maxKeptBytes) {
    this.audio = new KeptAudio(maxKeptBytes);
  }

  get sessionId() {
    return this.#sessionId;
  }

  get finalsReceived() {
    return this.#finals;
  }

  /**
   * The first connection's EarshotSession.
   * @param {SessionAnswer} message
   */
  started(message) {
    if (this.#sessionId !== null) throw new Error("a second EarshotSession on one connection");
    if (message.resumed || message.audioBytes !== 0 || message.finals !== 0) {
      throw new Error(`a new session announced itself as ${JSON.stringify(message)}`);
    }
    this.#sessionId = message.sessionId;
  }

  /** @param {AckAnswer} message */
  ack(message) {
    this.audio.ack(message.audioBytes);
  }

  /**
   * Counts a final Results; returns true when it is a replay of one the client lost with its old
   * connection (its latency says nothing about live transcription).
   */
  final() {
    this.#finals += 1;
    if (this.#replaysLeft > 0) {
      this.#replaysLeft -= 1;
      return true;
    }
    return false;
  }

  /**
   * The query parameters that resume this session (added to its original options).
   * @returns {{ session_id: string, resume_offset: string, finals_received: string }}
   */
  resumeParams() {
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

  /**
   * The resumed connection's EarshotSession: checks it, rewinds the audio to the offset.
   * @param {SessionAnswer} message
   * @returns {ResumePlan}
   */
  resumed(message) {
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
