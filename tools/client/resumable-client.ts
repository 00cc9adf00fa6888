/**
 * A live-transcription client for Node scripts that can lose its connection and resume the session
 * (README "Resumable sessions"). The stream (what is kept, sent, re-sent at what pace, the finals
 * counted and the replays flagged) is public/live-stream.js, the same module the demo page runs;
 * this adds what Node needs: the key in a header, refusals as errors, resumes retried on 503, a
 * connection dropped the way a network drops it. Without `resumable` it is a plain Deepgram-style
 * client of the same shape.
 */
import { LiveStream } from "../../public/live-stream.js";
import type { ResumePlan } from "../../public/resume-state.js";
import { connectWebSocket, type WsClosed, type WsSocket } from "./ws-client.ts";

/** The server's EarshotSession comes right after the 101; 10 s without it means it is stuck. */
const SESSION_MESSAGE_TIMEOUT_MS = 10_000;
/** A 503 on resume carries Retry-After; without one, retry after 1 s. */
const DEFAULT_RETRY_AFTER_MS = 1_000;

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
  /** A connection ended (any cause); `current` false for one already replaced by a resume. */
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
  backlogPace?: number;
  handshakeTimeoutMs: number;
  events: ClientEvents;
}

export function refusalOf(status: number, headers: Record<string, unknown>, body: string): Refusal {
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

export class ResumableClient {
  readonly #options: ClientOptions;
  readonly #stream: LiveStream;
  #socket: WsSocket | null = null;
  #sessionId: string | null = null;
  #closeWaiters: Array<(closed: WsClosed) => void> = [];
  /** How the current connection ended; null while it is open (or opening). */
  #closed: WsClosed | null = null;
  /** Waits for the EarshotSession of the connection being opened (resumable sessions). */
  #sessionWaiter: {
    resolve: (plan: ResumePlan | null) => void;
    reject: (error: Error) => void;
  } | null = null;
  #closeStreamSent = false;
  resumes = 0;

  private constructor(options: ClientOptions) {
    this.#options = options;
    const { onAudioSent } = options.events;
    this.#stream = new LiveStream({
      maxKeptBytes: options.resumable ? options.maxKeptBytes : null,
      bytesPerSecond: options.bytesPerSecond,
      frameBytes: options.frameBytes,
      ...(options.backlogPace === undefined ? {} : { backlogPace: options.backlogPace }),
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
    return this.#socket?.isOpen ?? false;
  }

  get finalsReceived(): number {
    return this.#stream.finalsReceived;
  }

  /** Audio produced so far (bytes of the stream). */
  get produced(): number {
    return this.#stream.produced;
  }

  /** Bytes produced but not sent on the current connection yet. */
  get backlog(): number {
    return this.#options.resumable ? this.#stream.backlog : 0;
  }

  /** The source's next audio. Sent now when possible, else kept (resumable) for later. */
  push(bytes: Uint8Array): void {
    this.#stream.push(bytes);
  }

  sendJson(message: unknown): boolean {
    return this.#socket?.sendText(JSON.stringify(message)) ?? false;
  }

  /** Loses the connection the way a network does: TCP gone, no close frame. */
  drop(): void {
    this.#stream.detach();
    this.#socket?.terminate();
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
        let plan: ResumePlan | null;
        try {
          plan = await answered;
          if (plan === null) throw new Error("a resumed connection answered without a plan");
        } catch (error) {
          this.drop(); // an answer we cannot trust: do not stream into it
          throw error;
        }
        this.resumes += 1;
        return plan;
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
    while (this.backlog > 0 && this.connected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const closed = this.waitClosed(Math.max(0, deadline - Date.now()));
    this.#closeStreamSent = true;
    this.sendJson({ type: "CloseStream" });
    return closed;
  }

  /** Resolves when the current connection has ended (at once if it has), or with a synthetic
   * 1006 after `timeoutMs` (the connection is then dropped). */
  waitClosed(timeoutMs: number): Promise<WsClosed> {
    if (this.#closed !== null) return Promise.resolve(this.#closed);
    if (this.#socket === null) {
      return Promise.resolve({
        code: 1006,
        reason: "never connected",
        clean: false,
        byClient: false,
      });
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#socket?.terminate();
        resolve({
          code: 1006,
          reason: `no close within ${timeoutMs} ms`,
          clean: false,
          byClient: true,
        });
      }, timeoutMs);
      this.#closeWaiters.push((closed) => {
        clearTimeout(timer);
        resolve(closed);
      });
    });
  }

  get closeStreamSent(): boolean {
    return this.#closeStreamSent;
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
    // The wait for EarshotSession starts once the handshake is done (a cold one loads models).
    let timer: ReturnType<typeof setTimeout> | undefined;
    let armSessionTimer = () => {};
    const cancelSessionTimer = () => clearTimeout(timer);
    const answered = !resumable
      ? Promise.resolve(null)
      : new Promise<ResumePlan | null>((resolve, reject) => {
          armSessionTimer = () => {
            timer = setTimeout(() => {
              this.#sessionWaiter = null;
              reject(new Error(`no EarshotSession within ${SESSION_MESSAGE_TIMEOUT_MS} ms`));
            }, SESSION_MESSAGE_TIMEOUT_MS);
          };
          this.#sessionWaiter = {
            resolve: (plan) => {
              clearTimeout(timer);
              resolve(plan);
            },
            reject: (error) => {
              clearTimeout(timer);
              reject(error);
            },
          };
        });
    // Observed here so a rejection nobody awaits yet is not unhandled.
    answered.catch(() => {});
    let socket: WsSocket | null = null;
    const link = {
      send: (bytes: Uint8Array<ArrayBuffer>) => socket?.sendBinary(bytes) ?? false,
    };
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
      this.#sessionWaiter = null;
      cancelSessionTimer();
      throw error;
    }
    if (!result.ok) {
      this.#sessionWaiter = null;
      cancelSessionTimer();
      throw new HandshakeRefused(refusalOf(result.status, result.headers, result.body));
    }
    socket = result.socket;
    this.#socket = socket;
    this.#closed = null;
    // Unless it came with the 101, already read.
    if (this.#sessionWaiter !== null) armSessionTimer();
    const requestId = result.headers["dg-request-id"];
    if (this.#sessionId === null && typeof requestId === "string") this.#sessionId = requestId;
    return { answered };
  }

  #onText(text: string): void {
    let received: ReturnType<LiveStream["receive"]>;
    try {
      received = this.#stream.receive(text);
    } catch (error) {
      const wrapped = error instanceof Error ? error : new Error(String(error));
      this.#protocolError(wrapped);
      const waiter = this.#sessionWaiter;
      this.#sessionWaiter = null;
      waiter?.reject(wrapped);
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
      const waiter = this.#sessionWaiter;
      this.#sessionWaiter = null;
      if (waiter === null) this.#protocolError(new Error("unexpected EarshotSession"));
      else waiter.resolve(plan);
    }
    this.#options.events.onMessage?.(message, { replay });
  }

  #protocolError(error: Error): void {
    this.#options.events.onProtocolError?.(error);
  }
}
