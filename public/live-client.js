// @ts-check
/**
 * The page's side of Earshot's live protocol (Deepgram's): a short-lived token from the local
 * demo route, the WebSocket to /v1/listen with `Sec-WebSocket-Protocol: bearer, <token>`, audio
 * frames out, JSON messages in, and what to do when a connection is refused or drops.
 *
 * Sessions are resumable (README "Resumable sessions"): when the connection drops, the page
 * reconnects to the same session with session_id, resume_offset and finals_received, re-sends the
 * audio the server had not acknowledged, and the transcript goes on exactly as if nothing had
 * happened. Only when the session cannot be resumed (it ended, or its server restarted) does the
 * page start a new one. The stream itself (what to keep, send, re-send at what pace, and what a
 * resume asks for) is live-stream.js, the same module the Node client runs.
 */

import { LiveStream } from "./live-stream.js";

/** Query options sent on every connection (PROTOCOL.md "Handshake"). */
export const LISTEN_OPTIONS = {
  encoding: "linear16",
  sample_rate: "16000",
  channels: "1",
  interim_results: "true",
  vad_events: "true",
  // Deepgram's smallest documented value: the gap after the last word before UtteranceEnd.
  utterance_end_ms: "1000",
  // 500 ms of silence ends an utterance (Earshot's default, stated so the page does not depend on
  // it): Whisper transcribes whole phrases, and a pause inside one, as the microphone captures it,
  // reaches 320 ms (10 VAD frames: all that 300 would wait for).
  endpointing: "500",
  resumable: "true",
};
export const SAMPLE_RATE = 16_000;

/**
 * Options of the MediaRecorder path: the same minus `encoding` and `sample_rate`, so the server
 * detects the WebM container (README "Audio formats"), and minus `resumable`: a container stream
 * cannot resume, its header went out with the first blob.
 */
export const CONTAINER_LISTEN_OPTIONS = Object.fromEntries(
  Object.entries(LISTEN_OPTIONS).filter(
    ([name]) => name !== "encoding" && name !== "sample_rate" && name !== "resumable",
  ),
);

/**
 * Capture times of recently sent frames, to measure a final's latency: 30 s at 50 ms = 600
 * entries. A final covering audio older than that has no latency shown.
 */
const MAX_FRAME_TIMES = 600;
/** Reconnect backoff: 0.5 s, 1 s, 2 s, 4 s, 8 s, 8 s…, each ±20 % so many pages do not sync up. */
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 8_000;
const RECONNECT_JITTER = 0.2;
/** Give up after this many failed attempts in a row (about 40 s of trying). */
const MAX_RECONNECT_ATTEMPTS = 8;
/** A connection that stayed open this long resets the attempt count. */
const STABLE_CONNECTION_MS = 5_000;
/**
 * Stop waits this long for the server's last finals, Metadata and close. CloseStream makes the
 * server transcribe what it still holds first: up to a 25-s utterance through Whisper.
 */
const STOP_TIMEOUT_MS = 30_000;
/**
 * Audio the server has not acknowledged yet, kept to re-send after a drop; audio spoken while
 * (re)connecting waits in it too, so no word is lost. The server acknowledges about once a
 * second, so while connected this holds ~1 s plus what is in flight. The cap, 35 s of PCM16 at
 * 16 kHz = 1 120 000 bytes, is the 30-s resume window (a page away longer finds its session gone)
 * plus the unacknowledged second or so before the drop and the reconnect's own time. Past it,
 * audio spoken while still away is dropped (the page says so in the console).
 */
const MAX_KEPT_BYTES = 35 * 2 * SAMPLE_RATE;
/**
 * The server owes an acknowledgement (it acknowledges each whole second of audio it holds, 32 000
 * bytes) and none came for this long, or a connection opened and its EarshotSession did not come:
 * the connection is taken for dead though the browser still has it open (a network that vanished
 * without a close), and the page resumes on a new one, whose session takes over from the old
 * socket. Owed means more than OWED_BYTES sent past the last acknowledged byte: under one second
 * is never acknowledged (the microphone may simply have stopped), and a resume's first second
 * may be audio the server skips.
 */
