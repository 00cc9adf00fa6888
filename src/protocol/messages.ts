/**
 * Messages on an open `/v1/listen` socket, both directions, as Deepgram clients expect them.
 *
 * Field names and shapes follow the official JS SDK v5, whose types are generated from Deepgram's
 * API definition (deepgram-js-sdk src/api/resources/listen/resources/v1/types/ListenV1*.ts):
 * Results, Metadata, SpeechStarted, UtteranceEnd and Error from the server; KeepAlive, Finalize,
 * CloseStream (and Configure, which Earshot refuses) from the client.
 */

// ---------------------------------------------------------------------------------------------
// Client → server
// ---------------------------------------------------------------------------------------------

export type ClientControl = { type: "KeepAlive" } | { type: "Finalize" } | { type: "CloseStream" };
export type ClientControlType = ClientControl["type"];

export const CLIENT_CONTROL_TYPES: readonly ClientControlType[] = [
  "KeepAlive",
  "Finalize",
  "CloseStream",
];

/**
 * Error codes Earshot puts in the `code` field of an `Error` message. The first group answers a
 * client text frame that could not be used (the session goes on); the last two report a failure
 * on Earshot's side.
 */
export type ErrorCode =
  | "INVALID_JSON" // text frame is not JSON
  | "NOT_AN_OBJECT" // JSON, but not an object (array, string, null, …)
  | "MISSING_TYPE" // object without a string `type`
  | "UNKNOWN_MESSAGE_TYPE" // `type` is not a Deepgram client message
  | "UNSUPPORTED_MESSAGE_TYPE" // a Deepgram client message Earshot does not implement (Configure)
  | "CONTROL_AS_BINARY" // a control message sent as a binary frame (must be text)
  | "TEXT_TOO_LARGE" // text frame over MAX_TEXT_MESSAGE_BYTES
  | "TRANSCRIPTION_FAILED" // the model failed on a segment; audio keeps flowing
  | "UNSUPPORTED_AUDIO" // the audio bytes cannot be decoded (container, codec); closes DATA-0000
  | "INTERNAL_ERROR"; // anything else on Earshot's side

/**
 * Cap on a client text frame, in UTF-8 bytes. The largest valid one is `{"type":"CloseStream"}`,
 * 22 bytes; 4096 leaves ~180× room for pretty-printing or extra fields a client library might add,
 * while bounding what JSON.parse is asked to do per frame (a control frame is never worth more).
 * Deepgram's `Configure` can carry up to 500 keyterm tokens (a few KB), but Earshot refuses
 * Configure anyway, so nothing legitimate is cut.
 */
export const MAX_TEXT_MESSAGE_BYTES = 4096;

/** How much of an unusable client message is echoed back in `Error.message`. */
const MAX_ECHOED_CHARS = 256;

export type ParsedText =
  | { ok: true; message: ClientControl }
  | { ok: false; code: ErrorCode; message: string };

const utf8 = new TextEncoder();

/** UTF-8 length without encoding when the answer is obvious (every UTF-16 unit is ≥ 1 byte). */
function exceedsUtf8Bytes(text: string, cap: number): boolean {
  if (text.length > cap) return true;
  // A UTF-16 code unit is at most 3 UTF-8 bytes (a surrogate pair: 2 units → 4 bytes).
  if (text.length * 3 <= cap) return false;
  return utf8.encode(text).byteLength > cap;
}

/** Cuts a string to at most `max` UTF-16 units without leaving half a surrogate pair. */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // high surrogate: its pair would be cut off
  return `${text.slice(0, end)}…`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isControlType(type: string): type is ClientControlType {
  return (CLIENT_CONTROL_TYPES as readonly string[]).includes(type);
}

/**
 * Parses a client text frame. Extra fields beside `type` are ignored (clients may add their own).
 * Type names are matched exactly, as Deepgram does.
 */
