/**
 * A live-transcription client for Node scripts that can lose its connection and resume the session
 * (README "Resumable sessions"). The stream (what is kept, sent, re-sent at what pace, the finals
 * counted and the replays flagged) is public/live-stream.js, the same module the demo page runs;
 * this adds what Node needs: the key in a header, refusals as errors, resumes retried on 503, a
 * connection dropped the way a network drops it. Without `resumable` it is a plain Deepgram-style
 * client of the same shape.
 *
 * On the `ws` package: a refused handshake comes back as its HTTP status, headers and body
 * (`unexpected-response`), and `terminate()` drops the TCP connection without a close frame, as a
 * network failure would.
 */
import type { IncomingHttpHeaders } from "node:http";
import WebSocket from "ws";
import { LiveStream } from "../../public/live-stream.js";
import type { ResumePlan } from "../../public/resume-state.js";

/** The server's EarshotSession comes right after the 101; 10 s without it means it is stuck. */
const SESSION_MESSAGE_TIMEOUT_MS = 10_000;
/** A 503 on resume carries Retry-After; without one, retry after 1 s. */
const DEFAULT_RETRY_AFTER_MS = 1_000;

/** How a connection ended. `code` 1006 (never on the wire) when no close frame came. */
export interface WsClosed {
  code: number;
  reason: string;
  /** A close frame was received from the server (a clean close). */
  clean: boolean;
  /** We ended it (a drop, or a close timeout). */
  byClient: boolean;
}

export interface Refusal {
  status: number;
  /** Deepgram's `err_code` from the JSON body ("" when the body had none). */
  errCode: string;
  errMsg: string;
  retryAfterSeconds: number | null;
}

/** The handshake was answered with an HTTP status instead of 101. */
export class HandshakeRefused extends Error {
  override name = "HandshakeRefused";
  readonly refusal: Refusal;
  constructor(refusal: Refusal) {
    super(`handshake refused: ${refusal.status} ${refusal.errCode} ${refusal.errMsg}`);
    this.refusal = refusal;
  }
}

export interface ClientEvents {
  /** Every JSON message from the server, in order; `replay` for finals a resume re-sent. */
  onMessage?: (message: Record<string, unknown>, info: { replay: boolean }) => void;
  /** Audio bytes [offset, offset + length) of the stream just went out on a socket. */
  onAudioSent?: (offset: number, length: number) => void;
  /** The current connection ended (any cause); not called for one already replaced by a resume. */
  onClose?: (closed: WsClosed) => void;
  /** The server broke the protocol (a bad ack, an inconsistent resume); the session is suspect. */
  onProtocolError?: (error: Error) => void;
}

export interface ClientOptions {
  /** http://host:port of the service. */
  baseUrl: string;
  key: string;
  /** Listen options (encoding, sample_rate, …); `resumable=true` is added when resumable. */
  query: Record<string, string>;
  resumable: boolean;
  /** Key in `Authorization: Token` (default) or in subprotocols `token, <key>` as browsers do. */
  auth?: "header" | "subprotocol";
  /** Bytes of one second of the stream (PCM16 at 16 kHz: 32 000). */
  bytesPerSecond: number;
  /** Bytes per audio frame sent (e.g. 640: 20 ms of PCM16 at 16 kHz). */
  frameBytes: number;
  /** Most unacknowledged audio kept for a resume, bytes. */
  maxKeptBytes: number;
  handshakeTimeoutMs: number;
  events: ClientEvents;
}

function refusalOf(status: number, headers: Record<string, unknown>, body: string): Refusal {
  let errCode = "";
  let errMsg = body.slice(0, 200);
  let retryAfterSeconds: number | null = null;
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    if (typeof parsed.err_code === "string") errCode = parsed.err_code;
    if (typeof parsed.err_msg === "string") errMsg = parsed.err_msg;
    if (typeof parsed.retry_after === "number") retryAfterSeconds = parsed.retry_after;
  } catch {
    // Not JSON (a proxy's page): the status and the raw text say what there is to say.
  }
  const header = headers["retry-after"];
  if (retryAfterSeconds === null && typeof header === "string" && header !== "") {
    const seconds = Number(header);
    if (Number.isFinite(seconds)) retryAfterSeconds = seconds;
  }
  return { status, errCode, errMsg, retryAfterSeconds };
}

