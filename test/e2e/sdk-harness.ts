/**
 * What the official-SDK test (sdk.e2e.ts) needs around `@deepgram/sdk`, which it runs unchanged:
 * accounts made through the admin API, a record of everything the SDK reports on one socket, an
 * HTTP agent that counts the SDK's handshakes (so "not retried" is counted, not assumed), pacing
 * for real-time audio, and the eval clips with their references.
 */

import { readFileSync } from "node:fs";
import { Agent, type ClientRequestArgs } from "node:http";
import path from "node:path";
import type { Duplex } from "node:stream";
import type { DeepgramClient, listen } from "@deepgram/sdk";
import { parseManifest } from "../../tools/eval/manifest";
import { parseWav } from "../../tools/eval/wav";

const root = path.resolve(import.meta.dirname, "../..");
const EVAL_DIR = path.resolve(root, process.env.EARSHOT_SHARED ?? "../shared", "eval", "dev");

/** Earshot transcribes 16 kHz mono PCM16: 16 000 samples × 2 bytes per second. */
export const BYTES_PER_SECOND = 16_000 * 2;

/** The SDK's socket, as `client.listen.v1.connect` returns it (the type is not exported). */
export type SdkSocket = Awaited<ReturnType<DeepgramClient["listen"]["v1"]["connect"]>>;
/** What the socket's `message` event delivers: the SDK's typed union (its V1Socket.Response). */
export type SdkMessage =
  | listen.ListenV1Results
  | listen.ListenV1Metadata
  | listen.ListenV1UtteranceEnd
  | listen.ListenV1SpeechStarted;
export type SdkResults = listen.ListenV1Results;

export interface Clip {
  id: string;
  /** The clip's WAV file exactly as it is on disk (header included). */
  file: Uint8Array;
  /** PCM16 LE, 16 kHz mono: exactly the bytes the test sends. */
  pcm: Uint8Array;
  /** The manifest's lowercase reference transcript. */
  reference: string;
}

