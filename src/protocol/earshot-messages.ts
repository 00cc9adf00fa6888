/**
 * Earshot's own messages on an open `/v1/listen` socket, beside Deepgram's (messages.ts): sent
 * only on resumable sessions (README "Resumable sessions"; the query side is resume-params.ts),
 * so a Deepgram client that does not ask for `resumable` never sees one.
 */

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