interface WsConnectOptions {
  headers?: Record<string, string>;
  /** Sent as Sec-WebSocket-Protocol (browsers' way to carry a key: `token, <key>`). */
  protocols?: string[];
  timeoutMs: number;
  onText: (text: string) => void;
  /** Exactly once, whatever the cause, for a connection that opened. */
  onClose: (closed: WsClosed) => void;
}

type Handshake =
  | { ok: true; ws: WebSocket; headers: IncomingHttpHeaders }
  | { ok: false; status: number; headers: IncomingHttpHeaders; body: string };

/** Sockets this client dropped itself: their close is `byClient`. */
const dropped = new WeakSet<WebSocket>();

/** Sends a frame if the socket is open; false when it was not sent. */
function send(ws: WebSocket | null, data: Uint8Array | string): boolean {
  if (ws?.readyState !== WebSocket.OPEN) return false;
  ws.send(data, { binary: typeof data !== "string" });
  return true;
}

/** Drops the TCP connection at once, without a close frame: what a lost network looks like. */
function terminate(ws: WebSocket | null): void {
  if (ws === null || ws.readyState === WebSocket.CLOSED) return;
  dropped.add(ws);
  ws.terminate();
}

/**
 * Opens `url` (ws:// or http://) as a WebSocket. Resolves with the socket after a valid 101, or
 * with the refusal (status, headers, body) for any other answer; rejects when no answer came
 * (connection refused, timeout) or the 101 was malformed.
 *
 * Handlers are given here, not attached afterwards: the server may send its first message in the
 * same TCP segment as the 101 (Earshot's EarshotSession does), and it must not be lost between the
 * upgrade and the caller's next line.
 */
function connectWebSocket(url: string, options: WsConnectOptions): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let opened = false;
    let headers: IncomingHttpHeaders = {};
    const settle = (result: Handshake | Error) => {
      if (settled) return;
      settled = true;
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const ws = new WebSocket(url.replace(/^http/, "ws"), options.protocols ?? [], {
      headers: options.headers ?? {},
      handshakeTimeout: options.timeoutMs,
      perMessageDeflate: false,
    });
    ws.on("upgrade", (response) => {
      headers = response.headers;
    });
    ws.on("open", () => {
      opened = true;
      settle({ ok: true, ws, headers });
    });
    ws.on("unexpected-response", (_request, response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", (error) => settle(error));
      response.on("end", () => {
        settle({
          ok: false,
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        });
        ws.terminate(); // the refusal is read: nothing more will come on this request
      });
    });
    // Before `open`, an error is the handshake failing; after it, the `close` that always follows
    // reports it (code 1006, not clean).
    ws.on("error", (error) => settle(error));
    ws.on("message", (data, isBinary) => {
      if (ws.readyState !== WebSocket.OPEN || isBinary) return;
      // `ws` hands a Buffer (its default binaryType), or fragments as Buffer[].
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      options.onText(bytes.toString("utf8"));
    });
    ws.on("close", (code, reason) => {
      if (!opened) {
        settle(new Error(`websocket to ${url} closed during the handshake (${code})`));
        return;
      }
      options.onClose({
        code,
        reason: reason.toString("utf8"),
        // `ws` reports 1006 exactly when no close frame arrived.
        clean: code !== 1006,
        byClient: dropped.has(ws),
      });
    });
  });
}

/** Who waits for the EarshotSession of the connection being opened (resumable sessions). */
interface SessionWaiter {
  resolve: (plan: ResumePlan | null) => void;
  reject: (error: Error) => void;
}

export class ResumableClient {
  readonly #options: ClientOptions;
  readonly #stream: LiveStream;
  #socket: WebSocket | null = null;
  #sessionId: string | null = null;
  #closeWaiters: Array<(closed: WsClosed) => void> = [];
  /** How the current connection ended; null while it is open (or opening). */
  #closed: WsClosed | null = null;
  #sessionWaiter: SessionWaiter | null = null;
  #closeStreamSent = false;