const ACK_TIMEOUT_MS = 6_000;
const OWED_BYTES = 2 * 2 * SAMPLE_RATE;
/** Kept audio goes out in pieces of one captured frame (50 ms of PCM16). */
const PIECE_BYTES = 1_600;
/**
 * Stop resumes a resumable session whose connection is down (dropped before or during Stop) this
 * many times to send it the audio it lacks and CloseStream, so the last phrase is transcribed and
 * shown; each try waits up to STOP_RECONNECT_MS for the resumed connection.
 */
const STOP_RESUMES = 2;
const STOP_RECONNECT_MS = 15_000;
/** The page's own requests (/dev/token, /dev/handshake) give up after this long and are retried. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Send KeepAlive when no audio went out for this long; the server closes after 10 s idle. */
const KEEPALIVE_AFTER_MS = 3_000;

/**
 * @typedef {{ kind: "connecting", attempt: number }
 *   | { kind: "open" }
 *   | { kind: "reconnecting", attempt: number, delayMs: number, reason: string }
 *   | { kind: "closing" }
 *   | { kind: "closed", note: string | null }
 *   | { kind: "failed", message: string }} ConnectionState
 */

/**
 * @typedef {object} LiveHandlers
 * @property {(state: ConnectionState) => void} onState
 * @property {(message: Record<string, any>, timing: FinalTiming | null) => void} onMessage
 *   Every server message; `timing` is set for a final (see #timing).
 */

/** @typedef {{ afterAudioMs: number | null, afterSpeechMs: number | null }} FinalTiming */

/** An HTTP failure of one of the page's own requests, with the server's JSON error if any. */
class RequestError extends Error {
  /**
   * @param {string} message
   * @param {number} status 0 when the server could not be reached at all
   * @param {boolean} retryable
   */
  constructor(message, status, retryable) {
    super(message);
    this.status = status;
    this.retryable = retryable;
  }
}

/**
 * POSTs JSON and returns the parsed reply, or throws a RequestError worded for a person.
 * @param {string} path
 * @param {unknown} body
 */
async function postJson(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new RequestError(`The server cannot be reached (${String(error)}).`, 0, true);
  }
  /** @type {Record<string, any>} */
  let json = {};
  try {
    json = await response.json();
  } catch (error) {
    if (response.ok)
      throw new RequestError(`${path}: unreadable reply (${String(error)})`, 0, true);
  }
  if (response.ok) return json;
  const detail = json.err_msg ? `: ${json.err_msg}` : "";
  // 503 with Retry-After is "try again"; any other refusal needs a person to change something.
  const retryable = response.status >= 502 && json.retry_after !== undefined;
  throw new RequestError(
    `${path} answered ${response.status}${detail}`,
    response.status,
    retryable,
  );
}

/**
 * Why the server refused a handshake, from the demo route that replays it (a browser WebSocket
 * only sees close code 1006 for any refused upgrade).
 * @param {string} token
 * @param {string} query
 * @returns {Promise<{ retry: boolean, fresh?: boolean, message: string }>}
 */
async function explainRefusal(token, query) {
  /** @type {Record<string, any>} */
  let report;
  try {
    report = await postJson("/dev/handshake", { access_token: token, query });
  } catch (error) {
    const status = error instanceof RequestError ? error.status : 0;
    if (status === 0) return { retry: true, message: "The server cannot be reached." };
    return {
      retry: true,
      message: "The connection to /v1/listen failed (the browser does not say why).",
    };
  }
  const detail = report.err_msg ? ` ${report.err_msg}` : "";
  switch (report.status) {
    case 101:
      return {
        retry: true,
        message: "The connection failed, but the server accepts connections now.",
      };
    case 401:
      return { retry: false, message: `The server refused the access token (401).${detail}` };
    case 429:
      return {
        retry: false,
        // The server's message names the limit ("… (limit 3)"); say it once, in plain words.
        message: `Refused (429): too many sessions for this account${
          report.err_msg
            ? ` ${report.err_msg.replace(/^too many concurrent sessions for this account\s*/, "")}`
            : ""
        }.${report.retry_after ? ` Try again in ${report.retry_after} s.` : ""}`,
      };
    case 400:
      return { retry: false, message: `The server refused the connection options (400).${detail}` };
    case 503:
      return { retry: true, message: `The service is temporarily unavailable (503).${detail}` };
    case 404:
    case 409:
    case 410:
      // A resume the session cannot take (it ended, or a gap): not an error for the person.
      return { retry: true, fresh: true, message: `The session could not be resumed.${detail}` };
    default:
      return {
        retry: false,
        message: `The server refused the connection (${report.status}).${detail}`,
      };
  }
}

