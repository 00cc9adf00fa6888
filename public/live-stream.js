// @ts-check
/**
 * One session's audio stream over its successive connections: the part of a live client that is
 * the same whatever carries the socket. The demo page (live-client.js, on the browser's
 * WebSocket) and the Node client (tools/client/resumable-client.ts, on `ws`) both run it; each
 * keeps what only it needs (tokens and reconnect backoff on the page; header auth, refusals and
 * dropped connections in Node). Plain JavaScript typed by JSDoc, so a browser runs it unbuilt;
 * tested in test/live-stream.test.ts.
 *
 * What it does:
 * - Audio is *produced* by the caller (`push`, at its source's pace) and *sent* by the stream: at
 *   once while a connection is live and caught up. A resumable stream keeps every byte the server
 *   has not acknowledged (resume-state.js); audio produced while no connection is live waits in
 *   it and goes out when one is. After a resume the kept audio is re-sent from the resume offset
 *   at `backlogPace` times real time ("no more than a few times real time": README "Resumable
 *   sessions"), then live again. A plain (non-resumable) stream holds what it produces until its
 *   first connection is live, sends it then at once, and drops audio produced while it has no
 *   connection after that (its session ended with the connection).
 * - Every server text message goes through `receive`: EarshotSession and EarshotAck update the
 *   resume state (a resume's answer starts the re-send), and final Results are counted, with the
 *   ones a resume replays flagged.
 */

import { parseResumeMessage, ResumeState } from "./resume-state.js";

/** @typedef {import("./resume-state.js").ResumePlan} ResumePlan */

/** Re-sent backlog goes at 3× real time: "no more than a few times real time" (the protocol). */
export const DEFAULT_BACKLOG_PACE = 3;
/**
 * A new session's first connection sends up to 1 s of waiting audio at once (what a microphone
 * captured while connecting), the rest at the backlog pace: the server queues 20 s at most.
 */
const AT_ONCE_SECONDS = 1;

/**
 * The connection as the stream uses it.
 * @typedef {object} StreamSocket
 * @property {(data: Uint8Array<ArrayBuffer>) => boolean} send Sends a binary frame; false when it
 *   was not sent (the socket is closing): the stream then keeps the bytes for the next connection.
 */

/**
 * @typedef {object} LiveStreamOptions
 * @property {number | null} maxKeptBytes Resumable: the most unacknowledged audio kept, bytes
 *   (past it the session cannot be resumed exactly: `onResumeLost`). Null: a plain stream.
 * @property {number} bytesPerSecond Bytes of one second of the stream (PCM16 at 16 kHz: 32 000).
 * @property {number} frameBytes Bytes per frame of re-sent backlog (e.g. 640: 20 ms of PCM16).
 * @property {number} [backlogPace] Real-time multiple of the re-send (DEFAULT_BACKLOG_PACE).
 * @property {(offset: number, length: number) => void} [onAudioSent] Bytes [offset, offset +
 *   length) of the stream just went out on a socket.
 * @property {(error: Error) => void} [onResumeLost] The kept audio outgrew `maxKeptBytes` while
 *   the connection was live and caught up (acknowledgements stopped coming): nothing is lost, but
 *   from now on the stream is plain and a new connection must start a new session.
 * @property {(bytes: number, error: Error) => void} [onDropped] The kept audio outgrew
 *   `maxKeptBytes` while audio waited for a connection: these bytes, the newest, are dropped.
 */

/**
 * A text message from the server, as `receive` returns it.
 * @typedef {object} Received
 * @property {Record<string, unknown>} message The parsed JSON object.
 * @property {boolean} replay A final a resume re-sent (received before, lost with the old
 *   connection).
 * @property {ResumePlan | null} plan Set on the EarshotSession that answers a resume.
 */

export class LiveStream {
  /** @type {LiveStreamOptions} */
  #options;
  /** The resume state; null for a plain stream (or one whose kept audio outgrew its cap). */
  /** @type {ResumeState | null} */
  #resume;
  /** @type {StreamSocket | null} */
  #socket = null;
  /** The current connection is a resume, not yet answered by its EarshotSession. */
  #resuming = false;
  /** Audio may go out on the current socket. */
  #live = false;
  /** A connection of this stream has been live: a plain stream's session ended with it. */
  #wasLive = false;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #catchUpTimer = undefined;
  /** A plain stream's audio produced before its first live connection. */
  /** @type {Uint8Array<ArrayBuffer>[]} */
  #held = [];
  /** A plain stream's bytes produced so far (a resumable one counts in its kept audio). */
  #plainProduced = 0;
  /** Bytes dropped (see `droppedBytes`). */
  #dropped = 0;
  /** Finals counted by a plain stream (a resumable one counts in its resume state). */
  #plainFinals = 0;

