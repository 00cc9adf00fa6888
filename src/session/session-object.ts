/**
 * The session Durable Object: one per session id, so one session's audio, VAD state and transcript
 * can never meet another's. This file is a dispatcher: it accepts the socket the worker forwards,
 * wires a LiveSession to it, and answers reads of the stored transcript.
 *
 * The socket is accepted with `accept()`, not the hibernation API: a live session holds in-memory
 * state (VAD recurrent state, the utterance being transcribed) that hibernation would drop, and an
 * active session is never idle long enough to hibernate anyway (the idle timeout closes it first).
 *
 * A resumed connection (README "Resumable sessions") reaches the same object by the session id
 * and is attached to the LiveSession that is still running. If the object itself was reset (a
 * deploy, a crash), that in-memory state is gone: the resume is refused 410 and the stored finals
 * stay readable; the session's slot is given back at once.
 */
import { DurableObject } from "cloudflare:workers";
import {
  httpError,
  invalidAuth,
  serviceUnavailable,
  upgradeRequired,
} from "../protocol/http-errors";
import type { ListenOptions } from "../protocol/option-schema";
import { differingOption } from "../protocol/options";
import { createLogger, type Logger } from "../runtime/log";
import { recordSessionEnd } from "../runtime/metrics";
import { wasmHeapBytes } from "../runtime/ort";
import { selectTranscriber } from "../stt/select";
import type { Transcriber } from "../stt/transcriber";
import { DEFAULT_IDLE_TIMEOUT_MS, MAX_SESSION_SECONDS, RESUME_WINDOW_MS } from "./caps";
import { isolateCapacity, isolateSessions, liveInIsolate } from "./isolate-sessions";
import { LiveSession } from "./live-session";
import { endApplies, type OperatorEnd, StartingSession } from "./operator-end";
import { msVar, softCutVar } from "./session-config";
import { SessionLease } from "./session-lease";
import {
  decodeSessionResume,
  decodeSessionStart,
  SESSION_RESUME_HEADER,
  SESSION_START_HEADER,
  type SessionResume,
  type SessionStart,
} from "./session-start";
import { type StoredFinal, TranscriptStore } from "./transcript-store";

export interface SessionTranscript {
  sessionId: string;
  finals: StoredFinal[];
}

export class SessionObject extends DurableObject<Env> {
  readonly #store = new TranscriptStore(this.ctx.storage.sql);
  #live: LiveSession | null = null;
  /** Between the handshake's /connect and going live (operator-end.ts says why). */
  #starting: StartingSession | null = null;