export function parseClientText(text: string): ParsedText {
  if (exceedsUtf8Bytes(text, MAX_TEXT_MESSAGE_BYTES)) {
    return {
      ok: false,
      code: "TEXT_TOO_LARGE",
      message: `text messages are limited to ${MAX_TEXT_MESSAGE_BYTES} bytes`,
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {
      ok: false,
      code: "INVALID_JSON",
      message: `text message is not JSON (${error instanceof Error ? error.message : String(error)})`,
    };
  }
  if (!isPlainObject(value)) {
    return {
      ok: false,
      code: "NOT_AN_OBJECT",
      message: `text message must be a JSON object such as {"type":"KeepAlive"}`,
    };
  }
  const type = value.type;
  if (typeof type !== "string") {
    return {
      ok: false,
      code: "MISSING_TYPE",
      message: `text message has no string "type"; expected one of ${CLIENT_CONTROL_TYPES.join(", ")}`,
    };
  }
  if (isControlType(type)) return { ok: true, message: { type } };
  const shown = JSON.stringify(truncateText(type, 40));
  if (type === "Configure") {
    return {
      ok: false,
      code: "UNSUPPORTED_MESSAGE_TYPE",
      message: `Configure is not supported by Earshot; expected one of ${CLIENT_CONTROL_TYPES.join(", ")}`,
    };
  }
  return {
    ok: false,
    code: "UNKNOWN_MESSAGE_TYPE",
    message: `unknown message type ${shown}; expected one of ${CLIENT_CONTROL_TYPES.join(", ")}`,
  };
}

/** Bytes looked at by looksLikeControlFrame; anything longer is audio (see MAX_TEXT_MESSAGE_BYTES). */
const CONTROL_SNIFF_MAX_BYTES = 4096;
const OPEN_BRACE = 0x7b;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * True when a binary frame is really a JSON control message (a client bug: Deepgram takes control
 * messages as text frames only, and would otherwise feed the JSON to the decoder as audio).
 * Cheap on audio: one byte test rejects almost every PCM frame, and frames over 4 KiB are never
 * decoded. A PCM frame that happens to start with 0x7B still fails the strict UTF-8 decode or
 * JSON.parse, which here is the expected "no", not an error.
 */
export function looksLikeControlFrame(bytes: Uint8Array): boolean {
  if (bytes.byteLength === 0 || bytes.byteLength > CONTROL_SNIFF_MAX_BYTES) return false;
  let first = 0;
  // JSON whitespace: space, tab, LF, CR.
  while (first < bytes.byteLength) {
    const b = bytes[first];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) break;
    first++;
  }
  if (bytes[first] !== OPEN_BRACE) return false;
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    return false; // not UTF-8 or not JSON: audio, which is what a binary frame should be
  }
  return isPlainObject(value) && typeof value.type === "string";
}

/** Deepgram: an empty binary frame asks the server to close the stream (like CloseStream). */
export function binaryFrameMeansCloseStream(bytes: ArrayBuffer | ArrayBufferView): boolean {
  return bytes.byteLength === 0;
}

// ---------------------------------------------------------------------------------------------
// Server → client
// ---------------------------------------------------------------------------------------------

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

/**
 * Deepgram's live `Error` message (in Deepgram's API reference; SDK v5.13's listen v1 message union
 * has no error type, so SDK users receive it untyped): `variant` is the category
 * ("SchemaError": a client text message could not be parsed; "InvalidConfigureMessage": a
 * Configure was refused), `description` is for humans, `code` is optional detail and `message`
 * echoes the offending client message for SchemaError. Earshot always fills `code` with an
 * ErrorCode, uses variant "ServerError" (its own) for failures on its side and "DataError" (its
 * own, after Deepgram's DATA-0000 close) for audio it cannot decode, and adds
 * `request_id` (ignored by Deepgram clients) so a report can be traced.
 */
export interface ErrorMessage {
  type: "Error";
  variant: "SchemaError" | "InvalidConfigureMessage" | "ServerError" | "DataError";
  description: string;
  code: ErrorCode;
  request_id: string;
  message?: string;
}

/**
 * Earshot extension, only on resumable sessions (README "Resumable sessions"): sent first on every
 * connection, fresh or resumed. `audio_bytes` is what the session holds (the client re-sends from
 * its resume_offset and the server drops the first audio_bytes − resume_offset bytes); `finals`
 * is how many final Results the session has produced.
 */
export interface EarshotSessionMessage {
  type: "EarshotSession";
  session_id: string;
  resumed: boolean;
  audio_bytes: number;
  finals: number;
  resume_window_ms: number;
}

/** Earshot extension, resumable sessions only: the session holds `audio_bytes` bytes of audio. */
export interface EarshotAckMessage {
  type: "EarshotAck";
  audio_bytes: number;
}

export type ServerMessage =
  | ResultsMessage
  | SpeechStartedMessage
  | UtteranceEndMessage
  | MetadataMessage
  | ErrorMessage
  | EarshotSessionMessage
  | EarshotAckMessage;

const ERROR_VARIANT: Record<ErrorCode, ErrorMessage["variant"]> = {
  INVALID_JSON: "SchemaError",
  NOT_AN_OBJECT: "SchemaError",
  MISSING_TYPE: "SchemaError",
  UNKNOWN_MESSAGE_TYPE: "SchemaError",
  CONTROL_AS_BINARY: "SchemaError",
  TEXT_TOO_LARGE: "SchemaError",
  UNSUPPORTED_MESSAGE_TYPE: "InvalidConfigureMessage",
  TRANSCRIPTION_FAILED: "ServerError",
  UNSUPPORTED_AUDIO: "DataError",
  INTERNAL_ERROR: "ServerError",
};

/** Earshot transcribes one mono channel (options.ts refuses others): channel 0 of 1. */
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

export function buildError(input: {
  code: ErrorCode;
  description: string;
  requestId: string;
  /** The client message that caused a SchemaError, echoed (truncated) as Deepgram does. */
  clientMessage?: string;
}): ErrorMessage {
  const error: ErrorMessage = {
    type: "Error",
    variant: ERROR_VARIANT[input.code],
    description: input.description,
    code: input.code,
    request_id: input.requestId,
  };
  if (input.clientMessage !== undefined) {
    error.message = truncateText(input.clientMessage, MAX_ECHOED_CHARS);
  }
  return error;
}

/** The text frame for a server message. */
export function encodeServerMessage(message: ServerMessage): string {
  return JSON.stringify(message);
}