export class LiveClient {
  /**
   * @param {LiveHandlers} handlers
   * @param {{ format?: "pcm" | "webm" }} [options] "pcm" (default): 16-kHz PCM16 frames, resumable
   *   sessions. "webm": MediaRecorder blobs, container detection, no resume.
   */
  constructor(handlers, options = {}) {
    this.handlers = handlers;
    this.format = options.format ?? "pcm";
    /** @type {WebSocket | null} */ this.socket = null;
    /** Capture time of produced frames: [end sample (exclusive), capturedAt ms], oldest first. */
    /** @type {Array<[number, number]>} */ this.frameTimes = [];
    this.lastSentAt = 0;
    this.attempt = 0;
    this.running = false;
    this.stopping = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */ this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */ this.keepAliveTimer = undefined;
    /** Called with the close code (0: no connection was made) while stopping. */
    /** @type {((code: number) => void) | null} */ this.onStopped = null;
    /**
     * Since when the server has owed an acknowledgement, or its EarshotSession (performance.now()),
     * or null.
     */
    /** @type {number | null} */ this.owedSince = null;
    /** Counts #connect calls: a connection attempt overtaken by a newer one stops where it is. */
    this.connects = 0;
    /** Gives up the current connection as dead and resumes (set by #connect). */
    /** @type {((reason: string) => void) | null} */ this.abandonSocket = null;
    /** The session's audio stream: what is kept, sent and re-sent (live-stream.js). */
    this.stream = this.#newStream();
  }

