/**
 * The sessions this isolate runs, for its capacity check (MAX_WHISPER_SESSIONS_PER_ISOLATE): the
 * one piece of module state the session objects of an isolate share.
 */
import { LEASE_TTL_MS } from "../limits/lease";
import type { Transcriber } from "../stt/transcriber";
import { MAX_WHISPER_SESSIONS_PER_ISOLATE } from "./caps";

/**
 * Live sessions in this isolate, by id, with when each last showed life (module state, shared by
 * every SessionObject in the isolate; only touched synchronously, so sharing is safe, see
 * runtime/own-context.ts). A session refreshes its entry at every lease renewal and removes it
 * when it ends; one whose object was reset never ends, so entries silent for a lease's TTL are
 * not counted — as the limiter reclaims its slot.
 */
export const isolateSessions = new Map<string, number>();

export function liveInIsolate(now: number): number {
  for (const [id, seen] of isolateSessions) {
    if (now - seen > LEASE_TTL_MS) isolateSessions.delete(id);
  }
  return isolateSessions.size;
}

/** The isolate's session cap for this transcriber (MAX_WHISPER_SESSIONS_PER_ISOLATE). */
export function isolateCapacity(env: Env, transcriber: Transcriber): number {
  const override = Number(env.EARSHOT_MAX_SESSIONS_PER_ISOLATE);
  if (Number.isInteger(override) && override > 0) return override;
  return transcriber.model.name.startsWith("whisper")
    ? MAX_WHISPER_SESSIONS_PER_ISOLATE
    : Number.POSITIVE_INFINITY;
}
