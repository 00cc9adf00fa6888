/**
 * Client → server on an open `/v1/listen` socket, as Deepgram clients send it: the control
 * messages KeepAlive, Finalize and CloseStream (and Configure, which Earshot refuses), as text
 * frames; audio as binary frames, an empty one meaning CloseStream. Names follow the official JS
 * SDK v5, whose types are generated from Deepgram's API definition (deepgram-js-sdk
 * src/api/resources/listen/resources/v1/types/ListenV1*.ts). What an unusable message earns is
 * an `Error` (error-message.ts).
 */

import { type ErrorCode, truncateText } from "./error-message";

export type ClientControl = { type: "KeepAlive" } | { type: "Finalize" } | { type: "CloseStream" };
export type ClientControlType = ClientControl["type"];

export const CLIENT_CONTROL_TYPES: readonly ClientControlType[] = [
  "KeepAlive",
  "Finalize",
  "CloseStream",
];

/**
 * Cap on a client text frame, in UTF-8 bytes. The largest valid one is `{"type":"CloseStream"}`,
 * 22 bytes; 4096 leaves ~180× room for pretty-printing or extra fields a client library might add,
 * while bounding what JSON.parse is asked to do per frame (a control frame is never worth more).
 * Deepgram's `Configure` can carry up to 500 keyterm tokens (a few KB), but Earshot refuses
 * Configure anyway, so nothing legitimate is cut.
 */
export const MAX_TEXT_MESSAGE_BYTES = 4096;

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