  /** @param {ConnectionState} state */
  #setState(state) {
    // Stop's own reconnection is part of finishing, not a new start: the page stays "Finishing…".
    if (this.stopping && (state.kind === "connecting" || state.kind === "open")) return;
    this.handlers.onState(state);
  }

  /** Starts connecting; frames given to sendFrame wait in the stream until a socket is live. */
  start() {
    this.running = true;
    this.stopping = false;
    this.attempt = 0;
    this.#newSession();
    void this.#connect();
    this.keepAliveTimer = setInterval(() => {
      const socket = this.socket;
      if (socket?.readyState !== WebSocket.OPEN) return;
      if (this.format === "pcm") {
        const now = performance.now();
        const owed = !this.stream.live || this.stream.unacknowledgedSent > OWED_BYTES;
        this.owedSince = owed ? (this.owedSince ?? now) : null;
        if (this.owedSince !== null && now - this.owedSince > ACK_TIMEOUT_MS) {
          this.abandonSocket?.(`No answer from the server for ${ACK_TIMEOUT_MS / 1000} s.`);
          return;
        }
      }
      if (performance.now() - this.lastSentAt < KEEPALIVE_AFTER_MS) return;
      socket.send(JSON.stringify({ type: "KeepAlive" }));
      this.lastSentAt = performance.now();
    }, 1000);
  }

  /**
   * Sends one frame (PCM16, or a WebM blob), or keeps it until a socket is live.
   * @param {ArrayBuffer} pcm
   * @param {number} capturedAt performance.now() at capture, ms
   * @param {number} [endSample] the 16-kHz sample of the session's audio the frame ends at: given
   *   for WebM blobs, whose bytes do not say; PCM16 frames count their own bytes.
   */
  sendFrame(pcm, capturedAt, endSample) {
    if (!this.running || this.stopping) return;
    this.stream.push(new Uint8Array(pcm));
    this.frameTimes.push([endSample ?? this.stream.produced / 2, capturedAt]);
    if (this.frameTimes.length > MAX_FRAME_TIMES) this.frameTimes.shift();
  }

  /** A stream for a new session: resumable for PCM16, plain for WebM (its header went first). */
  #newStream() {
    return new LiveStream({
      maxKeptBytes: this.format === "pcm" ? MAX_KEPT_BYTES : null,
      bytesPerSecond: 2 * SAMPLE_RATE,
      frameBytes: PIECE_BYTES,
      onAudioSent: () => {
        this.lastSentAt = performance.now();
      },
      onDropped: (bytes, error) => {
        console.warn(`${bytes} bytes of audio dropped: no connection for too long`, error);
      },
      onResumeLost: (error) => {
        console.warn(
          "audio no longer kept for a resume: the next connection starts a new session",
          error,
        );
      },
    });
  }

  async #connect() {
    const attempt = ++this.connects;
    this.#setState({ kind: "connecting", attempt: this.attempt });
    let token;
    try {
      token = (await postJson("/dev/token", {})).access_token;
      if (typeof token !== "string" || token === "") {
        throw new RequestError("/dev/token answered without an access_token", 200, false);
      }
    } catch (error) {
      if (!this.running || attempt !== this.connects) return;
      if (this.stopping) {
        this.onStopped?.(0);
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof RequestError && error.status === 404) {
        this.#fail(
          "The demo token route (/dev/token) is off. Run the server with `npm run dev`, which enables it (EARSHOT_DEMO_TOKENS=on).",
        );
      } else if (error instanceof RequestError && !error.retryable) {
        this.#fail(`Could not get an access token: ${message}`);
      } else {
        this.#retry(`Could not get an access token: ${message}`);
      }
      return;
    }
    if (!this.running || attempt !== this.connects) return;
    // A session that had a connection and cannot be resumed (its kept audio outgrew the cap)
    // goes on as a new one.
    if (this.stream.wasLive && !this.stream.canResume) this.#newSession(true);
    const params = new URLSearchParams(
      this.format === "webm" ? CONTAINER_LISTEN_OPTIONS : LISTEN_OPTIONS,
    );
    // Resume from the last acknowledged byte: the server drops what it holds beyond it.
    const resumeParams = this.stream.resumeParams();
    const resuming = resumeParams !== null;
    for (const [name, value] of Object.entries(resumeParams ?? {})) params.set(name, value);
    const query = params.toString();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/v1/listen?${query}`, [
      "bearer",
      token,
    ]);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    const stream = this.stream;
    const link = {
      /** @param {Uint8Array<ArrayBuffer>} bytes */
      send: (bytes) => {
        if (socket.readyState !== WebSocket.OPEN) return false;
        socket.send(bytes);
        return true;
      },
    };
    stream.attach(link, { resuming });
    this.owedSince = null;
    let openedAt = 0;
    let abandoned = false;
    this.abandonSocket = (reason) => {
      if (abandoned || this.socket !== socket) return;
      abandoned = true;
      this.socket = null;
      stream.detach(link);
      // A dead network may never finish the closing handshake: the page does not wait for it.
      socket.close(4000, "no acknowledgement");
      // Stop, waiting on this connection, resumes the session on a new one itself.
      if (this.stopping) {
        this.onStopped?.(4000);
        return;
      }
      // A connection that worked before it went silent does not count against the retries.
      if (performance.now() - openedAt >= STABLE_CONNECTION_MS + ACK_TIMEOUT_MS) this.attempt = 0;
      this.#retry(reason);
    };
    socket.onopen = () => {
      openedAt = performance.now();
      this.#setState({ kind: "open" });
      // A resumed connection waits for the server's EarshotSession: it says where to re-send from.
      if (!resuming) stream.goLive();
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return; // the server sends only text frames
      /** @type {import("./live-stream.js").Received | null} */
      let received;
      try {
        received = stream.receive(event.data);
      } catch (error) {
        // A server bug (an answer the protocol rules out): stop rather than stream into a session
        // the page cannot trust.
        console.error("the server broke the protocol", event.data, error);
        this.#fail(`The server broke the resume protocol (${String(error)}). Press Start again.`);
        socket.close(1000);
        return;
      }
      if (received === null) {
        console.error("unreadable server message", event.data);
        return;
      }
      const { message, replay } = received;
      if (message.type === "EarshotSession" || message.type === "EarshotAck") return;
      // A final a resume re-sent arrives late by the outage: no latency is shown for it.
      const timing =
        message.type === "Results" && message.is_final && !replay ? this.#timing(message) : null;
      this.handlers.onMessage(message, timing);
    };
    socket.onclose = (event) => {
      if (abandoned) return; // given up already: the page has moved on
      const current = this.socket === socket;
      if (current) this.socket = null;
      stream.detach(link);
      if (this.stopping || !this.running) {
        // Only the connection Stop is waiting on answers it (not one it already let go).
        if (current) this.onStopped?.(event.code);
        return;
      }
      if (openedAt === 0) {
        void this.#refused(token, query);
        return;
      }
      if (performance.now() - openedAt >= STABLE_CONNECTION_MS) this.attempt = 0;
      if (event.code === 1000) {
        // A normal close the page did not ask for: the session reached its maximum length.
        this.#fail(`The server ended the session${event.reason ? `: ${event.reason}` : "."}`);
        return;
      }
      if (event.code === 1008 && /^(AUTH|DATA)-/.test(event.reason)) {
        // Ended by an operator (key revoked, account disabled) or undecodable audio: a resume or a
        // new session would be refused or fail the same way.
        this.#fail(`The server ended the session: ${event.reason}`);
        return;
      }
      if (this.format === "webm") {
        this.#fail(
          `Connection lost (code ${event.code}${event.reason ? `, ${event.reason}` : ""}). A ` +
            "MediaRecorder stream cannot be resumed (its WebM header went with the first blob): " +
            "press Start for a new session.",
        );
        return;
      }
      this.#retry(
        `Connection lost (code ${event.code}${event.reason ? `, ${event.reason}` : ""}).`,
      );
    };
  }

  /**
   * @param {string} token
   * @param {string} query
   */
  async #refused(token, query) {
    const { retry, fresh, message } = await explainRefusal(token, query);
    if (!this.running || this.stopping) return;
    if (fresh) {
      // The session is gone (ended, or its server restarted): what it transcribed stays on the
      // page; audio from now on goes to a new session.
      this.#newSession(true);
      this.#retry(`${message} Starting a new session.`);
    } else if (retry) this.#retry(message);
    else this.#fail(message);
  }

  /**
   * A new session from now on. With `carry`, the audio the old one never sent (spoken while the
   * page tried to resume it) opens the new one, with its capture times.
   * @param {boolean} [carry]
   */
  #newSession(carry = false) {
    const old = this.stream;
    old.close();
    this.stream = this.#newStream();
    if (!carry) {
      this.frameTimes = [];
      return;
    }
    const { offset, bytes } = old.takeUnsent();
    const from = offset / 2;
    this.frameTimes = this.frameTimes
      .filter(([end]) => end > from)
      .map(([end, capturedAt]) => [end - from, capturedAt]);
    if (bytes.byteLength > 0) this.stream.push(bytes);
  }

  /** @param {string} reason */
  #retry(reason) {
    this.attempt++;
    if (this.attempt > MAX_RECONNECT_ATTEMPTS) {
      this.#fail(`${reason} Gave up after ${MAX_RECONNECT_ATTEMPTS} attempts.`);
      return;
    }
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** (this.attempt - 1));
    const delayMs = Math.round(base * (1 + RECONNECT_JITTER * (2 * Math.random() - 1)));
    this.#setState({ kind: "reconnecting", attempt: this.attempt, delayMs, reason });
    this.retryTimer = setTimeout(() => void this.#connect(), delayMs);
  }

  /** @param {string} message */
  #fail(message) {
    this.#shutdown();
    this.#setState({ kind: "failed", message });
  }

  #shutdown() {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.keepAliveTimer);
    this.stream.close();
  }

  /**
   * How long a final took, from the capture clock to its arrival, ms:
   * - `afterAudioMs`: since the capture of the last sample the final covers (its start + duration,
   *   in seconds of this session's audio). The server has then already waited out the endpointing
   *   silence, which that audio includes; this is transport plus the server's work.
   * - `afterSpeechMs`: since the capture of its last word's end: what a person feels, endpointing
   *   wait included. Null when the final has no word timings.
   * Either is null when that audio is older than the bookkeeping (MAX_FRAME_TIMES).
   * @param {Record<string, any>} results
   * @returns {FinalTiming}
   */
  #timing(results) {
    const arrived = performance.now();
    const since = (/** @type {number} */ seconds) => {
      const sample = Math.round(seconds * SAMPLE_RATE);
      const entry = this.frameTimes.find(([end]) => end >= sample);
      return entry ? arrived - entry[1] : null;
    };
    const words = results.channel?.alternatives?.[0]?.words ?? [];
    const lastWord = words[words.length - 1];
    return {
      afterAudioMs: since(Number(results.start) + Number(results.duration)),
      afterSpeechMs: lastWord ? since(Number(lastWord.end)) : null,
    };
  }

  /**
   * Stop: sends CloseStream (the server transcribes what it holds, sends the last finals and
   * Metadata, then closes with 1000) and resolves once the socket is closed. A resumable session
   * whose connection is down, or drops before the server's close, is resumed first (STOP_RESUMES
   * times) so the audio it lacks and its last finals are not lost.
   * @returns {Promise<void>}
   */
  async stop() {
    if (!this.running) return;
    this.stopping = true;
    clearTimeout(this.retryTimer);
    this.#setState({ kind: "closing" });
    /** @type {string | null} */
    let note = null;
    for (let resumes = 0; ; resumes++) {
      const socket = this.socket;
      if (socket !== null && socket.readyState === WebSocket.OPEN) {
        const code = await this.#closeStream(socket);
        if (!this.running) return; // failed meanwhile (a protocol error): its message stands
        if (code === 1000) {
          note = null;
          break;
        }
        if (code === null) {
          note = `The server did not confirm the end within ${STOP_TIMEOUT_MS / 1000} s.`;
          break;
        }
        note = `The connection was lost while stopping (code ${code}): the last words may be missing.`;
      } else {
        this.socket = null; // its close, whenever it comes, answers nothing
        socket?.close(1000, "stopped while connecting");
        // Never connected: there is no session to finish.
        if (!this.stream.wasLive) break;
        note =
          this.stream.unacknowledged > 0
            ? "Stopped while reconnecting: what was said since the connection dropped was not transcribed."
            : null;
      }
      if (this.format !== "pcm" || !this.stream.canResume) break;
      if (resumes >= STOP_RESUMES || !(await this.#reopen())) break;
      if (!this.running) return;
    }
    this.onStopped = null;
    this.#shutdown();
    this.#setState({ kind: "closed", note });
  }

  /**
   * Sends what the server still lacks, then CloseStream, and waits for the close.
   * @param {WebSocket} socket
   * @returns {Promise<number | null>} the close code; null when the server did not close in time
   */
  async #closeStream(socket) {
    // Listening from the start: the connection may drop while its backlog drains.
    /** @type {Promise<number>} */
    const closed = new Promise((resolve) => {
      this.onStopped = resolve;
    });
    // Audio still being re-sent after a resume goes first: the server takes nothing after
    // CloseStream. At the backlog's pace the cap's 35 s take 12 s.
    const drainUntil = performance.now() + STOP_TIMEOUT_MS;
    while (
      this.stream.backlog > 0 &&
      socket.readyState === WebSocket.OPEN &&
      performance.now() < drainUntil
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "CloseStream" }));
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    /** @type {Promise<null>} */
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => {
        socket.close(1000, "client stopped");
        resolve(null);
      }, STOP_TIMEOUT_MS);
    });
    const code = await Promise.race([closed, timeout]);
    clearTimeout(timer);
    this.onStopped = null;
    return code;
  }

  /**
   * Resumes the session for Stop: true once the resumed connection is live (the server has said
   * what it holds), false when it was refused, failed or took longer than STOP_RECONNECT_MS.
   * @returns {Promise<boolean>}
   */
  async #reopen() {
    /** @type {Promise<boolean>} */
    const outcome = new Promise((resolve) => {
      /** @param {boolean} live */
      const done = (live) => {
        clearTimeout(timer);
        clearInterval(poll);
        resolve(live);
      };
      const timer = setTimeout(() => done(false), STOP_RECONNECT_MS);
      const poll = setInterval(() => {
        if (this.socket?.readyState === WebSocket.OPEN && this.stream.live) done(true);
      }, 20);
      this.onStopped = () => done(false);
    });
    void this.#connect();
    const live = await outcome;
    this.onStopped = null;
    if (!live) this.socket?.close(1000, "stopped");
    return live;
  }
}
