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
 * page start a new one. What to keep and what a resume asks for is resume-state.js, the same
 * module the Node client runs.
 */

import { parseResumeMessage, ResumeState } from "./resume-state.js";

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
 * Audio held while there is no open socket (connecting, reconnecting): 10 s at 50 ms per frame =
 * 200 frames × 1 600 bytes = 320 KB. Sent as soon as a socket opens, so words spoken while
 * connecting are not lost; the server accepts up to 20 s queued. At the cap the oldest frames are
 * dropped and counted.
 */
const MAX_PENDING_FRAMES = 200;
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
 * Sent audio the server has not acknowledged yet, kept to re-send after a drop. The server
 * acknowledges about once a second, so this holds ~1 s plus what is in flight; the cap, 30 s of
 * PCM16 at 16 kHz = 960 000 bytes, only matters if acks stop coming while the socket stays open.
 * Past it the session cannot be resumed exactly: the page stops keeping audio for it, and a drop
 * then starts a new session.
 */
const MAX_KEPT_BYTES = 30 * 2 * SAMPLE_RATE;
/** A resume re-sends the kept audio in pieces of one captured frame (50 ms of PCM16). */
const RESEND_PIECE_BYTES = 1_600;
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
    /** @type {ArrayBuffer[]} Frames waiting for an open socket. */ this.pending = [];
    /** @type {number[]} Capture times of pending frames, ms (performance.now()). */
    this.pendingTimes = [];
    /** @type {Array<number | undefined>} End samples of pending frames (WebM blobs only). */
    this.pendingEnds = [];
    this.droppedFrames = 0;
    /** Capture time of sent frames: [end sample (exclusive), capturedAt ms], oldest first. */
    /** @type {Array<[number, number]>} */ this.frameTimes = [];
    this.lastSentAt = 0;
    this.attempt = 0;
    this.running = false;
    this.stopping = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */ this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */ this.keepAliveTimer = undefined;
    /** @type {(() => void) | null} */ this.onStopped = null;
    /**
     * The session's resume state (its id, the audio not yet acknowledged, the finals received);
     * null when it cannot be resumed: WebM, or kept audio past MAX_KEPT_BYTES.
     * @type {ResumeState | null}
     */
    this.resume = null;
    /** Bytes of audio sent in this session: the stream offset of the next byte. */
    this.streamBytes = 0;
    /** Audio may go out on the current socket: it is open and, for a resume, the server answered. */
    this.live = false;
  }

  /** @param {ConnectionState} state */
  #setState(state) {
    this.handlers.onState(state);
  }

  /** Starts connecting; frames given to sendFrame are held until a socket is open. */
  start() {
    this.running = true;
    this.stopping = false;
    this.attempt = 0;
    this.pending = [];
    this.pendingTimes = [];
    this.pendingEnds = [];
    this.droppedFrames = 0;
    this.#newSession();
    void this.#connect();
    this.keepAliveTimer = setInterval(() => {
      const socket = this.socket;
      if (socket?.readyState !== WebSocket.OPEN) return;
      if (performance.now() - this.lastSentAt < KEEPALIVE_AFTER_MS) return;
      socket.send(JSON.stringify({ type: "KeepAlive" }));
      this.lastSentAt = performance.now();
    }, 1000);
  }

  /**
   * Sends one frame (PCM16, or a WebM blob), or holds it while no socket is open.
   * @param {ArrayBuffer} pcm
   * @param {number} capturedAt performance.now() at capture, ms
   * @param {number} [endSample] the 16-kHz sample of the session's audio the frame ends at: given
   *   for WebM blobs, whose bytes do not say; PCM16 frames count their own bytes.
   */
  sendFrame(pcm, capturedAt, endSample) {
    if (!this.running || this.stopping) return;
    const socket = this.socket;
    if (this.live && socket?.readyState === WebSocket.OPEN) {
      this.#send(socket, pcm, capturedAt, endSample);
      return;
    }
    this.pending.push(pcm);
    this.pendingTimes.push(capturedAt);
    this.pendingEnds.push(endSample);
    // A WebM stream cannot lose its first blob (the header): blobs are held whatever their number.
    if (this.format === "pcm" && this.pending.length > MAX_PENDING_FRAMES) {
      this.pending.shift();
      this.pendingTimes.shift();
      this.pendingEnds.shift();
      this.droppedFrames++;
    }
  }

  /**
   * @param {WebSocket} socket
   * @param {ArrayBuffer} pcm
   * @param {number} capturedAt
   * @param {number} [endSample]
   */
  #send(socket, pcm, capturedAt, endSample) {
    socket.send(pcm);
    this.streamBytes += pcm.byteLength;
    const resume = this.resume;
    if (resume !== null) {
      try {
        resume.audio.appendSent(new Uint8Array(pcm));
      } catch (error) {
        console.warn("audio no longer kept for a resume: a drop will start a new session", error);
        this.resume = null;
      }
    }
    this.lastSentAt = performance.now();
    this.frameTimes.push([endSample ?? this.streamBytes / 2, capturedAt]);
    if (this.frameTimes.length > MAX_FRAME_TIMES) this.frameTimes.shift();
  }

  async #connect() {
    this.#setState({ kind: "connecting", attempt: this.attempt });
    let token;
    try {
      token = (await postJson("/dev/token", {})).access_token;
      if (typeof token !== "string" || token === "") {
        throw new RequestError("/dev/token answered without an access_token", 200, false);
      }
    } catch (error) {
      if (!this.running) return;
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
    if (!this.running) return;
    const params = new URLSearchParams(
      this.format === "webm" ? CONTAINER_LISTEN_OPTIONS : LISTEN_OPTIONS,
    );
    // Resume from the last acknowledged byte: the server drops what it holds beyond it.
    const resumeParams = this.resume?.sessionId != null ? this.resume.resumeParams() : null;
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
    this.live = false;
    let openedAt = 0;
    socket.onopen = () => {
      openedAt = performance.now();
      this.#setState({ kind: "open" });
      // A resumed connection waits for the server's EarshotSession: it says where to re-send from.
      if (!resuming) this.#goLive(socket);
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return; // the server sends only text frames
      /** @type {Record<string, any>} */
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        console.error("unreadable server message", event.data, error);
        return;
      }
      if (message.type === "EarshotSession" || message.type === "EarshotAck") {
        this.#onResumeMessage(socket, message, resuming);
        return;
      }
      const isFinal = message.type === "Results" && message.is_final;
      if (isFinal) this.resume?.final();
      const timing = isFinal ? this.#timing(message) : null;
      this.handlers.onMessage(message, timing);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) {
        this.socket = null;
        this.live = false;
      }
      if (this.stopping || !this.running) {
        this.onStopped?.();
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
   * Audio may go out on `socket`: first what was captured while connecting, in order.
   * @param {WebSocket} socket
   */
  #goLive(socket) {
    this.live = true;
    const frames = this.pending;
    const times = this.pendingTimes;
    const ends = this.pendingEnds;
    this.pending = [];
    this.pendingTimes = [];
    this.pendingEnds = [];
    for (const [i, pcm] of frames.entries()) {
      this.#send(socket, pcm, times[i] ?? performance.now(), ends[i]);
    }
  }

  /**
   * EarshotSession and EarshotAck (resumable sessions only). A resumed connection's EarshotSession
   * is checked against what was asked, then the audio from the resume offset is re-sent as it
   * was and the connection goes live. An answer the protocol rules out is a server bug: the page
   * says so and stops rather than stream into a session it cannot trust.
   * @param {WebSocket} socket
   * @param {Record<string, unknown>} message
   * @param {boolean} resuming
   */
  #onResumeMessage(socket, message, resuming) {
    const state = this.resume;
    if (state === null) return; // WebM, or no longer resumable: nothing to keep track of
    try {
      const answer = parseResumeMessage(message);
      if (answer?.type === "EarshotAck") state.ack(answer);
      else if (answer?.type === "EarshotSession" && !resuming) state.started(answer);
      else if (answer?.type === "EarshotSession") {
        state.resumed(answer);
        const audio = state.audio;
        while (audio.backlog > 0) socket.send(audio.takeForWire(RESEND_PIECE_BYTES).bytes);
        this.#goLive(socket);
      }
    } catch (error) {
      console.error("the server broke the resume protocol", message, error);
      this.#fail(`The server broke the resume protocol (${String(error)}). Press Start again.`);
      socket.close(1000);
    }
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
      this.#newSession();
      this.#retry(`${message} Starting a new session.`);
    } else if (retry) this.#retry(message);
    else this.#fail(message);
  }

  #newSession() {
    this.resume = this.format === "pcm" ? new ResumeState(MAX_KEPT_BYTES) : null;
    this.streamBytes = 0;
    this.frameTimes = [];
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
    this.pending = [];
    this.pendingTimes = [];
    this.pendingEnds = [];
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
   * Metadata, then closes with 1000) and resolves once the socket is closed.
   * @returns {Promise<void>}
   */
  async stop() {
    if (!this.running) return;
    this.stopping = true;
    clearTimeout(this.retryTimer);
    const socket = this.socket;
    if (socket === null || socket.readyState !== WebSocket.OPEN) {
      socket?.close(1000, "stopped while connecting");
      this.#shutdown();
      this.#setState({ kind: "closed", note: null });
      return;
    }
    this.#setState({ kind: "closing" });
    const note = await new Promise((resolve) => {
      const timer = setTimeout(() => {
        socket.close(1000, "client stopped");
        resolve(`The server did not confirm the end within ${STOP_TIMEOUT_MS / 1000} s.`);
      }, STOP_TIMEOUT_MS);
      this.onStopped = () => {
        clearTimeout(timer);
        resolve(null);
      };
      socket.send(JSON.stringify({ type: "CloseStream" }));
    });
    this.onStopped = null;
    this.#shutdown();
    this.#setState({ kind: "closed", note });
  }
}