  private constructor(options: ClientOptions) {
    this.#options = options;
    const { onAudioSent } = options.events;
    this.#stream = new LiveStream({
      maxKeptBytes: options.resumable ? options.maxKeptBytes : null,
      bytesPerSecond: options.bytesPerSecond,
      frameBytes: options.frameBytes,
      ...(onAudioSent === undefined ? {} : { onAudioSent }),
      onResumeLost: (error) => this.#protocolError(error),
      onDropped: (bytes, error) =>
        this.#protocolError(new Error(`${bytes} bytes of audio dropped`, { cause: error })),
    });
  }

  /** Opens a new session; throws HandshakeRefused on an HTTP refusal. */
  static async open(options: ClientOptions): Promise<ResumableClient> {
    const client = new ResumableClient(options);
    const query = { ...options.query, ...(options.resumable ? { resumable: "true" } : {}) };
    const { answered } = await client.#connect(query, false);
    try {
      await answered;
    } catch (error) {
      client.drop(); // no EarshotSession, or one we cannot trust: do not stream into it
      throw error;
    }
    client.#sessionId = client.#stream.sessionId ?? client.#sessionId;
    client.#stream.goLive();
    return client;
  }

  get sessionId(): string | null {
    return this.#sessionId;
  }

  get connected(): boolean {
    return this.#socket?.readyState === WebSocket.OPEN;
  }

  /** Audio produced so far (bytes of the stream). */
  get produced(): number {
    return this.#stream.produced;
  }

  get closeStreamSent(): boolean {
    return this.#closeStreamSent;
  }

  /** The source's next audio. Sent now when possible, else kept (resumable) for later. */
  push(bytes: Uint8Array): void {
    this.#stream.push(bytes);
  }

  sendJson(message: unknown): boolean {
    return send(this.#socket, JSON.stringify(message));
  }

  /** Loses the connection the way a network does: TCP gone, no close frame. */
  drop(): void {
    this.#stream.detach();
    terminate(this.#socket);
  }

  /**
   * Reconnects to the same session. Retries 503 refusals (Retry-After) until `deadlineMs` (epoch
   * ms); throws HandshakeRefused for any other refusal. Once the server has answered, the stream
   * re-sends the kept audio from the resume offset at the backlog pace.
   */
  async resume(deadlineMs: number): Promise<ResumePlan> {
    if (!this.#options.resumable) throw new Error("resume() on a session opened without resumable");
    if (this.connected) throw new Error("resume() while still connected");
    for (;;) {
      const params = this.#stream.resumeParams();
      if (params === null) throw new Error("resume() before the session said its id");
      try {
        const { answered } = await this.#connect({ ...this.#options.query, ...params }, true);
        try {
          const plan = await answered;
          if (plan === null) throw new Error("a resumed connection answered without a plan");
          return plan;
        } catch (error) {
          this.drop(); // an answer we cannot trust: do not stream into it
          throw error;
        }
      } catch (error) {
        if (!(error instanceof HandshakeRefused) || error.refusal.status !== 503) throw error;
        const waitMs = (error.refusal.retryAfterSeconds ?? 0) * 1000 || DEFAULT_RETRY_AFTER_MS;
        if (Date.now() + waitMs > deadlineMs) throw error;
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  /**
   * Sends what is left of the backlog, then CloseStream, and waits for the server to close
   * (Metadata comes before it). Resolves with how the connection ended.
   */
  async closeStream(timeoutMs: number): Promise<WsClosed> {
    const deadline = Date.now() + timeoutMs;
    const backlog = () => (this.#options.resumable ? this.#stream.backlog : 0);
    while (backlog() > 0 && this.connected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const closed = this.waitClosed(Math.max(0, deadline - Date.now()));
    this.#closeStreamSent = true;
    this.sendJson({ type: "CloseStream" });
    return closed;
  }

  /**
   * Resolves when the current connection has ended (at once if it has), or with a synthetic 1006
   * after `timeoutMs` (the connection is then dropped).
   */
  waitClosed(timeoutMs: number): Promise<WsClosed> {
    if (this.#closed !== null) return Promise.resolve(this.#closed);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        terminate(this.#socket);
        const reason = `no close within ${timeoutMs} ms`;
        resolve({ code: 1006, reason, clean: false, byClient: true });
      }, timeoutMs);
      this.#closeWaiters.push((closed) => {
        clearTimeout(timer);
        resolve(closed);
      });
    });
  }

  /**
   * One connection: the handshake, then (resumable) a promise of its EarshotSession's outcome (the
   * plan for a resume, null for a new session), wrapped in an object so that awaiting the
   * connection does not also await that message. Audio does not flow on it until that message
   * checked out.
   */
  async #connect(
    query: Record<string, string>,
    resuming: boolean,
  ): Promise<{ answered: Promise<ResumePlan | null> }> {
    const { baseUrl, key, auth = "header", handshakeTimeoutMs, resumable } = this.#options;
    const url = new URL("/v1/listen", baseUrl);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    const session = resumable ? this.#awaitSession() : null;
    let socket: WebSocket | null = null;
    const link = { send: (bytes: Uint8Array<ArrayBuffer>) => send(socket, bytes) };
    const connecting = connectWebSocket(url.href, {
      timeoutMs: handshakeTimeoutMs,
      ...(auth === "header"
        ? { headers: { Authorization: `Token ${key}` } }
        : { protocols: ["token", key] }),
      onText: (text) => {
        if (socket === null || socket === this.#socket) this.#onText(text);
      },
      onClose: (closed) => {
        if (socket !== null && socket !== this.#socket) return; // an old, replaced connection
        this.#stream.detach(link);
        this.#closed = closed;
        this.#options.events.onClose?.(closed);
        for (const wake of this.#closeWaiters.splice(0)) wake(closed);
      },
    });
    // The connection's messages go to the stream from its first (which may come with the 101).
    this.#stream.attach(link, { resuming });
    let result: Awaited<typeof connecting>;
    try {
      result = await connecting;
    } catch (error) {
      session?.cancel();
      throw error;
    }
    if (!result.ok) {
      session?.cancel();
      throw new HandshakeRefused(refusalOf(result.status, result.headers, result.body));
    }
    socket = result.ws;
    this.#socket = socket;
    this.#closed = null;
    session?.startTimer();
    const requestId = result.headers["dg-request-id"];
    if (this.#sessionId === null && typeof requestId === "string") this.#sessionId = requestId;
    return { answered: session?.answered ?? Promise.resolve(null) };
  }

  /**
   * Installs the waiter for the next EarshotSession. Its timer starts once the handshake is done
   * (a cold one loads the models), unless the message already came with the 101.
   */
  #awaitSession() {
    const answer = Promise.withResolvers<ResumePlan | null>();
    // Observed here so a rejection nobody awaits yet is not unhandled.
    answer.promise.catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waiter: SessionWaiter = {
      resolve: (plan) => {
        cancel();
        answer.resolve(plan);
      },
      reject: (error) => {
        cancel();
        answer.reject(error);
      },
    };
    const cancel = () => {
      clearTimeout(timer);
      if (this.#sessionWaiter === waiter) this.#sessionWaiter = null;
    };
    this.#sessionWaiter = waiter;
    const startTimer = () => {
      if (this.#sessionWaiter !== waiter) return;
      timer = setTimeout(
        () => waiter.reject(new Error(`no EarshotSession within ${SESSION_MESSAGE_TIMEOUT_MS} ms`)),
        SESSION_MESSAGE_TIMEOUT_MS,
      );
    };
    return { answered: answer.promise, startTimer, cancel };
  }

  #onText(text: string): void {
    let received: ReturnType<LiveStream["receive"]>;
    try {
      received = this.#stream.receive(text);
    } catch (error) {
      const wrapped = error instanceof Error ? error : new Error(String(error));
      this.#protocolError(wrapped);
      this.#sessionWaiter?.reject(wrapped);
      return;
    }
    if (received === null) {
      this.#protocolError(
        new Error(`server sent text that is not a JSON object: ${text.slice(0, 80)}`),
      );
      return;
    }
    const { message, replay, plan } = received;
    if (message.type === "EarshotSession") {
      if (this.#sessionWaiter === null) this.#protocolError(new Error("unexpected EarshotSession"));
      else this.#sessionWaiter.resolve(plan);
    }
    this.#options.events.onMessage?.(message, { replay });
  }

  #protocolError(error: Error): void {
    this.#options.events.onProtocolError?.(error);
  }
}