  override async fetch(request: Request): Promise<Response> {
    const resume = decodeSessionResume(request.headers.get(SESSION_RESUME_HEADER));
    if (resume !== null) return this.#resume(request, resume);
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
    const starting = new StartingSession(start.accountId, start.keyId);
    this.#starting = starting;
    try {
      return await this.#start(start, starting, log);
    } finally {
      // (A racing start for the same id, refused 409 or not, may have replaced it.)
      if (this.#starting === starting) this.#starting = null;
    }
  }

  async #start(start: SessionStart, starting: StartingSession, log: Logger): Promise<Response> {
    let transcriber: Transcriber;
    try {
      transcriber = selectTranscriber(this.env.EARSHOT_TRANSCRIBER, this.env);
      // Models load once per isolate; a failure is known here, before the upgrade, as a 503.
      await transcriber.prepare?.();
    } catch (error) {
      log.error("transcriber unavailable", { error });
      return serviceUnavailable(
        start.sessionId,
        30,
        "speech recognition is temporarily unavailable",
      );
    }
    let refused: string | null;
    try {
      refused = await starting.refusal(this.env.DB);
    } catch (error) {
      log.error("could not re-check the session's key", { error });
      return serviceUnavailable(start.sessionId, 5, "the service is temporarily unavailable");
    }
    if (refused !== null) {
      log.info("session refused as it started", { reason: refused });
      return invalidAuth(start.sessionId, `${refused} while the session started`);
    }
    const capacity = isolateCapacity(this.env, transcriber);
    const running = liveInIsolate(Date.now());
    if (running >= capacity) {
      log.warn("isolate at capacity", { running, capacity });
      return serviceUnavailable(
        start.sessionId,
        5,
        `the service is at capacity (${capacity} sessions on this server); try again shortly`,
      );
    }

    const [client, server] = acceptedPair();
    this.#store.begin({
      sessionId: start.sessionId,
      accountId: start.accountId,
      optionsJson: JSON.stringify(start.options),
      createdAt: start.createdAt,
    });
    const lease = new SessionLease(this.env, start.accountId, start.sessionId, log);
    const live = new LiveSession(
      {
        sessionId: start.sessionId,
        accountId: start.accountId,
        keyId: start.keyId,
        options: start.options,
        createdAt: start.createdAt,
        idleTimeoutMs: msVar(this.env.EARSHOT_IDLE_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS),
        resumeWindowMs: msVar(this.env.EARSHOT_RESUME_WINDOW_MS, RESUME_WINDOW_MS),
        maxSessionSeconds: Math.min(
          start.maxSessionSeconds ?? MAX_SESSION_SECONDS,
          MAX_SESSION_SECONDS,
        ),
        softCutSeconds: softCutVar(this.env.EARSHOT_SOFT_CUT_SECONDS),
      },
      transcriber,
      this.#store,
      log,
      {
        ended: (ending) => {
          const usage = live.usage();
          lease.release(usage);
          this.#live = null;
          isolateSessions.delete(start.sessionId);
          recordSessionEnd(this.env, {
            accountId: start.accountId,
            sessionId: start.sessionId,
            ...ending,
            audioSecondsReceived: usage.audioSecondsReceived,
            audioSecondsTranscribed: usage.audioSecondsTranscribed,
            sessionSeconds: (Date.now() - start.createdAt) / 1000,
            wasmHeapBytes: wasmHeapBytes() ?? 0,
          });
        },
      },
    );
    isolateSessions.set(start.sessionId, Date.now());
    lease.start(() => {
      isolateSessions.set(start.sessionId, Date.now()); // still alive
      return live.usage();
    });
    this.#live = live;
    live.attach(server, null);
    log.info("session started", {
      encoding: start.options.encoding,
      sampleRate: start.options.sampleRate,
      resumable: start.options.resumable,
      model: transcriber.model.name,
    });
    return switchingProtocols(client, start.subprotocol);
  }

  async #resume(request: Request, resume: SessionResume): Promise<Response> {
    const { sessionId, accountId } = resume;
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return upgradeRequired(sessionId);
    }
    const log = createLogger({ sessionId, accountId });
    const record = this.#store.record();
    // Another account's session is answered exactly like a missing one: ids are not disclosed.
    if (record === null || record.accountId !== accountId) {
      return httpError(404, "SESSION_NOT_FOUND", "no session with this id", sessionId);
    }
    const live = this.#live;
    if (live === null) {
      if (!this.#store.hasEnded()) {
        // The object was reset while the session ran: its audio and model state are gone. Give
        // the slot back now instead of when the lease expires, and record how it ended.
        log.warn("resume of a session whose object was reset");
        new SessionLease(this.env, accountId, sessionId, log).release({
          audioSecondsReceived: 0,
          audioSecondsTranscribed: 0,
          startedAt: record.createdAt,
        });
        this.#store.end(0, 1012, "session state lost: its server restarted", Date.now());
        return httpError(
          410,
          "SESSION_ENDED",
          `this session's server restarted and its unfinished audio is gone; its ${this.#store.finals().length} stored finals are at GET /v1/sessions/${sessionId}/transcript; open a new session`,
          sessionId,
        );
      }
      return httpError(
        410,
        "SESSION_ENDED",
        `this session has ended; its transcript is at GET /v1/sessions/${sessionId}/transcript`,
        sessionId,
      );
    }
    // Another key of the account may not take the session over: an operator who revokes that key
    // ends the sessions opened with it, and would miss a socket it attached by resuming.
    if (resume.keyId !== live.keyId) {
      log.info("resume refused", { errCode: "KEY_MISMATCH", keyId: resume.keyId });
      return httpError(
        403,
        "KEY_MISMATCH",
        "a session resumes only with the API key that opened it (or a token that key granted)",
        sessionId,
      );
    }
    const sessionOptions = JSON.parse(record.optionsJson) as ListenOptions;
    const differs = differingOption(resume.given, resume.options, sessionOptions);
    if (differs !== null) {
      return httpError(
        400,
        "Bad Request",
        `${differs} differs from the session's: a resume must repeat the session's options or leave them out`,
        sessionId,
      );
    }
    const refusal = live.resumeRefusal(resume);
    if (refusal !== null) {
      log.info("resume refused", { errCode: refusal.errCode, message: refusal.message });
      return httpError(refusal.status, refusal.errCode, refusal.message, sessionId);
    }
    // A probe learns that the resume would be admitted, and the live client keeps its socket.
    if (resume.probe === true) return new Response(null, { status: 204 });
    const [client, server] = acceptedPair();
    live.attach(server, resume);
    return switchingProtocols(client, resume.subprotocol);
  }

  /**
   * Ends this session if it is live and matches `end` (its account, its API key): operator-end.ts.
   * True when it was ended here; false when it is not live or does not match.
   */
  async endByOperator(end: OperatorEnd): Promise<boolean> {
    const live = this.#live;
    const record = this.#store.record();
    if (live === null || record === null) return this.#starting?.end(end) ?? false;
    if (!endApplies(end, record.accountId, live.keyId)) return false;
    live.endByOperator(end.reason);
    return true;
  }

  /** The stored finals, for the account that owns this session; null for anyone else. */
  async getTranscript(accountId: string): Promise<SessionTranscript | null> {
    const record = this.#store.record();
    if (record === null || record.accountId !== accountId) return null;
    return { sessionId: record.sessionId, finals: this.#store.finals() };
  }
}

/** A socket pair whose server end is accepted and delivers audio as ArrayBuffers. */
function acceptedPair(): [WebSocket, WebSocket] {
  const pair = new WebSocketPair();
  const server = pair[1];
  // Since compatibility date 2026-03 workerd follows the standard and delivers binary messages
  // as Blob by default; audio is handled synchronously as bytes, so ask for ArrayBuffers.
  server.binaryType = "arraybuffer";
  server.accept();
  return [pair[0], server];
}

/** The 101 answer, selecting the browser's subprotocol when it sent one. */
function switchingProtocols(client: WebSocket, subprotocol: string | null): Response {
  const headers = new Headers();
  if (subprotocol !== null) headers.set("Sec-WebSocket-Protocol", subprotocol);
  return new Response(null, { status: 101, webSocket: client, headers });
}
