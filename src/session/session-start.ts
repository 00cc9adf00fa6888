/**
 * What the worker tells a session Durable Object when it forwards a connection: decided once, at
 * the handshake, after authentication and validation. It travels in an internal header on a
 * request the worker builds itself, so no client header can reach the DO or forge it.
 */
import type { Scheme } from "../auth/credentials";
import type { ListenOptionName, ListenOptions } from "../protocol/option-schema";
import type { ResumeRequest } from "../protocol/resume-params";

export const SESSION_START_HEADER = "X-Earshot-Session-Start";
export const SESSION_RESUME_HEADER = "X-Earshot-Session-Resume";

export interface SessionStart {
  sessionId: string;
  accountId: string;
  /** The API key the session was opened with (directly or through a token it minted). */
  keyId: string;
  options: ListenOptions;
  /** The subprotocol the 101 must select (browsers' `token` / `bearer`), or null. */
  subprotocol: Scheme | null;
  /** The account's cap on session length in seconds, or null for the service-wide cap. */
  maxSessionSeconds: number | null;
  /** Epoch ms of the handshake. */
  createdAt: number;
}

/** A reconnection to an existing session, after the worker authenticated it. */
export interface SessionResume extends ResumeRequest {
  /** The authenticated caller's account: only the session's own account may resume it. */
  accountId: string;
  /**
   * The API key the caller authenticated with (or that minted its token): only the key that opened
   * the session may resume it, so revoking a key ends every socket it holds (operator-end.ts).
   */
  keyId: string;
  /** The options of the resume's query, and which it named (they must equal the session's). */
  options: ListenOptions;
  given: ListenOptionName[];
  subprotocol: Scheme | null;
  /**
   * Only ask whether this resume would be admitted (the demo page's /dev/handshake probe): the
   * session answers 204 instead of attaching, so a probe never detaches the live client.
   */
  probe?: boolean;
}

export function encodeSessionStart(start: SessionStart): string {
  return JSON.stringify(start);
}

export function encodeSessionResume(resume: SessionResume): string {
  return JSON.stringify(resume);
}

/** Only the worker builds this header, so a shape check is enough; null when it is not one. */
export function decodeSessionResume(value: string | null): SessionResume | null {
  if (value === null) return null;
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed !== "object" || parsed === null) return null;
    const resume = parsed as Partial<SessionResume>;
    if (
      typeof resume.sessionId !== "string" ||
      typeof resume.accountId !== "string" ||
      typeof resume.keyId !== "string" ||
      typeof resume.resumeOffset !== "number" ||
      typeof resume.finalsReceived !== "number" ||
      typeof resume.options !== "object" ||
      resume.options === null ||
      !Array.isArray(resume.given)
    ) {
      return null;
    }
    return resume as SessionResume;
  } catch {
    return null;
  }
}

export function decodeSessionStart(value: string | null): SessionStart | null {
  if (value === null) return null;
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed !== "object" || parsed === null) return null;
    const start = parsed as Partial<SessionStart>;
    if (
      typeof start.sessionId !== "string" ||
      typeof start.accountId !== "string" ||
      typeof start.keyId !== "string" ||
      typeof start.options !== "object" ||
      start.options === null ||
      typeof start.createdAt !== "number"
    ) {
      return null;
    }
    return start as SessionStart;
  } catch {
    // Not JSON: the caller answers 400; only the worker builds this header.
    return null;
  }
}