  /** @param {LiveStreamOptions} options */
  constructor(options) {
    this.#options = options;
    this.#resume = options.maxKeptBytes === null ? null : new ResumeState(options.maxKeptBytes);
  }

  /** The session can be resumed: its id is known and it still keeps its audio for a resume. */
  get canResume() {
    return this.#resume?.sessionId != null;
  }

  get sessionId() {
    return this.#resume?.sessionId ?? null;
  }

  /** Audio may go out on the current connection. */
  get live() {
    return this.#live;
  }

  /** A connection of this stream has been live. */
  get wasLive() {
    return this.#wasLive;
  }

  /** Audio produced so far, bytes of the stream. */
  get produced() {
    return this.#resume?.audio.produced ?? this.#plainProduced;
  }

  /** Bytes produced but not yet sent on the current connection. */
  get backlog() {
    if (this.#resume !== null) return this.#resume.audio.backlog;
    return this.#held.reduce((sum, bytes) => sum + bytes.byteLength, 0);
  }

  /** Bytes sent on the current connection past the last acknowledged one (0 for a plain stream). */
  get unacknowledgedSent() {
    if (this.#resume === null) return 0;
    return Math.max(0, this.#resume.audio.wire - this.#resume.audio.acked);
  }

  /** Bytes produced that the server has not acknowledged (a plain stream: not yet sent). */
  get unacknowledged() {
    if (this.#resume !== null) return this.#resume.audio.produced - this.#resume.audio.acked;
    return this.backlog;
  }

  /**
   * Bytes dropped: a plain stream's produced while no connection could take them, a resumable
   * one's produced past its cap while waiting for a connection.
   */
  get droppedBytes() {
    return this.#dropped;
  }

  get finalsReceived() {
    return this.#resume?.finalsReceived ?? this.#plainFinals;
  }

  /** The query parameters that resume this session, or null when it cannot be resumed. */
  resumeParams() {
    return this.canResume ? (this.#resume?.resumeParams() ?? null) : null;
  }

  /**
   * A new connection carries the stream from now on; no audio goes on it until `goLive` (or, for
   * a resume, the EarshotSession that answers it).
   * @param {StreamSocket} socket
   * @param {{ resuming: boolean }} how
   */
  attach(socket, { resuming }) {
    this.#stopCatchUp();
    this.#socket = socket;
    this.#live = false;
    this.#resuming = resuming;
  }

  /**
   * The current connection is gone (closed, dropped, or not to be trusted). Given a socket, only
   * if it is still the current one (an old connection's late close changes nothing).
   * @param {StreamSocket} [socket]
   */
  detach(socket) {
    if (socket !== undefined && socket !== this.#socket) return;
    this.#stopCatchUp();
    this.#socket = null;
    this.#live = false;
  }

  /**
   * A new session's connection may take audio: what waited goes out now, up to AT_ONCE_SECONDS at
   * once and the rest at the backlog pace.
   */
  goLive() {
    if (this.#socket === null) return;
    this.#live = true;
    this.#wasLive = true;
    if (this.#resume !== null) {
      this.#startCatchUp(AT_ONCE_SECONDS * this.#options.bytesPerSecond);
      return;
    }
    let offset = this.#plainProduced - this.backlog;
    for (const bytes of this.#held.splice(0)) {
      if (!this.#sendPlain(bytes, offset)) this.#dropped += bytes.byteLength;
      offset += bytes.byteLength;
    }
  }

  /**
   * The source's next audio. Sent now when the connection is live and caught up, else kept
   * (resumable) or held until the first connection (plain).
   * @param {Uint8Array} bytes copied when kept: the caller may reuse its buffer
   */
  push(bytes) {
    const resume = this.#resume;
    if (resume !== null) {
      try {
        resume.audio.append(bytes);
      } catch (error) {
        const full = error instanceof Error ? error : new Error(String(error));
        if (this.#live && resume.audio.backlog === 0) {
          // Connected and caught up, but nothing acknowledged for the whole cap: go on without
          // resume rather than lose audio the connection can carry.
          this.#loseResume(full);
          this.push(bytes);
        } else {
          // Waiting for a connection this long: what is kept stays exact, the newest is dropped.
          this.#dropped += bytes.byteLength;
          this.#options.onDropped?.(bytes.byteLength, full);
        }
        return;
      }
      if (this.#catchUpTimer === undefined) this.#sendBacklog(Number.POSITIVE_INFINITY);
      return;
    }
    const copy = bytes.slice();
    const offset = this.#plainProduced;
    this.#plainProduced += copy.byteLength;
    if (!this.#wasLive) this.#held.push(copy);
    else if (!this.#live || !this.#sendPlain(copy, offset)) this.#dropped += copy.byteLength;
  }

  /**
   * A text message from the current connection; null when it is not a JSON object (the server
   * sends none such: the caller decides how loud to be). Throws on what the resume protocol
   * rules out (a malformed or inconsistent EarshotSession or EarshotAck): the caller then stops
   * trusting the session.
   * @param {string} text
   * @returns {Received | null}
   */
  receive(text) {
    /** @type {unknown} */
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      return null;
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return null;
    const message = /** @type {Record<string, unknown>} */ (parsed);
    /** @type {ResumePlan | null} */
    let plan = null;
    const resume = this.#resume;
    if (resume !== null) {
      const answer = parseResumeMessage(message);
      if (answer?.type === "EarshotAck") resume.ack(answer);
      else if (answer?.type === "EarshotSession" && !this.#resuming) resume.started(answer);
      else if (answer?.type === "EarshotSession") {
        plan = resume.resumed(answer);
        this.#resuming = false;
        if (this.#socket !== null) {
          this.#live = true;
          this.#wasLive = true;
          this.#startCatchUp(0);
        }
      }
    }
    let replay = false;
    if (message.type === "Results" && message.is_final === true) {
      if (resume !== null) replay = resume.final();
      else this.#plainFinals += 1;
    }
    return { message, replay, plan };
  }

  /**
   * Takes out the audio produced and not yet sent on any connection, with the stream offset it
   * starts at: what a new session must carry on with when this one cannot be resumed.
   * @returns {{ offset: number, bytes: Uint8Array<ArrayBuffer> }}
   */
  takeUnsent() {
    const audio = this.#resume?.audio;
    if (audio !== undefined) return audio.takeForWire(audio.backlog);
    const held = this.#held.splice(0);
    const bytes = new Uint8Array(held.reduce((sum, chunk) => sum + chunk.byteLength, 0));
    let at = 0;
    for (const chunk of held) {
      bytes.set(chunk, at);
      at += chunk.byteLength;
    }
    return { offset: this.#plainProduced - bytes.byteLength, bytes };
  }

  /** Stops the re-send timer (the stream is done with). */
  close() {
    this.detach();
  }

  /** @param {unknown} error */
  #loseResume(error) {
    const resume = this.#resume;
    if (resume === null) return;
    this.#resume = null;
    // Called only when everything produced has been sent: the plain stream goes on from there.
    this.#plainProduced = resume.audio.produced;
    this.#plainFinals = resume.finalsReceived;
    this.#options.onResumeLost?.(error instanceof Error ? error : new Error(String(error)));
  }

  /**
   * @param {Uint8Array<ArrayBuffer>} bytes
   * @param {number} offset where they start in the stream
   */
  #sendPlain(bytes, offset) {
    if (this.#socket === null || !this.#socket.send(bytes)) return false;
    this.#options.onAudioSent?.(offset, bytes.byteLength);
    return true;
  }

  /**
   * The kept backlog goes out: `atOnce` bytes now, then at the backlog pace, by the clock (late
   * timers, as in a hidden browser tab, send more per tick rather than fall behind the pace);
   * once it is all sent, new audio goes out as it comes.
   * @param {number} atOnce
   */
  #startCatchUp(atOnce) {
    const { frameBytes, bytesPerSecond, backlogPace = DEFAULT_BACKLOG_PACE } = this.#options;
    const periodMs = (1000 * frameBytes) / bytesPerSecond / backlogPace;
    const startedAt = performance.now();
    let sent = 0;
    const tick = () => {
      const allowed =
        atOnce + ((performance.now() - startedAt) / 1000) * bytesPerSecond * backlogPace;
      sent += this.#sendBacklog(Math.floor(allowed - sent));
      if ((this.#resume?.audio.backlog ?? 0) === 0 || !this.#live) this.#stopCatchUp();
    };
    this.#stopCatchUp();
    this.#catchUpTimer = setInterval(tick, periodMs);
    tick();
  }

  #stopCatchUp() {
    clearInterval(this.#catchUpTimer);
    this.#catchUpTimer = undefined;
  }

  /**
   * Sends up to `maxBytes` of the kept backlog, in whole frames (or what is left, when less).
   * Returns the bytes sent.
   * @param {number} maxBytes
   */
  #sendBacklog(maxBytes) {
    const socket = this.#socket;
    const audio = this.#resume?.audio;
    if (!this.#live || socket === null || audio === undefined) return 0;
    let budget = maxBytes;
    let sent = 0;
    while (audio.backlog > 0 && budget >= Math.min(this.#options.frameBytes, audio.backlog)) {
      const { offset, bytes } = audio.takeForWire(this.#options.frameBytes);
      if (!socket.send(bytes)) {
        audio.rewind(offset); // not sent after all: the socket is closing; a resume re-sends it
        break;
      }
      budget -= bytes.byteLength;
      sent += bytes.byteLength;
      this.#options.onAudioSent?.(offset, bytes.byteLength);
    }
    return sent;
  }
}
