/**
 * What the worker tells a session Durable Object when it forwards a connection: decided once, at
 * the handshake, after authentication and validation. It travels in an internal header on a
 * request the worker builds itself, so no client header can reach the DO or forge it.
 */
import type { Scheme } from "../auth/credentials";
import type { ListenOptions } from "../protocol/options";

export const SESSION_START_HEADER = "X-Earshot-Session-Start";

export interface SessionStart {
  sessionId: string;
  accountId: string;
  options: ListenOptions;
  /** The subprotocol the 101 must select (browsers' `token` / `bearer`), or null. */
  subprotocol: Scheme | null;
  /** The account's cap on session length in seconds, or null for the service-wide cap. */
  maxSessionSeconds: number | null;
  /** Epoch ms of the handshake. */
  createdAt: number;
}

export function encodeSessionStart(start: SessionStart): string {
  return JSON.stringify(start);
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
