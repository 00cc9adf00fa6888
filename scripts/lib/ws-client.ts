/**
 * A WebSocket client on node:http for scripts (the soak): the handshake's refusal comes back as
 * its HTTP status and body, and `terminate()` drops the TCP connection without a close frame, as a
 * network failure would. Framing is scripts/lib/ws-frames.ts.
 *
 * Handlers are given to `connectWebSocket`, not attached afterwards: the server may send its first
 * message in the same TCP segment as the 101 (Earshot's EarshotSession does), and it must not be
 * lost between the upgrade and the caller's next line.
 */
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { Socket } from "node:net";
import {
  encodeClientFrame,
  encodeClosePayload,
  OPCODE,
  type ServerEvent,
  ServerFrameReader,
} from "./ws-frames.ts";

/** RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key to compute Sec-WebSocket-Accept. */
const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** After our close frame, how long the server has to answer with its own before we drop TCP. */
const CLOSE_HANDSHAKE_TIMEOUT_MS = 5_000;

/** How the connection ended. `code` 1006 (never on the wire) when no close frame came. */
export interface WsClosed {
  code: number;
  reason: string;
  /** A close frame was received from the server (a clean close). */
  clean: boolean;
  /** We ended it: `close()` (then `clean` says whether the server answered) or `terminate()`. */
  byClient: boolean;
}

export interface WsHandlers {
  onText?: (text: string) => void;
  onBinary?: (data: Uint8Array) => void;
  /** Exactly once, whatever the cause. */
  onClose?: (closed: WsClosed) => void;
}

export interface WsConnectOptions extends WsHandlers {
  headers?: Record<string, string>;
  /** Sent as Sec-WebSocket-Protocol (browsers' way to carry a key: `token, <key>`). */
  protocols?: string[];
  timeoutMs: number;
}

export type WsConnectResult =
  | { ok: true; socket: WsSocket; headers: http.IncomingHttpHeaders }
  | { ok: false; status: number; headers: http.IncomingHttpHeaders; body: string };

export class WsSocket {
  readonly #socket: Socket;
  readonly #reader = new ServerFrameReader();
  readonly #handlers: WsHandlers;
  #state: "open" | "closing" | "closed" = "open";
  #closeSent = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #serverClose: { code: number; reason: string } | null = null;
  #byClient = false;
  /** Bytes handed to the TCP socket and not yet flushed to the kernel (Node's writableLength). */
  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  constructor(socket: Socket, head: Buffer, handlers: WsHandlers) {
    this.#socket = socket;
    this.#handlers = handlers;
    socket.setNoDelay(true); // latency is measured per frame; no Nagle batching
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("close", () => this.#finish());
    socket.on("error", () => {
      // The 'close' event that always follows reports it (code 1006, not clean).
    });
    if (head.byteLength > 0) queueMicrotask(() => this.#onData(head));
  }

  get isOpen(): boolean {
    return this.#state === "open";
  }

  sendBinary(bytes: Uint8Array): boolean {
    return this.#send(OPCODE.binary, bytes);
  }

  sendText(text: string): boolean {
    return this.#send(OPCODE.text, new TextEncoder().encode(text));
  }

  /** Starts the closing handshake; the TCP connection ends when the server answers (or after 5 s). */
  close(code = 1000, reason = ""): void {
    if (this.#state !== "open") return;
    this.#byClient = true;
    this.#sendClose(code, reason);
    this.#state = "closing";
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), CLOSE_HANDSHAKE_TIMEOUT_MS);
  }

  /** Drops the TCP connection at once, without a close frame: what a lost network looks like. */
  terminate(): void {
    if (this.#state === "closed") return;
    this.#byClient = true;
    this.#socket.destroy();
  }

  #send(opcode: number, payload: Uint8Array): boolean {
    if (this.#state !== "open" || this.#socket.destroyed) return false;
    this.#socket.write(encodeClientFrame(opcode, payload, randomBytes(4)));
    return true;
  }

  #sendClose(code: number, reason: string): void {
    if (this.#closeSent || this.#socket.destroyed) return;
    this.#closeSent = true;
    this.#socket.write(
      encodeClientFrame(OPCODE.close, encodeClosePayload(code, reason), randomBytes(4)),
    );
  }

  #onData(chunk: Uint8Array): void {
    if (this.#state === "closed") return;
    let events: ServerEvent[];
    try {
      events = this.#reader.push(chunk);
    } catch (error) {
      // A broken stream cannot be resynchronised: fail the connection (§7.1.7), loudly.
      console.error(`websocket: ${error instanceof Error ? error.message : String(error)}`);
      this.#sendClose(1002, "protocol error");
      this.#socket.destroy();
      return;
    }
    for (const event of events) {
      switch (event.type) {
        case "text":
          if (this.#state === "open") this.#handlers.onText?.(event.text);
          break;
        case "binary":
          if (this.#state === "open") this.#handlers.onBinary?.(event.data);
          break;
        case "ping":
          if (!this.#closeSent) {
            this.#socket.write(encodeClientFrame(OPCODE.pong, event.payload, randomBytes(4)));
          }
          break;
        case "pong":
          break;
        case "close":
          this.#serverClose = { code: event.code, reason: event.reason };
          // Echo the code (§5.5.1), then the server closes TCP; end our side too.
          this.#sendClose(event.code === 1005 ? 1000 : event.code, "");
          this.#state = "closing";
          this.#socket.end();
          return;
      }
    }
  }

  #finish(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    clearTimeout(this.#closeTimer);
    const server = this.#serverClose;
    this.#handlers.onClose?.({
      code: server?.code ?? 1006,
      reason: server?.reason ?? "",
      clean: server !== null,
      byClient: this.#byClient,
    });
  }
}

/**
 * Opens `url` (ws:// or http://) as a WebSocket. Resolves with the socket after a valid 101, or
 * with the refusal (status, headers, body) for any other answer; rejects when no answer came
 * (connection refused, timeout) or the 101 was malformed.
 */
export function connectWebSocket(url: string, options: WsConnectOptions): Promise<WsConnectResult> {
  const target = new URL(url.replace(/^ws/, "http"));
  const key = randomBytes(16).toString("base64");
  const headers: Record<string, string> = {
    ...options.headers,
    Connection: "Upgrade",
    Upgrade: "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": key,
  };
  if (options.protocols && options.protocols.length > 0) {
    headers["Sec-WebSocket-Protocol"] = options.protocols.join(", ");
  }
  return new Promise((resolve, reject) => {
    // agent: false: every socket its own TCP connection, never pooled (it becomes the WebSocket).
    const request = http.request(target, { method: "GET", headers, agent: false });
    const timer = setTimeout(() => {
      request.destroy(new Error(`websocket handshake to ${target.host} timed out`));
    }, options.timeoutMs);
    request.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      response.on("end", () => {
        clearTimeout(timer);
        resolve({
          ok: false,
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        });
      });
    });
    request.on("upgrade", (response, socket, head) => {
      clearTimeout(timer);
      const expected = createHash("sha1")
        .update(key + ACCEPT_GUID)
        .digest("base64");
      if (response.headers["sec-websocket-accept"] !== expected) {
        socket.destroy();
        reject(new Error("websocket handshake: wrong Sec-WebSocket-Accept"));
        return;
      }
      resolve({ ok: true, socket: new WsSocket(socket, head, options), headers: response.headers });
    });
    request.end();
  });
}
