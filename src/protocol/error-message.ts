/**
 * Deepgram's `Error` message on an open `/v1/listen` socket: the codes Earshot puts in it, the
 * variant each code is sent as, and its builder. Both directions use it: it answers a client
 * message that could not be used (client-messages.ts) and reports failures on Earshot's side.
 */

/**
 * Error codes Earshot puts in the `code` field of an `Error` message. The first group answers a
 * client text frame that could not be used (the session goes on); the last three are the session's
 * own reports: a segment the model failed on, audio that cannot be decoded, anything else.
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

/** How much of an unusable client message is echoed back in `Error.message`. */
const MAX_ECHOED_CHARS = 256;

/** Cuts a string to at most `max` UTF-16 units without leaving half a surrogate pair. */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // high surrogate: its pair would be cut off
  return `${text.slice(0, end)}…`;
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
