/**
 * A WebSocket client for tests: connects to the worker under test through its fetch handler (as a
 * real client's upgrade would arrive), records every server message in order, and waits with a
 * timeout on everything so a hung session fails the test instead of stalling it.
 */
import { exports } from "cloudflare:workers";

export const DEMO_KEY = "earshot-demo-key";
const WAIT_MS = 20_000;

export interface ServerJson {
  type: string;
  [field: string]: unknown;
}

export interface Closed {
  code: number;
  reason: string;
}

export interface ConnectOptions {
  /** API key sent as `Authorization: Token <key>` (default: the demo key); null sends none. */
  key?: string | null;
  headers?: Record<string, string>;
}

export async function handshake(query: string, options: ConnectOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Upgrade: "websocket", ...options.headers };
  const key = options.key === undefined ? DEMO_KEY : options.key;
  if (key !== null) headers.Authorization = `Token ${key}`;
  return exports.default.fetch(`http://earshot.test/v1/listen${query}`, { headers });
}

/** The transcript of a Results message ("" for anything else). */
export function transcriptOf(message: ServerJson): string {
  const channel = message.channel as { alternatives?: { transcript?: string }[] } | undefined;
  return channel?.alternatives?.[0]?.transcript ?? "";
}

export class TestClient {
  readonly messages: ServerJson[] = [];
  readonly closed: Promise<Closed>;
  #waiters: Array<() => void> = [];
  #closedWith: Closed | null = null;

  constructor(
    readonly socket: WebSocket,
    readonly sessionId: string,
  ) {
    socket.binaryType = "arraybuffer";
    socket.accept();
    this.closed = new Promise((resolve) => {
      socket.addEventListener("close", (event) => {
        this.#closedWith = { code: event.code, reason: event.reason };
        resolve(this.#closedWith);
        this.#notify();
      });
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") throw new Error("server sent a binary frame");
      this.messages.push(JSON.parse(event.data) as ServerJson);
      this.#notify();
    });
  }

  static async open(query: string, options: ConnectOptions = {}): Promise<TestClient> {
    const response = await handshake(query, options);
    const socket = response.webSocket;
    if (response.status !== 101 || socket === null) {
      throw new Error(`handshake failed: ${response.status} ${await response.text()}`);
    }
    return new TestClient(socket, response.headers.get("dg-request-id") ?? "");
  }

  get isClosed(): boolean {
    return this.#closedWith !== null;
  }

  sendAudio(bytes: Uint8Array): void {
    this.socket.send(bytes);
  }

  sendJson(message: unknown): void {
    this.socket.send(JSON.stringify(message));
  }

  of(type: string): ServerJson[] {
    return this.messages.filter((m) => m.type === type);
  }

  /** The final Results received, in order. */
  finals(): ServerJson[] {
    return this.of("Results").filter((m) => m.is_final === true);
  }

  /** The latest audio_bytes a resumable session acknowledged on this socket (0 if none). */
  acknowledged(): number {
    const acks = this.messages.filter(
      (m) => m.type === "EarshotAck" || m.type === "EarshotSession",
    );
    return Math.max(0, ...acks.map((m) => Number(m.audio_bytes)));
  }

  /** Resolves with the first message (from the start) matching `predicate`. */
  async waitFor(
    predicate: (m: ServerJson) => boolean,
    what: string,
    timeoutMs = WAIT_MS,
  ): Promise<ServerJson> {
    await this.#until(() => this.messages.some(predicate) || this.isClosed, what, timeoutMs);
    const found = this.messages.find(predicate);
    if (!found)
      throw new Error(`socket closed before ${what}: ${JSON.stringify(this.#closedWith)}`);
    return found;
  }

  async waitClosed(timeoutMs = WAIT_MS): Promise<Closed> {
    await this.#until(() => this.isClosed, "close", timeoutMs);
    return this.closed;
  }

  /** CloseStream, then everything up to the close: the Metadata and the close code. */
  async finish(): Promise<{ metadata: ServerJson; closed: Closed }> {
    this.sendJson({ type: "CloseStream" });
    const metadata = await this.waitFor((m) => m.type === "Metadata", "Metadata");
    return { metadata, closed: await this.waitClosed() };
  }

  #until(ready: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== check);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; got ${this.messages.map((m) => m.type).join(",")}`,
          ),
        );
      }, timeoutMs);
      const check = () => {
        if (!ready()) return;
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== check);
        resolve();
      };
      this.#waiters.push(check);
    });
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Splits `bytes` into frames of `size` bytes (the last may be shorter). */
export function frames(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.byteLength; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

/** Messages with the per-session id removed, for comparing two sessions' streams. */
export function withoutIds(messages: ServerJson[]): unknown[] {
  return messages.map((m) =>
    JSON.parse(JSON.stringify(m).replaceAll(/"request_id":"[^"]*"/g, '"request_id":""')),
  );
}
