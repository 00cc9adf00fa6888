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
 */

import { AudioFormatError } from "../audio/audio-format";
import { AudioInput } from "../audio/audio-input";
import type { SessionUsage } from "../limits/lease";
import { CLOSE, type CloseSpec, closeWith, isSendableCloseCode } from "../protocol/close-codes";
import { LANGUAGE_DETECT } from "../protocol/languages";
import {
  buildError,
  buildMetadata,
  buildResults,
  buildSpeechStarted,
  buildUtteranceEnd,
  type ClientControlType,
  type ErrorCode,
  encodeServerMessage,
  type ServerMessage,
} from "../protocol/messages";
import type { ListenOptions } from "../protocol/options";
import type { ResumeRequest } from "../protocol/resume-params";
import { runBackground } from "../runtime/background";
import type { Logger } from "../runtime/log";
import { FinalsBacklogError } from "../stt/inference-scheduler";
import { withNumerals } from "../stt/numerals";
import {
  TRANSCRIBER_SAMPLE_RATE,
  type Transcriber,
  type TranscriberSession,
  type Transcript,
} from "../stt/transcriber";
import { DEFAULT_VAD_OPTIONS, type VadOptions } from "../vad/vad-machine";
import {
  ACK_EVERY_AUDIO_SECONDS,
  MAX_FRAME_BYTES,
  MAX_QUEUED_AUDIO_SECONDS,
  MAX_QUEUED_TASKS,
} from "./caps";
import { FinalLatencies, type LatencySummary } from "./final-latency";
import { readInbound } from "./inbound";
import { ResumeLedger, type ResumeRefusal } from "./resume-ledger";
import { SerialQueue } from "./serial-queue";
import { SocketLink } from "./socket-link";
import { SpeechPipeline } from "./speech-pipeline";
import type { TranscriptStore } from "./transcript-store";

export interface LiveSessionConfig {
  sessionId: string;
  accountId: string;
  /** The API key the session was opened with (operator-end.ts ends a revoked key's sessions). */
  keyId: string;
  options: ListenOptions;
  createdAt: number;
  idleTimeoutMs: number;
  /** How long a resumable session waits for its client after a drop (RESUME_WINDOW_MS). */
  resumeWindowMs: number;
  maxSessionSeconds: number;
  /** Utterances this long are cut at their next quiet frame (MAX_UTTERANCE_SOFT_SECONDS). */
  softCutSeconds: number;
}

/** How a session ended, for its hooks. */
export interface SessionEnding {
  closeCode: number;
  closeReason: string;
  /** Finals sent (or kept for a resume), empty ones included. */
  finals: number;
  /** End of speech → final over the session's utterances (final-latency.ts). */
  finalLatency: LatencySummary;
}

export interface LiveSessionHooks {
  /** Called once, after the session has ended and its last final is stored. */
  ended(ending: SessionEnding): void;
}

type EndMode =
  /** CloseStream / empty frame / max length: flush, send finals and Metadata, then close. */
  | { kind: "graceful"; close: CloseSpec }
  /** The session cannot go on: close at once; queued audio is still transcribed and stored. */
  | { kind: "abort"; close: CloseSpec }
  /** The client went away: nothing to send; queued audio is still transcribed and stored. */
  | { kind: "gone"; code: number; reason: string };

type Store = Pick<TranscriptStore, "addFinal" | "end" | "addDelivery" | "deliveriesFrom">;

/**
 * How long ending a session may take before its slot is released regardless: 60 s, far beyond
 * transcribing the last utterance (≤ 15 s of audio, a few seconds of compute behind others').
 */
const FINISH_DEADLINE_MS = 60_000;

