/**
 * The WebSocket client scripts use (the soak's resumable client), on the `ws` package: a refused
 * handshake comes back as its HTTP status, headers and body (`unexpected-response`), and
 * `terminate()` drops the TCP connection without a close frame, as a network failure would.
 *
 * Handlers are given to `connectWebSocket`, not attached afterwards: the server may send its first
 * message in the same TCP segment as the 101 (Earshot's EarshotSession does), and it must not be
 * lost between the upgrade and the caller's next line.
 */
import type { IncomingHttpHeaders } from "node:http";
import WebSocket from "ws";

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
  /** Exactly once, whatever the cause, for a connection that opened. */
  onClose?: (closed: WsClosed) => void;
}

export interface WsConnectOptions extends WsHandlers {
  headers?: Record<string, string>;
  /** Sent as Sec-WebSocket-Protocol (browsers' way to carry a key: `token, <key>`). */
  protocols?: string[];
  timeoutMs: number;
}

export type WsConnectResult =
  | { ok: true; socket: WsSocket; headers: IncomingHttpHeaders }
  | { ok: false; status: number; headers: IncomingHttpHeaders; body: string };

export class WsSocket {
  readonly #ws: WebSocket;
  #byClient = false;

  constructor(ws: WebSocket) {
    this.#ws = ws;
  }

  /** Bytes queued by `send` and not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.#ws.bufferedAmount;
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  get byClient(): boolean {
    return this.#byClient;
  }

  sendBinary(bytes: Uint8Array): boolean {
    if (!this.isOpen) return false;
    this.#ws.send(bytes, { binary: true });
    return true;
  }

  sendText(text: string): boolean {
    if (!this.isOpen) return false;
    this.#ws.send(text, { binary: false });
    return true;
  }

  /** Starts the closing handshake; `ws` drops TCP if the server never answers. */
  close(code = 1000, reason = ""): void {
    if (!this.isOpen) return;
    this.#byClient = true;
    this.#ws.close(code, reason);
  }

  /** Drops the TCP connection at once, without a close frame: what a lost network looks like. */
  terminate(): void {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    this.#byClient = true;
    this.#ws.terminate();
  }
}

/**
 * Opens `url` (ws:// or http://) as a WebSocket. Resolves with the socket after a valid 101, or
 * with the refusal (status, headers, body) for any other answer; rejects when no answer came
 * (connection refused, timeout) or the 101 was malformed.
 */
export function connectWebSocket(url: string, options: WsConnectOptions): Promise<WsConnectResult> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let opened = false;
    let headers: IncomingHttpHeaders = {};
    const settle = (result: WsConnectResult | Error) => {
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
    const socket = new WsSocket(ws);
    ws.on("upgrade", (response) => {
      headers = response.headers;
    });
    ws.on("open", () => {
      opened = true;
      settle({ ok: true, socket, headers });
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
      if (!socket.isOpen) return;
      // `ws` hands a Buffer (its default binaryType), or fragments as Buffer[].
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (isBinary) options.onBinary?.(new Uint8Array(bytes));
      else options.onText?.(bytes.toString("utf8"));
    });
    ws.on("close", (code, reason) => {
      if (!opened) {
        settle(new Error(`websocket to ${url} closed during the handshake (${code})`));
        return;
      }
      options.onClose?.({
        code,
        reason: reason.toString("utf8"),
        // `ws` reports 1006 exactly when no close frame arrived.
        clean: code !== 1006,
        byClient: socket.byClient,
      });
    });
  });
}
