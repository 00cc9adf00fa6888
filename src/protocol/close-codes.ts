/**
 * How an Earshot socket ends: named close codes, reasons that fit a close frame, and a pure
 * classifier for the errors workerd throws when a socket is already gone.
 *
 * The official SDK reconnects (up to 30 times) on any close code but 1000 (deepgram-js-sdk v5
 * listen/v1/client/Client.ts: "Defaults to reconnecting on any server close code other than
 * 1000"), so every non-1000 close below is one where a retry can make sense; refusals that a
 * retry cannot fix (bad key, quota) belong to the handshake as HTTP statuses (http-errors.ts).
 */

export interface CloseSpec {
  code: number;
  /** Short, machine-matchable; Deepgram's style is `<AREA>-<4 digits>`. */
  reason: string;
}

export const CLOSE = {
  /** CloseStream handled, Metadata sent; or answering the client's own close. */
  NORMAL: { code: 1000, reason: "" },
  /** The server is going away (deploy, eviction): reconnecting (with resume) is right. */
  GOING_AWAY: { code: 1001, reason: "going away" },
  /**
   * Deepgram's DATA-0000: the payload cannot be decoded as audio of the negotiated encoding
   * (developers.deepgram.com/docs/stt-troubleshooting-websocket-data-and-net-errors).
   */
  DATA_ERROR: { code: 1008, reason: "DATA-0000" },
  /** A frame over its cap (text: MAX_TEXT_MESSAGE_BYTES). 1009 is RFC 6455's "message too big". */
  MESSAGE_TOO_BIG: { code: 1009, reason: "DATA-0001" },
  /**
   * Audio queued beyond the session's cap: the client sends faster than Earshot can transcribe
   * (far faster than real time). 1008 (policy violation) because the sender must slow down. It
   * ends the session, resumable or not (a resume gets 410): a new session takes the audio the
   * client kept. "BUF-0000" is Earshot's code.
   */
  FLOOD: { code: 1008, reason: "BUF-0000" },
  /** Deepgram's NET-0000: no audio arrived within the timeout after the socket opened. */
  NO_AUDIO: { code: 1011, reason: "NET-0000" },
  /** Deepgram's NET-0001: nothing (audio or KeepAlive) received for the idle timeout (10 s). */
  NET_IDLE: { code: 1011, reason: "NET-0001" },
  /**
   * An operator ended the session: its account was disabled, the API key it was opened with was
   * revoked, or an admin ended it (`DELETE /admin/sessions/:id`). Its finals and Metadata are sent
   * first. 1008 (policy): after a disable or a revoke, a reconnect with the same credential is
   * refused 401, which the SDK does not retry (an admin's end of one session leaves the
   * credential valid). "AUTH-0001" is Earshot's code; the reason says which of the three it was.
   */
  ENDED_BY_OPERATOR: { code: 1008, reason: "AUTH-0001" },
  /**
   * The isolate cannot keep up with this session: MAX_PENDING_FINALS_PER_SESSION of its finals
   * are already waiting (stt/inference-scheduler.ts). The waiting finals are sent first; a
   * reconnect may land on a less loaded isolate. "STT-0001" is Earshot's code.
   */
  TRANSCRIPTION_BEHIND: { code: 1011, reason: "STT-0001" },
  /**
   * The session reached the account's (or the service's) longest session: finals and Metadata,
   * then a normal close, so clients do not retry. "MAX-0000" is Earshot's code.
   */
  MAX_DURATION: { code: 1000, reason: "MAX-0000: session reached its maximum length" },
  /** The old socket of a session that a resumed connection took over: normal, nothing to retry. */
  RESUMED_ELSEWHERE: { code: 1000, reason: "RESUMED: a newer connection resumed this session" },
  /** Earshot failed in a way the session cannot survive; a reconnect may succeed. */
  INTERNAL: { code: 1011, reason: "INTERNAL-0000" },
} as const satisfies Record<string, CloseSpec>;