/** An eval clip (../shared/eval/dev) and its reference; refuses what Earshot is not sent as-is. */
export function readClip(id: string): Clip {
  const rows = parseManifest(readFileSync(path.join(EVAL_DIR, "manifest.tsv"), "utf8"));
  const row = rows.find((r) => r.id === id);
  if (row === undefined) throw new Error(`${id} is not in ${EVAL_DIR}/manifest.tsv`);
  const file = new Uint8Array(readFileSync(path.join(EVAL_DIR, row.file)));
  const wav = parseWav(file);
  if (wav.sampleRate !== 16_000 || wav.channels !== 1) {
    throw new Error(`${id}: expected 16 kHz mono, got ${wav.sampleRate} Hz × ${wav.channels}`);
  }
  return { id, file, pcm: wav.pcm, reference: row.reference };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- accounts -----------------------------------------------------------------------------------

export interface AdminAccount {
  accountId: string;
  keyId: string;
  /** The API key, as the admin API shows it once. */
  key: string;
}

async function json<T>(response: Response, what: string): Promise<T> {
  if (!response.ok) throw new Error(`${what}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** A fresh account and key through the admin API, so no test shares a limit with another. */
export async function createAdminAccount(
  baseUrl: string,
  adminToken: string,
  limits: { maxConcurrentSessions: number; maxSessionSeconds?: number },
): Promise<AdminAccount> {
  const headers = { Authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
  const account = await json<{ id: string }>(
    await fetch(`${baseUrl}/admin/accounts`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        name: "sdk e2e",
        max_concurrent_sessions: limits.maxConcurrentSessions,
        max_session_seconds: limits.maxSessionSeconds ?? null,
      }),
    }),
    "POST /admin/accounts",
  );
  const key = await json<{ id: string; key: string }>(
    await fetch(`${baseUrl}/admin/accounts/${account.id}/keys`, {
      method: "POST",
      headers,
      body: JSON.stringify({ label: "sdk e2e" }),
    }),
    "POST /admin/accounts/:id/keys",
  );
  return { accountId: account.id, keyId: key.id, key: key.key };
}

/** Ids of the account's active sessions (GET /v1/sessions). */
export async function activeSessionIds(baseUrl: string, key: string): Promise<string[]> {
  const body = await json<{ sessions: { id: string }[] }>(
    await fetch(`${baseUrl}/v1/sessions`, { headers: { Authorization: `Token ${key}` } }),
    "GET /v1/sessions",
  );
  return body.sessions.map((s) => s.id);
}

/** Sessions the account's limiter ever admitted (GET /v1/usage `sessions_total`). */
export async function sessionsAdmitted(baseUrl: string, key: string): Promise<number> {
  const body = await json<{ sessions_total: number }>(
    await fetch(`${baseUrl}/v1/usage`, { headers: { Authorization: `Token ${key}` } }),
    "GET /v1/usage",
  );
  return body.sessions_total;
}

// --- the SDK's handshakes -----------------------------------------------------------------------

/**
 * One handshake the SDK made. (The request path is not among the options an agent sees; the
 * socket's `url` has it.)
 */
export interface Handshake {
  /** The scheme of the Authorization header ("Token", "Bearer"); never the secret. */
  authorization: string | null;
}

/**
 * An HTTP agent (the SDK's documented `agent` connect option, which it hands to `ws`) that
 * records every connection it opens. Each WebSocket handshake is one HTTP request on a fresh
 * connection (no keep-alive: an upgraded or refused socket is never reused), so `handshakes`
 * counts every attempt the SDK makes, first connect and reconnects alike.
 */
export class HandshakeCounter extends Agent {
  readonly handshakes: Handshake[] = [];

  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    // ws passes headers as an object (the SDK lowercases `authorization`); HTTP names ignore case.
    const headers = options.headers;
    const entries = headers !== undefined && !Array.isArray(headers) ? Object.entries(headers) : [];
    const auth = entries.find(([name]) => name.toLowerCase() === "authorization")?.[1];
    this.handshakes.push({
      authorization: typeof auth === "string" ? (auth.split(" ")[0] ?? null) : null,
    });
    return super.createConnection(options, callback);
  }
}

// --- what the SDK reports -----------------------------------------------------------------------

export type SdkEvent =
  | { kind: "open"; at: number }
  | { kind: "message"; at: number; message: SdkMessage }
  | { kind: "close"; at: number; code: number; reason: string }
  | { kind: "error"; at: number; message: string };

/**
 * Every event the SDK reports on one socket, in order. The SDK keeps one handler per event
 * (`on` replaces the previous one), so this must be the only listener.
 */
export class SocketLog {
  readonly events: SdkEvent[] = [];
  readonly #waiters = new Set<() => void>();

  constructor(readonly socket: SdkSocket) {
    const record = (event: SdkEvent) => {
      this.events.push(event);
      for (const wake of this.#waiters) wake();
    };
    socket.on("open", () => record({ kind: "open", at: Date.now() }));
    socket.on("message", (message) => record({ kind: "message", at: Date.now(), message }));
    socket.on("close", (event) =>
      record({ kind: "close", at: Date.now(), code: event.code, reason: event.reason ?? "" }),
    );
    socket.on("error", (error) =>
      record({ kind: "error", at: Date.now(), message: error.message }),
    );
  }

  get messages(): SdkMessage[] {
    return this.events.flatMap((e) => (e.kind === "message" ? [e.message] : []));
  }

  get results(): SdkResults[] {
    return this.messages.filter((m): m is SdkResults => m.type === "Results");
  }

  get finals(): SdkResults[] {
    return this.results.filter((m) => m.is_final === true);
  }

  count(kind: SdkEvent["kind"]): number {
    return this.events.filter((e) => e.kind === kind).length;
  }

  /**
   * The first event from index `from` on that satisfies `match`; rejects after `timeoutMs` with
   * everything that arrived, so a failure says what the SDK did report.
   */
  waitFor(
    what: string,
    match: (event: SdkEvent) => boolean,
    timeoutMs: number,
    from = 0,
  ): Promise<SdkEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.slice(from).find(match);
        if (found === undefined) return false;
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve(found);
        return true;
      };
      const wake = () => void check();
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${this.summary()}`),
        );
      }, timeoutMs);
      if (!check()) this.#waiters.add(wake);
    });
  }

  waitForMessage<T extends SdkMessage["type"]>(
    type: T,
    timeoutMs: number,
    match: (message: Extract<SdkMessage, { type: T }>) => boolean = () => true,
    from = 0,
  ): Promise<Extract<SdkMessage, { type: T }>> {
    const isIt = (m: SdkMessage): m is Extract<SdkMessage, { type: T }> => m.type === type;
    return this.waitFor(
      `a ${type} message`,
      (e) => e.kind === "message" && isIt(e.message) && match(e.message),
      timeoutMs,
      from,
    ).then((e) => {
      if (e.kind === "message" && isIt(e.message)) return e.message;
      throw new Error(`unreachable: matched ${e.kind}`);
    });
  }

  /** One line per event, for failure messages. */
  summary(): string {
    const lines = this.events.map((e) => {
      switch (e.kind) {
        case "message":
          return e.message.type === "Results"
            ? `Results(final=${e.message.is_final}) "${e.message.channel.alternatives[0]?.transcript ?? ""}"`
            : e.message.type;
        case "close":
          return `close ${e.code} ${e.reason}`;
        case "error":
          return `error ${e.message}`;
        default:
          return e.kind;
      }
    });
    return lines.length === 0 ? "(nothing)" : lines.join("; ");
  }
}

