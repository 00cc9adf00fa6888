/**
 * One session: its socket, its serial queue, its audio input, VAD pipeline and transcriber, and
 * how it ends. Every message is handled in arrival order through the queue; nothing here is shared
 * with any other session.
 *
 * A resumable session (README "Resumable sessions") outlives its socket: when the connection
 * drops it goes on transcribing what it received, keeps its finals, and waits RESUME_WINDOW_MS
 * for the client to attach a new socket. Its audio stream stays one byte stream across sockets:
 * the client re-sends from an offset at or below what the session holds, and the session drops
 * the bytes it already has, so nothing is lost or transcribed twice. Finals are numbered in the
 * order produced; a resuming client says how many it has and gets the rest, exactly as first sent.
 *
 * This file wires the session's parts and decides what each event means for the session; the
 * parts do the work: SocketLink (the socket, takeover), inbound.ts (what a client frame is),
 * ResumeLedger (byte offsets and final numbers), SpeechPipeline (VAD → transcriber), Outbox (what
 * is sent, and a final's bookkeeping), SessionTimers (idle, lifetime, resume window), SessionEnd
 * (the end sequence and its deadline). Longer than the house's 300 lines because of that wiring:
 * each remaining method is one decision about the session as a whole (what a frame, a close, an
 * idle socket or a failure means for it), and splitting them would spread one decision over files.
 */

import { AudioInput } from "../audio/audio-input";
import type { SessionUsage } from "../limits/lease";
import type { ClientControlType } from "../protocol/client-messages";
import { CLOSE, closeWith, isSendableCloseCode } from "../protocol/close-codes";
import { buildSpeechStarted } from "../protocol/messages";
import type { ResumeRequest } from "../protocol/resume-params";
import type { Logger } from "../runtime/log";
import type { Transcriber, TranscriberSession } from "../stt/transcriber";
import { ACK_EVERY_AUDIO_SECONDS, floodDetail, maxQueuedBytes } from "./caps";
import { FinalLatencies } from "./final-latency";
import { readInbound } from "./inbound";
import { Outbox } from "./outbox";
import { ResumeLedger, type ResumeRefusal } from "./resume-ledger";
import { SerialQueue } from "./serial-queue";
import {
  type LiveSessionConfig,
  type LiveSessionHooks,
  transcriptFormat,
  vadOptionsFor,
} from "./session-config";
import { type EndMode, judgeFailure, SessionEnd } from "./session-end";
import { SessionTimers } from "./session-timers";
import { SocketLink } from "./socket-link";
import { SpeechPipeline } from "./speech-pipeline";
import type { TranscriptStore } from "./transcript-store";

type Store = Pick<TranscriptStore, "addFinal" | "end" | "addDelivery" | "deliveriesFrom">;

export class LiveSession {
  /** The client's socket; none while a resumable session waits for its client to come back. */
  readonly #link: SocketLink;
  readonly #queue: SerialQueue;
  readonly #audio: AudioInput;
  readonly #transcriber: TranscriberSession;
  readonly #pipeline: SpeechPipeline;
  /** End of speech → final, per utterance (final-latency.ts). */
  readonly #latencies = new FinalLatencies();
  readonly #maxQueuedBytes: number;
  readonly #timers: SessionTimers;
  readonly #end: SessionEnd;
  /** The audio stream's offsets and the finals' numbers, across resumed sockets. */
  readonly #ledger: ResumeLedger;
  readonly #out: Outbox;

