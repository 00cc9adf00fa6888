/**
 * What one client message asks of a session, decided before the session acts on it: a pure
 * reading of the frame (no socket, no session state), so each rule is tested on its own
 * (test/inbound.test.ts) and the session only carries out the answer.
 *
 * - Text is a control message (KeepAlive, Finalize, CloseStream) or an `Error` to send back; the
 *   session goes on either way (protocol/client-messages.ts parses it, capped at MAX_TEXT_MESSAGE_BYTES).
 * - Binary is audio, except: an empty frame closes the stream (Deepgram's convention); a frame
 *   over MAX_FRAME_BYTES ends the session 1009; a JSON control message sent as a binary frame
 *   gets an `Error` and is not treated as audio.
 */

import {
  type ClientControlType,
  looksLikeControlFrame,
  MAX_TEXT_MESSAGE_BYTES,
  parseClientText,
} from "../protocol/client-messages";
import { CLOSE, type CloseSpec, closeWith } from "../protocol/close-codes";
import type { ErrorCode } from "../protocol/error-message";
import { MAX_FRAME_BYTES } from "./caps";

export type Inbound =
  | { kind: "control"; type: ClientControlType }
  | { kind: "audio"; bytes: Uint8Array }
  /** An empty binary frame: the client's end of stream, as CloseStream. */
  | { kind: "end-of-stream" }
  /** A message the session answers with an `Error` and otherwise ignores. */
  | { kind: "refused"; code: ErrorCode; description: string; clientMessage?: string }
  /** A message the session cannot take: it ends, closing with `close`. */
  | { kind: "fatal"; close: CloseSpec };

export function readInbound(data: string | Uint8Array): Inbound {
  return typeof data === "string" ? readText(data) : readBinary(data);
}

function readText(text: string): Inbound {
  // UTF-16 length × 3 bounds the UTF-8 size; only measure exactly when it could matter.
  if (text.length * 3 > MAX_TEXT_MESSAGE_BYTES) {
    const bytes = new TextEncoder().encode(text).byteLength;
    if (bytes > MAX_TEXT_MESSAGE_BYTES) {
      return {
        kind: "refused",
        code: "TEXT_TOO_LARGE",
        description: `text message of ${bytes} bytes exceeds ${MAX_TEXT_MESSAGE_BYTES}; control messages are small JSON objects`,
      };
    }
  }
  const parsed = parseClientText(text);
  if (!parsed.ok) {
    return { kind: "refused", code: parsed.code, description: parsed.message, clientMessage: text };
  }
  return { kind: "control", type: parsed.message.type };
}

function readBinary(frame: Uint8Array): Inbound {
  if (frame.byteLength === 0) return { kind: "end-of-stream" };
  if (frame.byteLength > MAX_FRAME_BYTES) {
    return {
      kind: "fatal",
      close: closeWith(
        CLOSE.MESSAGE_TOO_BIG,
        `frame of ${frame.byteLength} bytes exceeds ${MAX_FRAME_BYTES}; send 20-250 ms per frame`,
      ),
    };
  }
  if (looksLikeControlFrame(frame)) {
    return {
      kind: "refused",
      code: "CONTROL_AS_BINARY",
      description:
        "a JSON control message arrived as a binary frame; send it as a text frame (it was not treated as audio)",
    };
  }
  return { kind: "audio", bytes: frame };
}