/** RFC 6455 §5.5: a control frame payload is ≤ 125 bytes, 2 of which carry the code. */
export const MAX_CLOSE_REASON_BYTES = 123;

function utf8Length(codePoint: number): number {
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  // A lone surrogate (0xD800–0xDFFF) is encoded as U+FFFD: 3 bytes, like the rest of the BMP.
  if (codePoint < 0x10000) return 3;
  return 4;
}

/**
 * A close reason of at most 123 UTF-8 bytes, cut at a code point boundary (never half a
 * character, which would make the frame invalid UTF-8 and fail the close with 1007).
 */
export function closeReason(text: string): string {
  let bytes = 0;
  let end = 0;
  for (const ch of text) {
    const size = utf8Length(ch.codePointAt(0) ?? 0);
    if (bytes + size > MAX_CLOSE_REASON_BYTES) return text.slice(0, end);
    bytes += size;
    end += ch.length;
  }
  return text;
}

/**
 * RFC 6455's 1006: the connection ended without a close frame. Never sent (isSendableCloseCode);
 * it is how a session records a socket that failed.
 */
export const ABNORMAL_CLOSURE = 1006;

/** A named close with optional detail after the code: `DATA-0000: cannot decode mulaw`. */
export function closeWith(spec: CloseSpec, detail?: string): CloseSpec {
  if (!detail) return { code: spec.code, reason: closeReason(spec.reason) };
  const reason = spec.reason ? `${spec.reason}: ${detail}` : detail;
  return { code: spec.code, reason: closeReason(reason) };
}

/**
 * Codes a server may put in a close frame. RFC 6455 §7.4.1 reserves 1004 (undefined), 1005 (no
 * status) and 1006 (abnormal) — never on the wire — and 1015 (TLS); 1012–1014 are IANA-registered
 * (service restart, try again later, bad gateway); 1016–2999 are reserved for future protocol
 * use; 3000–3999 are registered for libraries and 4000–4999 private. (workerd itself only throws
 * on 1004/1005/1006/1015 and outside 1000–4999, api/web-socket.c++ WebSocket::close; this is
 * stricter.)
 */
export function isSendableCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

/**
 * Errors that mean "this socket is already closed or gone" — the race between a client leaving
 * and the session still sending is normal, so these are not worth a log line. Messages from
 * workerd's source (cloudflare/workerd):
 * - `Can't call WebSocket send() after close().` — TypeError from WebSocket::send once close()
 *   was called (src/workerd/api/web-socket.c++). (A second close() is silently ignored there.)
 * - `Network connection lost.` — how jsg renders a kj DISCONNECTED exception to JS
 *   (src/workerd/jsg/util.c++); close() rethrows a stored error this way after the peer vanished
 *   (web-socket.c++ raises "WebSocket peer disconnected" as DISCONNECTED in ensurePumping).
 * - `WebSocket peer disconnected` — that same exception where it surfaces unrendered (logs).
 * - `WebSocket already closed` — KJ_REQUIRE in kj's WebSocket sendImpl (capnproto
 *   c++/src/kj/compat/http.c++), which reaches JS through the same paths.
 * And from the Node `ws` library (the client side of local tests and scripts, not workerd):
 * - `WebSocket is not open: readyState 2 (CLOSING)` / `3 (CLOSED)`; readyState 0 (CONNECTING)
 *   is a caller bug and stays unexpected.
 * Everything else (an invalid close code, send() before accept(), non-Error values) is
 * "unexpected" and must be logged.
 */
const HARMLESS_TEARDOWN: readonly RegExp[] = [
  /^Can't call WebSocket send\(\) after close\(\)\.?$/,
  /^Network connection lost\.?$/,
  /WebSocket peer disconnected/,
  /WebSocket already closed/,
  /^WebSocket is not open: readyState [23]\b/,
];

export function classifyTeardownError(error: unknown): "harmless" | "unexpected" {
  if (!(error instanceof Error)) return "unexpected";
  return HARMLESS_TEARDOWN.some((pattern) => pattern.test(error.message))
    ? "harmless"
    : "unexpected";
}