export function vadOptionsFor(options: ListenOptions): VadOptions {
  return {
    ...DEFAULT_VAD_OPTIONS,
    minSilenceMs: options.endpointingMs,
    utteranceEndMs: options.utteranceEndMs,
  };
}

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
  /** How the session ended (its close), once it has. */
  #endedWith: CloseSpec | null = null;
  #lastReceivedAt = Date.now();
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #lifetimeTimer: ReturnType<typeof setTimeout> | undefined;
  #resumeTimer: ReturnType<typeof setTimeout> | undefined;
  /** The audio stream's offsets and the finals' numbers, across resumed sockets. */
  readonly #ledger: ResumeLedger;
  #ending = false;
  #endedReported = false;
  /** Set when the session failed; a graceful ending then closes with this instead of Metadata. */
  #failure: CloseSpec | null = null;
  #secondsTranscribed = 0;

  constructor(
    private readonly config: LiveSessionConfig,
    private readonly model: Transcriber,
    private readonly store: Store,
    private readonly log: Logger,
    private readonly hooks: LiveSessionHooks,
  ) {
    const { options } = config;
    this.#link = new SocketLink(log, {
      message: (data) => this.#onMessage(data),
      closed: (code, reason) => this.#onClose(code, reason),
    });
    this.#queue = new SerialQueue((error, label) => this.#failed(error, label));
    this.#audio = new AudioInput(options.encoding, options.sampleRate, options.detectContainer);
    // 20 s × rate × bytes per sample: e.g. 20 × 16 000 × 2 = 640 000 bytes of linear16 at 16 kHz.
    // …but never below two of the largest frames: at 8 kHz µ-law, 20 s is only 160 000 bytes, less
    // than one legal 256-KiB frame, which must not read as a flood.
    this.#maxQueuedBytes = Math.max(
      MAX_QUEUED_AUDIO_SECONDS * this.#audio.bytesPerSecond,
      2 * MAX_FRAME_BYTES,
    );
    this.#ledger = new ResumeLedger({
      resumable: options.resumable,
      ackEveryBytes: ACK_EVERY_AUDIO_SECONDS * this.#audio.bytesPerSecond,
    });
    // Deepgram applies numerals with smart_format too. English only: the rule reads English
    // number words ("multi" mostly hears English, and other languages' words never match).
    const numerals =
      (options.numerals || options.smartFormat) &&
      (options.language === "en" || options.language === LANGUAGE_DETECT);
    this.#transcriber = model.open({
      sessionId: config.sessionId,
      accountId: config.accountId,
      language: options.language,
      interimResults: options.interimResults,
      keyterms: [...options.keyterms, ...options.keywords],
      log,
      emit: (transcript) => this.#emit(numerals ? withNumerals(transcript) : transcript),
    });
    this.#pipeline = new SpeechPipeline(
      vadOptionsFor(options),
      this.#transcriber,
      {
        speechStarted: (seconds) => {
          if (options.vadEvents) this.#send(buildSpeechStarted(seconds));
        },
        utteranceEnded: (lastSpeechEnd) => {
          if (options.utteranceEndMs !== null) this.#send(buildUtteranceEnd(lastSpeechEnd));
        },
        failed: (error) => this.#failed(error, "final"),
        speechEnded: (sample, receivedAtMs) => this.#latencies.speechEnded(sample, receivedAtMs),
      },
      config.softCutSeconds,
    );

    this.#lifetimeTimer = setTimeout(
      () => this.#end({ kind: "graceful", close: CLOSE.MAX_DURATION }),
      config.maxSessionSeconds * 1000,
    );
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
    this.#end({ kind: "graceful", close: closeWith(CLOSE.ENDED_BY_OPERATOR, reason) });
  }

  get bytesReceived(): number {
    return this.#audio.bytesReceived;
  }

  get #resumable(): boolean {
    return this.config.options.resumable;
  }

  /**
   * Connects the client's socket: the first one, or a resumed client's. A resume that arrives
   * while the old socket still looks open (the client noticed the drop before the server did)
   * takes over: the old socket is closed and everything it still delivers is ignored. Call
   * resumeRefusal() first.
   */
  attach(socket: WebSocket, resume: ResumeRequest | null): void {
    this.#link.attach(socket);
    clearTimeout(this.#resumeTimer);
    this.#lastReceivedAt = Date.now();
    clearTimeout(this.#idleTimer);
    this.#armIdleTimer(this.config.idleTimeoutMs);

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
      this.#send({
        type: "EarshotSession",
        session_id: this.config.sessionId,
        resumed: resume !== null,
        audio_bytes: this.#ledger.bytesAccepted,
        finals: this.#ledger.finals,
        resume_window_ms: this.config.resumeWindowMs,
      });
    }
    if (resume !== null) {
      // Exactly the finals the client lacks, as first sent, before anything new.
      for (const message of this.store.deliveriesFrom(resume.finalsReceived)) {
        this.#link.send(message);
      }
    }
  }

  /** Why `resume` cannot attach now, or null when it can. */
  resumeRefusal(resume: ResumeRequest): ResumeRefusal | null {
    return this.#ledger.refusal(resume, {
      ending: this.#ending,
      resumable: this.#resumable,
      container: this.#audio.container,
      formatKnown: this.#audio.formatKnown,
    });
  }

  /** For the account's usage: audio received, and audio covered by final transcripts. */
  usage(): SessionUsage {
    return {
      audioSecondsReceived: this.#audio.secondsReceived,
      audioSecondsTranscribed: this.#secondsTranscribed,
      startedAt: this.config.createdAt,
    };
  }

  // --- client → server -------------------------------------------------------------------------

  #onMessage(data: string | ArrayBuffer): void {
    if (this.#ending) return;
    this.#lastReceivedAt = Date.now();
    const inbound = readInbound(typeof data === "string" ? data : new Uint8Array(data));
    switch (inbound.kind) {
      case "audio":
        this.#onAudio(inbound.bytes);
        return;
      case "control":
        this.#onControl(inbound.type);
        return;
      case "end-of-stream":
        this.#end({ kind: "graceful", close: CLOSE.NORMAL });
        return;
      case "refused":
        this.#sendError(inbound.code, inbound.description, inbound.clientMessage);
        return;
      case "fatal":
        this.#end({ kind: "abort", close: inbound.close });
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
        this.#end({ kind: "graceful", close: CLOSE.NORMAL });
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
    if (ack !== null) this.#send({ type: "EarshotAck", audio_bytes: ack });
  }

  /**
   * Whether queuing one more task with `audioBytes` of audio would pass a queue cap; if so the
   * session is closed 1008 BUF-0000 naming the cap (what was accepted is still processed).
   */
  #floodedWith(audioBytes: number): boolean {
    let detail: string;
    if (this.#queue.pendingAudioBytes + audioBytes > this.#maxQueuedBytes) {
      detail = `more than ${MAX_QUEUED_AUDIO_SECONDS} s of audio queued; send at most real time`;
    } else if (this.#queue.pendingTasks >= MAX_QUEUED_TASKS) {
      detail = `more than ${MAX_QUEUED_TASKS} messages queued; send at most real time, 20-250 ms a frame`;
    } else {
      return false;
    }
    this.#end({ kind: "abort", close: closeWith(CLOSE.FLOOD, detail) });
    return true;
  }

  #onClose(code: number, reason: string): void {
    this.log.info("client closed", { code, reason });
    // A client's own 1000 (done) or 1001 (going away: a page closed or navigated; a reloaded
    // page cannot resume) ends the session; anything else may be a network failure.
    const deliberate = code === CLOSE.NORMAL.code || code === CLOSE.GOING_AWAY.code;
    if (this.#resumable && !deliberate) {
      // Completes the closing handshake, echoing the client's code as RFC 6455 §5.5.1 suggests
      // (a browser reports the code it receives back, and must not read it as a normal end).
      this.#link.close({ code: isSendableCloseCode(code) ? code : CLOSE.NORMAL.code, reason: "" });
      this.#detach(code, reason);
    } else {
      this.#end({ kind: "gone", code, reason });
    }
  }

  /** The connection is gone but the client may come back: wait RESUME_WINDOW_MS for it. */
  #detach(code: number, reason: string): void {
    if (this.#ending || !this.#link.attached) return;
    this.#link.detach();
    clearTimeout(this.#idleTimer);
    const windowMs = this.config.resumeWindowMs;
    this.log.info("waiting for the client to resume", { code, reason, windowMs });
    this.#resumeTimer = setTimeout(
      () =>
        this.#end({
          kind: "gone",
          code,
          reason: `not resumed within ${windowMs / 1000} s (${reason})`,
        }),
      windowMs,
    );
  }

  // --- server → client -------------------------------------------------------------------------

  #emit(transcript: Transcript): void {
    const text = encodeServerMessage(
      buildResults(transcript, {
        requestId: this.config.sessionId,
        model: this.model.model,
      }),
    );
    if (transcript.isFinal) {
      if (transcript.speechFinal || transcript.fromFinalize) {
        // The utterance's own final: time it from its speech's end (max-length cuts are not).
        this.#latencies.finalSent(
          Math.round(transcript.start * TRANSCRIBER_SAMPLE_RATE),
          Math.round(transcript.end * TRANSCRIBER_SAMPLE_RATE),
          Date.now(),
        );
      }
      this.#secondsTranscribed += Math.max(0, transcript.end - transcript.start);
      if (transcript.text !== "") this.store.addFinal(transcript);
      // Kept whether or not a socket is attached: a resuming client gets the ones it lacks.
      const number = this.#ledger.numberFinal();
      if (this.#resumable) this.store.addDelivery(number, text);
    }
    this.#link.send(text);
  }

  #sendError(code: ErrorCode, description: string, clientMessage?: string): void {
    this.log.info("client error", { code, description });
    this.#send(
      buildError({
        code,
        description,
        requestId: this.config.sessionId,
        ...(clientMessage === undefined ? {} : { clientMessage }),
      }),
    );
  }

  #send(message: ServerMessage): void {
    this.#link.send(encodeServerMessage(message));
  }

  // --- lifecycle -------------------------------------------------------------------------------

  #armIdleTimer(delayMs: number): void {
    this.#idleTimer = setTimeout(() => {
      const idleFor = Date.now() - this.#lastReceivedAt;
      if (idleFor >= this.config.idleTimeoutMs) {
        const close = closeWith(
          CLOSE.NET_IDLE,
          `nothing received for ${this.config.idleTimeoutMs / 1000} s`,
        );
        if (this.#resumable) {
          // Silence may be a connection that died without a close: the client may come back.
          this.#link.close(close);
          this.#detach(close.code, close.reason);
        } else {
          this.#end({ kind: "abort", close });
        }
      } else {
        this.#armIdleTimer(this.config.idleTimeoutMs - idleFor);
      }
    }, delayMs);
  }

  /** A task threw, or a final could not be produced: the session cannot go on. */
  #failed(error: unknown, label: string): void {
    let close: CloseSpec;
    if (error instanceof AudioFormatError) {
      // The client's bytes cannot be decoded: say why, as Deepgram's DATA-0000 does.
      this.log.warn("audio cannot be decoded", { error: error.message });
      this.#sendError("UNSUPPORTED_AUDIO", error.message);
      close = closeWith(CLOSE.DATA_ERROR, error.message);
    } else if (error instanceof FinalsBacklogError) {
      // The isolate cannot keep up with this session: say so; reconnecting may land elsewhere.
      this.log.warn("transcription fell behind", { error });
      close = closeWith(CLOSE.TRANSCRIPTION_BEHIND, error.message);
    } else {
      this.log.error("session task failed", { task: label, error });
      close = CLOSE.INTERNAL;
    }
    // Remembered even when the session is already ending (a final failed after CloseStream):
    // the client must not get Metadata and a clean 1000 as if every final had been sent.
    this.#failure ??= close;
    this.#end({ kind: "abort", close });
  }

  #end(mode: EndMode): void {
    if (this.#ending) return;
    this.#ending = true;
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#lifetimeTimer);
    clearTimeout(this.#resumeTimer);

    const closeNow = mode.kind === "abort" ? mode.close : null;
    if (closeNow) this.#link.close(closeNow);
    if (mode.kind === "gone") this.#link.close(CLOSE.NORMAL);

    // If finishing hangs (a transcription that never returns), the slot is released anyway.
    const deadline = setTimeout(() => {
      this.log.error("session did not finish in time; releasing it", {
        deadlineMs: FINISH_DEADLINE_MS,
      });
      this.#link.close(CLOSE.INTERNAL);
      this.#endedWith = CLOSE.INTERNAL;
      this.#reportEnded();
    }, FINISH_DEADLINE_MS);
    runBackground(this.log, "end session", async () => {
      try {
        await this.#finish(mode);
      } finally {
        clearTimeout(deadline);
        this.#audio.close();
        this.#reportEnded();
      }
    });
  }

  #reportEnded(): void {
    if (this.#endedReported) return;
    this.#endedReported = true;
    const close = this.#endedWith ?? CLOSE.INTERNAL;
    this.hooks.ended({
      closeCode: close.code,
      closeReason: close.reason,
      finals: this.#ledger.finals,
      finalLatency: this.#latencies.summary(),
    });
  }

  async #finish(mode: EndMode): Promise<void> {
    // Everything accepted before the end is processed first, in order.
    await this.#queue.push("end", async () => {
      await this.#pipeline.push(this.#audio.finish(), Date.now());
      await this.#pipeline.finalize("close");
    });
    await this.#queue.close();
    const sha256 = await this.#audio.sha256();
    const close =
      this.#failure ??
      (mode.kind === "gone" ? { code: mode.code, reason: mode.reason } : mode.close);
    this.#endedWith = close;
    if (mode.kind === "graceful") {
      // Metadata only when every final was sent; after a failure the close says what went wrong.
      if (this.#failure === null) {
        this.#send(
          buildMetadata({
            requestId: this.config.sessionId,
            sha256,
            created: new Date(this.config.createdAt),
            durationSeconds: this.#audio.secondsReceived,
            channels: 1,
            model: this.model.model,
          }),
        );
      }
      this.#link.close(close);
    }
    this.#transcriber.close();
    this.store.end(this.#audio.bytesReceived, close.code, close.reason, Date.now());
    this.log.info("session ended", {
      code: close.code,
      reason: close.reason,
      bytes: this.#audio.bytesReceived,
      audioSeconds: this.#audio.secondsReceived,
      finalLatency: this.#latencies.summary(),
    });
  }
}