// --- connecting ---------------------------------------------------------------------------------

/** Waits for a handshake: the first Whisper session loads the models (0.7–1.5 s measured). */
export const OPEN_TIMEOUT_MS = 30_000;

type ConnectArgs = Parameters<DeepgramClient["listen"]["v1"]["connect"]>[0];

export interface Connection {
  socket: SdkSocket;
  log: SocketLog;
  counter: HandshakeCounter;
}

/** Creates the SDK socket, starts recording it, and connects (without waiting for `open`). */
export async function connect(client: DeepgramClient, args: ConnectArgs): Promise<Connection> {
  const counter = new HandshakeCounter();
  const socket = await client.listen.v1.connect({ ...args, agent: counter });
  const log = new SocketLog(socket);
  socket.connect();
  return { socket, log, counter };
}

/** Waits for `open`; a refusal or a close first fails at once, with what the SDK reported. */
export async function opened(connection: Connection): Promise<void> {
  const { log } = connection;
  const first = await log.waitFor("open", (e) => e.kind !== "message", OPEN_TIMEOUT_MS);
  if (first.kind !== "open") throw new Error(`the SDK did not open: ${log.summary()}`);
}

/** The transcript of a Results message ("" when it has none). */
export function transcriptOf(results: SdkResults): string {
  return results.channel.alternatives[0]?.transcript ?? "";
}

/**
 * Sends `pcm` through the SDK in `chunkBytes` frames, as `subarray` views of the caller's buffer
 * (what an application streaming a file or a mic buffer does). With `realTime`, each frame leaves
 * when its audio would have been spoken (at `bytesPerSecond`, 16-kHz PCM16's unless given: a
 * file in another format is paced by its own byte rate), scheduled from the start so delays do
 * not accumulate.
 * If the socket closes meanwhile (the SDK would throw "Socket is not open."), the error says what
 * the SDK reported instead.
 */
export async function streamPcm(
  log: SocketLog,
  pcm: Uint8Array,
  options: { chunkBytes: number; realTime: boolean; bytesPerSecond?: number },
): Promise<void> {
  const started = Date.now();
  const rate = options.bytesPerSecond ?? BYTES_PER_SECOND;
  for (let at = 0; at < pcm.byteLength; at += options.chunkBytes) {
    if (options.realTime) {
      const due = started + (at / rate) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
    }
    if (log.count("close") > 0) {
      throw new Error(`the socket closed after ${at} bytes of audio: ${log.summary()}`);
    }
    log.socket.sendMedia(pcm.subarray(at, Math.min(at + options.chunkBytes, pcm.byteLength)));
  }
}
