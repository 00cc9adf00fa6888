/**
 * Everything a session sends its client, and what sending a final also means: the final is timed
 * (end of speech → sent, final-latency.ts), stored with the session's transcript when it has
 * words, numbered, and kept for delivery to a resuming client (resume-ledger.ts numbers it, the
 * store keeps the message exactly as sent). That bookkeeping happens whether or not a socket is
 * attached: a resumable session goes on producing finals while its client is away.
 */

import { buildError, type ErrorCode } from "../protocol/error-message";
import {
  buildResults,
  buildUtteranceEnd,
  encodeServerMessage,
  type ServerMessage,
} from "../protocol/messages";
import type { Logger } from "../runtime/log";
import { type ModelInfo, TRANSCRIBER_SAMPLE_RATE, type Transcript } from "../stt/transcriber";
import type { FinalLatencies } from "./final-latency";
import type { ResumeLedger } from "./resume-ledger";
import type { SocketLink } from "./socket-link";
import type { TranscriptStore } from "./transcript-store";

export interface OutboxParts {
  sessionId: string;
  model: ModelInfo;
  resumable: boolean;
  link: SocketLink;
  ledger: ResumeLedger;
  latencies: FinalLatencies;
  store: Pick<TranscriptStore, "addFinal" | "addDelivery" | "deliveriesFrom">;
  log: Logger;
}

export class Outbox {
  #secondsTranscribed = 0;
  /** End of the last word of the finals sent since the last UtteranceEnd, s (null: no words). */
  #lastWordEnd: number | null = null;

  constructor(private readonly parts: OutboxParts) {}

  /** Audio covered by the finals sent so far, in seconds. */
  get secondsTranscribed(): number {
    return this.#secondsTranscribed;
  }

  /** An interim or final transcript, as Deepgram's Results. */
  transcript(transcript: Transcript): void {
    const { link, ledger, latencies, store } = this.parts;
    const text = encodeServerMessage(
      buildResults(transcript, { requestId: this.parts.sessionId, model: this.parts.model }),
    );
    if (transcript.isFinal) {
      if (transcript.speechFinal || transcript.fromFinalize) {
        // The utterance's own final: time it from its speech's end (max-length cuts are not).
        latencies.finalSent(
          Math.round(transcript.start * TRANSCRIBER_SAMPLE_RATE),
          Math.round(transcript.end * TRANSCRIBER_SAMPLE_RATE),
          Date.now(),
        );
      }
      this.#secondsTranscribed += Math.max(0, transcript.end - transcript.start);
      const lastWord = transcript.words.at(-1);
      if (lastWord !== undefined)
        this.#lastWordEnd = Math.max(this.#lastWordEnd ?? 0, lastWord.end);
      if (transcript.text !== "") store.addFinal(transcript);
      // Kept whether or not a socket is attached: a resuming client gets the ones it lacks.
      const number = ledger.numberFinal();
      if (this.parts.resumable) store.addDelivery(number, text);
    }
    link.send(text);
  }

  /** A resumed client's missing finals: from number `from` on, exactly as first sent. */
  replayFinals(from: number): void {
    for (const message of this.parts.store.deliveriesFrom(from)) this.parts.link.send(message);
  }

  /**
   * UtteranceEnd, once the VAD heard utterance_end_ms of silence and the finals of the speech
   * before it were sent: Deepgram's marks a gap "after the last finalized word", so it carries
   * that word's end, and it is not sent when no final since the last one had words (noise that
   * Whisper heard nothing in ends no utterance, and a client closing its turn on it would get an
   * empty turn).
   */
  utteranceEnd(): void {
    if (this.#lastWordEnd === null) return;
    this.send(buildUtteranceEnd(this.#lastWordEnd));
    this.#lastWordEnd = null;
  }

  /** Deepgram's Error message; the session goes on. */
  error(code: ErrorCode, description: string, clientMessage?: string): void {
    this.parts.log.info("client error", { code, description });
    this.send(
      buildError({
        code,
        description,
        requestId: this.parts.sessionId,
        ...(clientMessage === undefined ? {} : { clientMessage }),
      }),
    );
  }

  send(message: ServerMessage): void {
    this.parts.link.send(encodeServerMessage(message));
  }
}
