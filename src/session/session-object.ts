/**
 * The session Durable Object: one per session id, so one session's audio, VAD state and transcript
 * can never meet another's. This file is a dispatcher: it accepts the socket the worker forwards,
 * wires a LiveSession to it, and answers reads of the stored transcript.
 *
 * The socket is accepted with `accept()`, not the hibernation API: a live session holds in-memory
 * state (VAD recurrent state, the utterance being transcribed) that hibernation would drop, and an
 * active session is never idle long enough to hibernate anyway (the idle timeout closes it first).
 */
import { DurableObject } from "cloudflare:workers";
import { httpError, serviceUnavailable, upgradeRequired } from "../protocol/http-errors";
import { createLogger } from "../runtime/log";
import { selectTranscriber } from "../stt/select";
import type { Transcriber } from "../stt/transcriber";
import { DEFAULT_IDLE_TIMEOUT_MS, MAX_SESSION_SECONDS } from "./caps";
import { LiveSession } from "./live-session";
import { SessionLease } from "./session-lease";
import { decodeSessionStart, SESSION_START_HEADER } from "./session-start";
import { type StoredFinal, TranscriptStore } from "./transcript-store";

export interface SessionTranscript {
  sessionId: string;
  finals: StoredFinal[];
}

function idleTimeoutMs(value: string | undefined): number {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : DEFAULT_IDLE_TIMEOUT_MS;
}

export class SessionObject extends DurableObject<Env> {
  readonly #store = new TranscriptStore(this.ctx.storage.sql);
  #live: LiveSession | null = null;

  override async fetch(request: Request): Promise<Response> {
    const start = decodeSessionStart(request.headers.get(SESSION_START_HEADER));
    const requestId = start?.sessionId ?? "unknown";
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return upgradeRequired(requestId);
    }
    if (start === null) {
      return httpError(400, "Bad Request", "missing or malformed session start", requestId);
    }
    const log = createLogger({ sessionId: start.sessionId, accountId: start.accountId });
    if (this.#live !== null || this.#store.record() !== null) {
      // Session ids are minted per handshake; reaching an existing one means a retry raced us.
      return httpError(409, "SESSION_EXISTS", "this session id is already in use", requestId);
    }
    let transcriber: Transcriber;
    try {
      transcriber = selectTranscriber(this.env.EARSHOT_TRANSCRIBER, this.env);
      // Models load once per isolate; a failure is known here, before the upgrade, as a 503.
      await transcriber.prepare?.();
    } catch (error) {
      log.error("transcriber unavailable", { error });
      return serviceUnavailable(requestId, 30, "speech recognition is temporarily unavailable");
    }

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    // Since compatibility date 2026-03 workerd follows the standard and delivers binary messages
    // as Blob by default; audio is handled synchronously as bytes, so ask for ArrayBuffers.
    server.binaryType = "arraybuffer";
    server.accept();
    this.#store.begin({
      sessionId: start.sessionId,
      accountId: start.accountId,
      optionsJson: JSON.stringify(start.options),
      createdAt: start.createdAt,
    });
    const lease = new SessionLease(this.env, start.accountId, start.sessionId, log);
    const live = new LiveSession(
      server,
      {
        sessionId: start.sessionId,
        accountId: start.accountId,
        options: start.options,
        createdAt: start.createdAt,
        idleTimeoutMs: idleTimeoutMs(this.env.EARSHOT_IDLE_TIMEOUT_MS),
        maxSessionSeconds: Math.min(
          start.maxSessionSeconds ?? MAX_SESSION_SECONDS,
          MAX_SESSION_SECONDS,
        ),
      },
      transcriber,
      this.#store,
      log,
      {
        ended: () => {
          lease.release(live.usage());
          this.#live = null;
        },
      },
    );
    lease.start(() => live.usage());
    this.#live = live;
    log.info("session started", {
      encoding: start.options.encoding,
      sampleRate: start.options.sampleRate,
      model: transcriber.model.name,
    });
    const headers = new Headers();
    if (start.subprotocol !== null) headers.set("Sec-WebSocket-Protocol", start.subprotocol);
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  /** The stored finals, for the account that owns this session; null for anyone else. */
  async getTranscript(accountId: string): Promise<SessionTranscript | null> {
    const record = this.#store.record();
    if (record === null || record.accountId !== accountId) return null;
    return { sessionId: record.sessionId, finals: this.#store.finals() };
  }
}
