/**
 * Earshot's own handshake parameters for resuming a session (README "Resumable sessions"):
 * `session_id`, `resume_offset` and `finals_received`. They are not session options: they name
 * which session to rejoin and where; parseListenOptions (options.ts) reads them with the rest.
 */
import { quote } from "./quote";

/** A reconnection to an existing session (`session_id` with `resume_offset`). */
export interface ResumeRequest {
  sessionId: string;
  /** The byte of the session's audio stream the client re-sends from. */
  resumeOffset: number;
  /** How many final Results the client already has; the server replays the rest. */
  finalsReceived: number;
}

export const RESUME_PARAMS = ["session_id", "resume_offset", "finals_received"] as const;

/**
 * A byte or message count: like parseDecimalInteger but up to 15 digits, since a 4-h session at
 * 48 kHz linear16 is 1.4 × 10⁹ bytes (every 15-digit number is a safe integer).
 */
function parseCount(value: string): number | null {
  return /^[0-9]{1,15}$/.test(value) ? Number(value) : null;
}

/** Session ids are minted by crypto.randomUUID(); anything else names no session. */
const SESSION_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type ResumeStep =
  | { ok: true; resume: ResumeRequest | null }
  | { ok: false; option: string; message: string };

export function parseResume(params: URLSearchParams): ResumeStep {
  const sessionId = params.get("session_id");
  const rawOffset = params.get("resume_offset");
  const rawFinals = params.get("finals_received");
  if (sessionId === null) {
    const stray =
      rawOffset !== null ? "resume_offset" : rawFinals !== null ? "finals_received" : null;
    if (stray === null) return { ok: true, resume: null };
    return {
      ok: false,
      option: stray,
      message: `${stray} needs session_id: the session to resume`,
    };
  }
  if (!SESSION_ID_PATTERN.test(sessionId)) {
    return {
      ok: false,
      option: "session_id",
      message: `session_id must be a session's id (a lowercase UUID, the request_id of its messages), got ${quote(sessionId)}`,
    };
  }
  if (rawOffset === null) {
    return {
      ok: false,
      option: "resume_offset",
      message:
        "resume_offset is required with session_id: the byte of the audio stream you re-send from (the audio_bytes of the last EarshotAck)",
    };
  }
  const resumeOffset = parseCount(rawOffset);
  if (resumeOffset === null) {
    return {
      ok: false,
      option: "resume_offset",
      message: `resume_offset must be a whole number of bytes, got ${quote(rawOffset)}`,
    };
  }
  let finalsReceived = 0;
  if (rawFinals !== null) {
    const count = parseCount(rawFinals);
    if (count === null) {
      return {
        ok: false,
        option: "finals_received",
        message: `finals_received must be a whole number of final results, got ${quote(rawFinals)}`,
      };
    }
    finalsReceived = count;
  }
  return { ok: true, resume: { sessionId, resumeOffset, finalsReceived } };
}
