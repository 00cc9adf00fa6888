/**
 * Everything a session sends its client, and what sending a final also means: the final is timed
 * (end of speech → sent, final-latency.ts), stored with the session's transcript when it has
 * words, numbered, and kept for delivery to a resuming client (resume-ledger.ts numbers it, the
 * store keeps the message exactly as sent). That bookkeeping happens whether or not a socket is
 * attached: a resumable session goes on producing finals while its client is away.
 */

import { buildError, type ErrorCode } from "../protocol/error-message";
import { buildResults, encodeServerMessage, type ServerMessage } from "../protocol/messages";
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
