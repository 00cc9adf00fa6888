/**
 * One live session against the real worker, as a client would run it, through the soak's session
 * runner (tools/load/session-run.ts): `/v1/listen` with the demo key in the `token` subprotocol, as
 * browsers send it, PCM16 at 16 kHz in 20 ms frames paced by the wall clock, then silence at the
 * same pace until every utterance the server started has had its endpoint final, then
 * CloseStream. Records when each frame left and when each final arrived (performance.now(), ms),
 * and optionally the worker process's CPU time and run-queue wait at both moments.
 *
 * Pacing: frame i holds audio [20 i, 20 (i + 1)) ms and is sent at t0 + 20 (i + 1) ms, the moment a
 * microphone would have delivered it; the schedule is absolute, so timer lateness does not
 * accumulate. A frame sent late is recorded at its real send time.
 */
import { DEMO_KEY } from "../../../src/accounts/demo-seed.ts";
import { type FinalRecord, runProgram, type SessionRecord } from "../session-run.ts";
import type { Program } from "../soak/programs.ts";
import { SAMPLE_RATE } from "./clips.ts";

/** 20 ms per frame: 320 samples, 640 bytes of PCM16 (a common browser/WebRTC capture size). */
export const FRAME_SAMPLES = 320;
const FRAME_BYTES = FRAME_SAMPLES * 2;
/**
 * Silence sent after the clip, at least: the longest endpointing the bench asks for, the default
 * 500 ms, is 16 VAD frames (512 ms), plus up to one 32 ms frame of alignment; 1 s leaves margin
 * for a server whose VAD runs a little behind.
 */
const MIN_TRAILING_SILENCE_MS = 1_000;
/** …and at most: a final not there 8 s after the clip ended is counted missing. */
const MAX_TRAILING_SILENCE_MS = 8_000;
/** A cold handshake loads the models (a few seconds here); 60 s means it is stuck. */
const HANDSHAKE_TIMEOUT_MS = 60_000;
const QUERY = { encoding: "linear16", sample_rate: String(SAMPLE_RATE), vad_events: "true" };

/** An admitted session's record (a refused one throws): its 20-ms frames are the runner's units. */
export type SessionRun = SessionRecord & { handshakeMs: number };

/** End of a final's audio, in samples of the session's stream. */
export function finalEndSample(final: FinalRecord): number {
  return Math.round((final.start + final.duration) * SAMPLE_RATE);
}

/** The session's transcript: its finals' texts joined. */
export function transcriptOf(run: SessionRun): string {
  return run.finals
    .map((f) => f.transcript)
    .filter((t) => t !== "")
    .join(" ");
}

/** Index of the frame holding sample `endSample - 1`, clamped to the frames sent. */
export function frameOf(run: SessionRun, endSample: number): number {
  const frame = Math.floor((endSample - 1) / FRAME_SAMPLES);
  return Math.min(Math.max(0, frame), Math.ceil(run.audioBytes / FRAME_BYTES) - 1);
}

/** When the frame holding sample `endSample - 1` (the last one needed) was sent. */
export function sentAtSample(run: SessionRun, endSample: number): number {
  return run.sentAtMs[frameOf(run, endSample)] ?? Number.NaN;
}

/**
 * Streams `pcm` (PCM16 LE, 16 kHz mono) through a new session. `cpuPid`: the workerd process to
 * read CPU time from at every frame and final (null: none).
 */
export async function runSession(
  url: string,
  pcm: Uint8Array,
  cpuPid: number | null,
  options: {
    /** Added to the query, e.g. { endpointing: "300" }. */
    query?: Record<string, string>;
    /**
     * Finalize is sent right after the frame holding each of these sample positions (ascending),
     * as a client whose own VAD decided the speech ended there.
     */
    finalizeAtSamples?: readonly number[];
    /** Times real time (default 1): frame i is sent at t0 + 20 (i + 1) / pace ms. */
    pace?: number;
  } = {},
): Promise<SessionRun> {
  // The clip's last frame zero-padded to a whole frame, as a capture buffer would be.
  const bytes = Math.ceil(pcm.byteLength / FRAME_BYTES) * FRAME_BYTES;
  const program: Program = {
    id: "bench",
    account: 0,
    behaviour: "realtime",
    pace: options.pace ?? 1,
    query: { ...QUERY, ...options.query },
    auth: "subprotocol",
    frameBytes: FRAME_BYTES,
    segments: bytes === 0 ? [] : [{ kind: "clip", clip: "bench", bytes }],
    totalBytes: bytes,
    pauses: [],
    drops: [],
  };
  const record = await runProgram(program, {
    baseUrl: url,
    key: DEMO_KEY,
    clips: [{ id: "bench", pcm, speech: true }],
    mode: "live",
    soloPace: 1,
    deadlineMs: Number.POSITIVE_INFINITY,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    finalizeAtBytes: (options.finalizeAtSamples ?? []).map((sample) => 2 * sample),
    trailingSilence: { minMs: MIN_TRAILING_SILENCE_MS, maxMs: MAX_TRAILING_SILENCE_MS },
    cpuPid,
    endOnClose: true,
  });
  if (record.refusal !== null) {
    const { status, errCode, errMsg } = record.refusal;
    throw new Error(`the handshake was refused: ${status} ${errCode} ${errMsg}`);
  }
  if (record.errors.length > 0) throw new Error(`session failed: ${record.errors.join("; ")}`);
  return { ...record, handshakeMs: record.handshakeMs ?? Number.NaN };
}
