/**
 * Server → client on an open `/v1/listen` socket, as Deepgram clients expect it: Results,
 * Metadata, SpeechStarted and UtteranceEnd, and the union of everything the server sends.
 *
 * Field names and shapes follow the official JS SDK v5, whose types are generated from Deepgram's
 * API definition (deepgram-js-sdk src/api/resources/listen/resources/v1/types/ListenV1*.ts).
 * Deepgram's Error message is error-message.ts, the client's messages client-messages.ts, and
 * Earshot's own extension messages earshot-messages.ts.
 */

import type { EarshotAckMessage, EarshotSessionMessage } from "./earshot-messages";
import type { ErrorMessage } from "./error-message";

/** The model that produced a transcript, as Deepgram reports it. */
export interface ModelInfo {
  uuid: string;
  name: string;
  version: string;
  arch: string;
}

/** One recognised word; times in seconds since the session's first audio byte. */
export interface Word {
  /** Deepgram's `word`: lowercase, no punctuation. See plainWord(). */
  word: string;
  start: number;
  end: number;
  confidence: number;
  /** As written (cased, punctuated); defaults to `word`. */
  punctuatedWord?: string;
}

/** What the transcriber hands the protocol: one Results' worth, times in seconds. */
export interface TranscriptLike {
  start: number;
  end: number;
  text: string;
  confidence: number;
  words: Word[];
  isFinal: boolean;
  speechFinal: boolean;
  fromFinalize: boolean;
}

export interface ResultsWord {
  word: string;
  start: number;
  end: number;
  confidence: number;
  punctuated_word: string;
}

export interface ResultsMessage {
  type: "Results";
  /** [channel index, channel count]. */
  channel_index: [number, number];
  duration: number;
  start: number;
  is_final: boolean;
  speech_final: boolean;
  from_finalize: boolean;
  channel: { alternatives: [{ transcript: string; confidence: number; words: ResultsWord[] }] };
  metadata: {
    request_id: string;
    model_info: { name: string; version: string; arch: string };
    model_uuid: string;
  };
}

export interface SpeechStartedMessage {
  type: "SpeechStarted";
  channel: [number, number];
  /** Seconds since the session's first audio byte. */
  timestamp: number;
}

export interface UtteranceEndMessage {
  type: "UtteranceEnd";
  channel: [number, number];
  /** End of the last final word, seconds. */
  last_word_end: number;
}

export interface MetadataMessage {
  type: "Metadata";
  /** Deepgram sends the literal "deprecated" here. */
  transaction_key: "deprecated";
  request_id: string;
  /** Hex SHA-256 of all audio bytes received. */
  sha256: string;
  /** ISO 8601 time the session started. */
  created: string;
  /** Seconds of audio received. */
  duration: number;
  channels: number;
  models: string[];
  model_info: Record<string, { name: string; version: string; arch: string }>;
}

export type ServerMessage =
  | ResultsMessage
  | SpeechStartedMessage
  | UtteranceEndMessage
  | MetadataMessage
  | ErrorMessage
  | EarshotSessionMessage
  | EarshotAckMessage;

/** Earshot transcribes one mono channel (parseChannels in option-values.ts refuses others): channel 0 of 1. */
const MONO: [number, number] = [0, 1];

/** A finite number or 0: JSON has no NaN/Infinity (JSON.stringify would write null). */
function finite(n: number): number {
  return Number.isFinite(n) ? n : 0;
}

/** Seconds to the millisecond, never negative: what Deepgram's own payloads carry. */
export function roundSeconds(seconds: number): number {
  return Math.max(0, Math.round(finite(seconds) * 1000) / 1000);
}

/** A probability in [0, 1] to 4 decimals. */
export function roundConfidence(p: number): number {
  return Math.min(1, Math.max(0, Math.round(finite(p) * 10_000) / 10_000));
}

/**
 * Deepgram's `word` form of a written word: lowercase, without leading or trailing punctuation
 * ("Hello," → "hello", "don't" stays "don't"). Unicode-aware so non-Latin scripts survive.
 */
export function plainWord(written: string): string {
  return written
    .trim()
    .replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "")
    .toLowerCase();
}

export function buildResults(
  transcript: TranscriptLike,
  context: { requestId: string; model: ModelInfo },
): ResultsMessage {
  const start = roundSeconds(transcript.start);
  const end = Math.max(start, roundSeconds(transcript.end));
  return {
    type: "Results",
    channel_index: [...MONO],
    // Rounded from the rounded ends, so start + duration is exactly the rounded end.
    duration: roundSeconds(end - start),
    start,
    is_final: transcript.isFinal,
    speech_final: transcript.speechFinal,
    from_finalize: transcript.fromFinalize,
    channel: {
      alternatives: [
        {
          transcript: transcript.text.trim(),
          confidence: roundConfidence(transcript.confidence),
          words: transcript.words.map((w) => {
            const wordStart = roundSeconds(w.start);
            return {
              word: w.word,
              start: wordStart,
              end: Math.max(wordStart, roundSeconds(w.end)),
              confidence: roundConfidence(w.confidence),
              punctuated_word: w.punctuatedWord ?? w.word,
            };
          }),
        },
      ],
    },
    metadata: {
      request_id: context.requestId,
      model_info: {
        name: context.model.name,
        version: context.model.version,
        arch: context.model.arch,
      },
      model_uuid: context.model.uuid,
    },
  };
}

export function buildSpeechStarted(timestampSeconds: number): SpeechStartedMessage {
  return { type: "SpeechStarted", channel: [...MONO], timestamp: roundSeconds(timestampSeconds) };
}

export function buildUtteranceEnd(lastWordEndSeconds: number): UtteranceEndMessage {
  return {
    type: "UtteranceEnd",
    channel: [...MONO],
    last_word_end: roundSeconds(lastWordEndSeconds),
  };
}

export function buildMetadata(input: {
  requestId: string;
  sha256: string;
  created: Date;
  durationSeconds: number;
  channels: number;
  model: ModelInfo;
}): MetadataMessage {
  const created = Number.isFinite(input.created.getTime()) ? input.created : new Date(0);
  return {
    type: "Metadata",
    transaction_key: "deprecated",
    request_id: input.requestId,
    sha256: input.sha256,
    created: created.toISOString(),
    duration: roundSeconds(input.durationSeconds),
    channels: Math.max(1, Math.trunc(finite(input.channels))),
    models: [input.model.uuid],
    model_info: {
      [input.model.uuid]: {
        name: input.model.name,
        version: input.model.version,
        arch: input.model.arch,
      },
    },
  };
}

/** The text frame for a server message. */
export function encodeServerMessage(message: ServerMessage): string {
  return JSON.stringify(message);
}