  constructor(
    private readonly config: LiveSessionConfig,
    model: Transcriber,
    store: Store,
    private readonly log: Logger,
    hooks: LiveSessionHooks,
  ) {
    const { options } = config;
    this.#link = new SocketLink(log, {
      message: (data) => this.#onMessage(data),
      closed: (code, reason) => this.#onClose(code, reason),
    });
    this.#queue = new SerialQueue((error, label) => this.#failed(error, label));
    this.#audio = new AudioInput(options.encoding, options.sampleRate, options.detectContainer);
    this.#maxQueuedBytes = maxQueuedBytes(this.#audio.bytesPerSecond);
    this.#ledger = new ResumeLedger({
      resumable: options.resumable,
      ackEveryBytes: ACK_EVERY_AUDIO_SECONDS * this.#audio.bytesPerSecond,
    });
    this.#out = new Outbox({
      sessionId: config.sessionId,
      model: model.model,
      resumable: options.resumable,
      link: this.#link,
      ledger: this.#ledger,
      latencies: this.#latencies,
      store,
      log,
    });
    const format = transcriptFormat(options);
    this.#transcriber = model.open({
      sessionId: config.sessionId,
      accountId: config.accountId,
      language: options.language,
      interimResults: options.interimResults,
      keyterms: [...options.keyterms, ...options.keywords],
      log,
      emit: (transcript) => this.#out.transcript(format(transcript)),
    });
    this.#pipeline = new SpeechPipeline(
      vadOptionsFor(options),
      this.#transcriber,
      {
        speechStarted: (seconds) => {
          if (options.vadEvents) this.#out.send(buildSpeechStarted(seconds));
        },
        utteranceEnded: () => {
          if (options.utteranceEndMs !== null) this.#out.utteranceEnd();
        },
        failed: (error) => this.#failed(error, "final"),
        speechEnded: (sample, receivedAtMs) => this.#latencies.speechEnded(sample, receivedAtMs),
      },
      config.softCutSeconds,
    );
    this.#end = new SessionEnd({
      sessionId: config.sessionId,
      createdAt: config.createdAt,
      model: model.model,
      link: this.#link,
      queue: this.#queue,
      audio: this.#audio,
      pipeline: this.#pipeline,
      transcriber: this.#transcriber,
      store,
      log,
      finalLatency: () => this.#latencies.summary(),
      ended: (close) =>
        hooks.ended({
          closeCode: close.code,
          closeReason: close.reason,
          finals: this.#ledger.finals,
          finalLatency: this.#latencies.summary(),
        }),
    });
    this.#timers = new SessionTimers(config, {
      idle: () => this.#idle(),
      lifetimeOver: () => this.#ends({ kind: "graceful", close: CLOSE.MAX_DURATION }),
    });
  }

  get keyId(): string {
    return this.config.keyId;
  }

  /**
   * Ends the session for an operator (session/operator-end.ts): as on CloseStream, what was
   * received is transcribed and the finals and Metadata are sent, then close 1008 AUTH-0001. A
   * resumable session waiting for its client ends too.
   */
  endByOperator(reason: string): void {
    this.log.warn("ended by the operator", { reason });
    this.#ends({ kind: "graceful", close: closeWith(CLOSE.ENDED_BY_OPERATOR, reason) });
  }

  get bytesReceived(): number {
    return this.#audio.bytesReceived;
  }

  get #resumable(): boolean {
    return this.config.options.resumable;
  }

  /** Whether a client could resume this session now (raw audio; resume-ledger.ts). */
  get #resumableNow(): boolean {
    const { container, formatKnown } = this.#audio;
    return this.#ledger.resumableNow({ resumable: this.#resumable, container, formatKnown });
  }

  /**
   * Connects the client's socket: the first one, or a resumed client's. A resume that arrives
   * while the old socket still looks open (the client noticed the drop before the server did)
   * takes over: the old socket is closed and everything it still delivers is ignored. Call
   * resumeRefusal() first.
   */
  attach(socket: WebSocket, resume: ResumeRequest | null): void {
    this.#link.attach(socket);
    this.#timers.attached();

    this.#ledger.attached(resume);
    if (resume !== null) {
      this.log.info("session resumed", {
        resumeOffset: resume.resumeOffset,
        audioBytes: this.#ledger.bytesAccepted,
        finalsReceived: resume.finalsReceived,
        finals: this.#ledger.finals,
      });
    }
    if (this.#resumable) {
      this.#out.send({
        type: "EarshotSession",
        session_id: this.config.sessionId,
        resumed: resume !== null,
        audio_bytes: this.#ledger.bytesAccepted,
        finals: this.#ledger.finals,
        resume_window_ms: this.config.resumeWindowMs,
      });
    }
    // Exactly the finals the client lacks, as first sent, before anything new.
    if (resume !== null) this.#out.replayFinals(resume.finalsReceived);
  }

  /** Why `resume` cannot attach now, or null when it can. */
  resumeRefusal(resume: ResumeRequest): ResumeRefusal | null {
    return this.#ledger.refusal(resume, {
      ending: this.#end.ending,
      resumable: this.#resumable,
      container: this.#audio.container,
      formatKnown: this.#audio.formatKnown,
    });
  }

  /** For the account's usage: audio received, and audio covered by final transcripts. */
  usage(): SessionUsage {
    return {
      audioSecondsReceived: this.#audio.secondsReceived,
      audioSecondsTranscribed: this.#out.secondsTranscribed,
      startedAt: this.config.createdAt,
    };
  }

  // --- client → server -------------------------------------------------------------------------

  #onMessage(data: string | ArrayBuffer): void {
    if (this.#end.ending) return;
    this.#timers.received();
    const inbound = readInbound(typeof data === "string" ? data : new Uint8Array(data));
    switch (inbound.kind) {
      case "audio":
        this.#onAudio(inbound.bytes);
        return;
      case "control":
        this.#onControl(inbound.type);
        return;
      case "end-of-stream":
        this.#ends({ kind: "graceful", close: CLOSE.NORMAL });
        return;
      case "refused":
        this.#out.error(inbound.code, inbound.description, inbound.clientMessage);
        return;
      case "fatal":
        this.#ends({ kind: "abort", close: inbound.close });
        return;
    }
  }

  #onControl(type: ClientControlType): void {
    switch (type) {
      case "KeepAlive":
        return; // receiving it already reset the idle clock
      case "Finalize":
        if (this.#floodedWith(0)) return;
        void this.#queue.push("finalize", () => this.#pipeline.finalize("finalize"));
        return;
      case "CloseStream":
        this.#ends({ kind: "graceful", close: CLOSE.NORMAL });
        return;
    }
  }

  #onAudio(frame: Uint8Array): void {
    // A resumed client re-sends audio the session may already hold.
    const bytes = this.#ledger.fresh(frame);
    if (bytes.byteLength === 0) return;
    if (this.#floodedWith(bytes.byteLength)) return;
    const receivedAtMs = Date.now();
    void this.#queue.push(
      "audio",
      async () => {
        const samples = await this.#audio.append(bytes);
        await this.#pipeline.push(samples, receivedAtMs);
      },
      bytes.byteLength,
    );
    const ack = this.#ledger.accept(bytes.byteLength);
    if (ack === null) return;
    // A container's bytes cannot be resumed from an offset: an ack would let the client drop
    // them. While the format is still being sniffed, the ack waits for this frame to be read.
    const sendAck = () => {
      if (this.#resumableNow) this.#out.send({ type: "EarshotAck", audio_bytes: ack });
    };
    if (this.#audio.formatKnown) sendAck();
    else void this.#queue.push("ack", async () => sendAck(), 0);
  }

  /**
   * Whether queuing one more task with `audioBytes` of audio would pass a queue cap; if so the
   * session is closed 1008 BUF-0000 naming the cap (what was accepted is still processed).
   */
  #floodedWith(audioBytes: number): boolean {
    const detail = floodDetail(this.#queue, audioBytes, this.#maxQueuedBytes);
    if (detail === null) return false;
    this.#ends({ kind: "abort", close: closeWith(CLOSE.FLOOD, detail) });
    return true;
  }

  #onClose(code: number, reason: string): void {
    this.log.info("client closed", { code, reason });
    // A client's own 1000 (done) or 1001 (going away: a page closed or navigated; a reloaded
    // page cannot resume) ends the session; anything else may be a network failure.
    const deliberate = code === CLOSE.NORMAL.code || code === CLOSE.GOING_AWAY.code;
    if (this.#resumableNow && !deliberate) {
      // Completes the closing handshake, echoing the client's code as RFC 6455 §5.5.1 suggests
      // (a browser reports the code it receives back, and must not read it as a normal end).
      this.#link.close({ code: isSendableCloseCode(code) ? code : CLOSE.NORMAL.code, reason: "" });
      this.#detach(code, reason);
    } else {
      this.#ends({ kind: "gone", code, reason });
    }
  }

  /** The connection is gone but the client may come back: wait RESUME_WINDOW_MS for it. */
  #detach(code: number, reason: string): void {
    if (this.#end.ending || !this.#link.attached) return;
    this.#link.detach();
    const windowMs = this.config.resumeWindowMs;
    this.log.info("waiting for the client to resume", { code, reason, windowMs });
    this.#timers.awaitResume(() =>
      this.#ends({
        kind: "gone",
        code,
        reason: `not resumed within ${windowMs / 1000} s (${reason})`,
      }),
    );
  }

  // --- lifecycle -------------------------------------------------------------------------------

  /** Nothing received for the idle timeout. */
  #idle(): void {
    const close = closeWith(
      CLOSE.NET_IDLE,
      `nothing received for ${this.config.idleTimeoutMs / 1000} s`,
    );
    if (this.#resumableNow) {
      // Silence may be a connection that died without a close: the client may come back.
      this.#link.close(close);
      this.#detach(close.code, close.reason);
    } else {
      this.#ends({ kind: "abort", close });
    }
  }

  /** A task threw, or a final could not be produced: the session cannot go on. */
  #failed(error: unknown, label: string): void {
    const { close, undecodable } = judgeFailure(error, label, this.log);
    if (undecodable !== undefined) this.#out.error("UNSUPPORTED_AUDIO", undecodable);
    this.#end.failed(close);
    this.#ends({ kind: "abort", close });
  }

  #ends(mode: EndMode): void {
    if (this.#end.ending) return;
    this.#timers.stop();
    this.#end.begin(mode);
  }
}
