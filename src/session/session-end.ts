/**
 * How a session ends, once (and how a failure it cannot go on from closes it): what it still owes its client and its store, in order, and a deadline
 * that releases the session's slot even if that work hangs.
 *
 * 1. The mode decides what the client sees at once: an abort closes the socket now (queued audio
 *    is still transcribed and stored); a client that went away gets nothing; a graceful end keeps
 *    the socket open for the last finals.
 * 2. Everything accepted before the end is processed, in order: the audio input's tail, then the
 *    last utterance's final.
 * 3. A graceful end sends Metadata (only if nothing failed: after a failure the close says what
 *    went wrong) and closes; then the transcriber closes, the store records the end, and the
 *    session's last log line says how it ended.
 * 4. `ended` is called exactly once, with the close the session ended with, whether the work
 *    finished or FINISH_DEADLINE_MS passed first.
 */

import { AudioFloodError, AudioFormatError } from "../audio/audio-format";
import type { AudioInput } from "../audio/audio-input";
import { CLOSE, type CloseSpec, closeWith } from "../protocol/close-codes";
import { buildMetadata, encodeServerMessage } from "../protocol/messages";
import { runBackground } from "../runtime/background";
import type { Logger } from "../runtime/log";
import { FinalsBacklogError } from "../stt/inference-scheduler";
import type { ModelInfo, TranscriberSession } from "../stt/transcriber";
import type { LatencySummary } from "./final-latency";
import type { SerialQueue } from "./serial-queue";
import type { SocketLink } from "./socket-link";
import type { SpeechPipeline } from "./speech-pipeline";
import type { TranscriptStore } from "./transcript-store";

export type EndMode =
  /** CloseStream / empty frame / max length: flush, send finals and Metadata, then close. */
  | { kind: "graceful"; close: CloseSpec }
  /** The session cannot go on: close at once; queued audio is still transcribed and stored. */
  | { kind: "abort"; close: CloseSpec }
  /** The client went away: nothing to send; queued audio is still transcribed and stored. */
  | { kind: "gone"; code: number; reason: string };

/**
 * How long ending a session may take before its slot is released regardless: 60 s, far beyond
 * transcribing the last utterance (≤ 15 s of audio, a few seconds of compute behind others').
 */
export const FINISH_DEADLINE_MS = 60_000;

/** What ending needs of the session. */
export interface EndingParts {
  sessionId: string;
  createdAt: number;
  model: ModelInfo;
  link: SocketLink;
  queue: SerialQueue;
  audio: AudioInput;
  pipeline: SpeechPipeline;
  transcriber: TranscriberSession;
  store: Pick<TranscriptStore, "end">;
  log: Logger;
  /** End of speech → final over the session's utterances, for the last log line. */
  finalLatency(): LatencySummary;
  /** Called once, after the end: the close the session ended with. */
  ended(close: CloseSpec): void;
}

/** How a failed session closes, and what its client is told first. */
export interface Failure {
  close: CloseSpec;
  /** The audio cannot be decoded: this is said in an Error (UNSUPPORTED_AUDIO) before the close. */
  undecodable?: string;
}

/** What a task's error (`label`: which task) means for the session; logged here, once. */
export function judgeFailure(error: unknown, label: string, log: Logger): Failure {
  if (error instanceof AudioFormatError) {
    // The client's bytes cannot be decoded: say why, as Deepgram's DATA-0000 does.
    log.warn("audio cannot be decoded", { error: error.message });
    return { close: closeWith(CLOSE.DATA_ERROR, error.message), undecodable: error.message };
  }
  if (error instanceof AudioFloodError) {
    // More audio at once than a session queues: closed as the queue caps close (caps.ts).
    log.warn("audio floods the session", { error: error.message });
    return { close: closeWith(CLOSE.FLOOD, error.message) };
  }
  if (error instanceof FinalsBacklogError) {
    // The isolate cannot keep up with this session: say so; reconnecting may land elsewhere.
    log.warn("transcription fell behind", { error });
    return { close: closeWith(CLOSE.TRANSCRIPTION_BEHIND, error.message) };
  }
  log.error("session task failed", { task: label, error });
  return { close: CLOSE.INTERNAL };
}

export class SessionEnd {
  #ending = false;
  #reported = false;
  #recorded = false;
  /** Set when the session failed; a graceful ending then closes with this instead of Metadata. */
  #failure: CloseSpec | null = null;
  /** How the session ended (its close), once it has. */
  #endedWith: CloseSpec | null = null;

  constructor(private readonly parts: EndingParts) {}

  /** The end has begun: no new work is accepted. */
  get ending(): boolean {
    return this.#ending;
  }

  /**
   * The session failed with `close`. Remembered even when the session is already ending (a final
   * failed after CloseStream): the client must not get Metadata and a clean 1000 as if every
   * final had been sent.
   */
  failed(close: CloseSpec): void {
    this.#failure ??= close;
  }

  /** Ends the session (the first call only; later ones are ignored). */
  begin(mode: EndMode): void {
    if (this.#ending) return;
    this.#ending = true;
    const { link, log } = this.parts;
    if (mode.kind === "abort") link.close(mode.close);
    if (mode.kind === "gone") link.close(CLOSE.NORMAL);

    // If finishing hangs (a transcription that never returns), the slot is released anyway.
    const deadline = setTimeout(() => {
      log.error("session did not finish in time; releasing it", {
        deadlineMs: FINISH_DEADLINE_MS,
      });
      link.close(CLOSE.INTERNAL);
      this.#endedWith = CLOSE.INTERNAL;
      // Recorded now: a resume must find an ended session, not one whose object was reset.
      this.#recordEnd(CLOSE.INTERNAL);
      this.#report();
    }, FINISH_DEADLINE_MS);
    runBackground(log, "end session", async () => {
      try {
        await this.#finish(mode);
      } finally {
        clearTimeout(deadline);
        this.parts.audio.close();
        this.#report();
      }
    });
  }

  /** The store's record of how the session ended: the first one stands (the deadline's, if it came). */
  #recordEnd(close: CloseSpec): void {
    if (this.#recorded) return;
    this.#recorded = true;
    this.parts.store.end(this.parts.audio.bytesReceived, close.code, close.reason, Date.now());
  }

  #report(): void {
    if (this.#reported) return;
    this.#reported = true;
    this.parts.ended(this.#endedWith ?? CLOSE.INTERNAL);
  }

  async #finish(mode: EndMode): Promise<void> {
    const { queue, pipeline, audio, link } = this.parts;
    // Everything accepted before the end is processed first, in order.
    await queue.push("end", async () => {
      await pipeline.push(audio.finish(), Date.now());
      await pipeline.finalize("close");
    });
    await queue.close();
    const sha256 = await audio.sha256();
    const close =
      this.#failure ??
      (mode.kind === "gone" ? { code: mode.code, reason: mode.reason } : mode.close);
    this.#endedWith = close;
    if (mode.kind === "graceful") {
      if (this.#failure === null) {
        link.send(
          encodeServerMessage(
            buildMetadata({
              requestId: this.parts.sessionId,
              sha256,
              created: new Date(this.parts.createdAt),
              durationSeconds: audio.secondsReceived,
              channels: 1,
              model: this.parts.model,
            }),
          ),
        );
      }
      link.close(close);
    }
    this.parts.transcriber.close();
    this.#recordEnd(close);
    this.parts.log.info("session ended", {
      code: close.code,
      reason: close.reason,
      bytes: audio.bytesReceived,
      audioSeconds: audio.secondsReceived,
      finalLatency: this.parts.finalLatency(),
    });
  }
}
