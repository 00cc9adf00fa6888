/**
 * One live session against the real worker, as a client would run it: the soak's client
 * (tools/client/resumable-client.ts, not resumable here) to `/v1/listen` (key in the `token`
 * subprotocol, as browsers send it), PCM16 at 16 kHz in 20 ms frames paced by
 * the wall clock, then silence at the same pace until every utterance the server started has had
 * its endpoint final, then CloseStream. Records when each frame left and when each final arrived
 * (performance.now(), ms), and optionally the worker process's CPU time and run-queue wait at both
 * moments.
 *
 * Pacing: frame i holds audio [20 i, 20 (i + 1)) ms and is sent at t0 + 20 (i + 1) ms, the moment a
 * microphone would have delivered it; the schedule is absolute, so timer lateness does not
 * accumulate. A frame sent late is recorded at its real send time.
 */
import { HandshakeRefused, ResumableClient } from "../../client/resumable-client.ts";
import { SAMPLE_RATE } from "./clips.ts";
import { type Sched, sched } from "./cpu.ts";

/** 20 ms per frame: 320 samples, 640 bytes of PCM16 (a common browser/WebRTC capture size). */
export const FRAME_SAMPLES = 320;
const FRAME_BYTES = FRAME_SAMPLES * 2;
const FRAME_MS = (1000 * FRAME_SAMPLES) / SAMPLE_RATE;
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
/** CloseStream → Metadata → close 1000 takes a final at most (the CloseStream flush). */
const CLOSE_TIMEOUT_MS = 20_000;
const QUERY = { encoding: "linear16", sample_rate: String(SAMPLE_RATE), vad_events: "true" };

export interface SessionFinal {
  /** Session seconds, as sent (`start`, `duration`). */
  start: number;
  duration: number;
  speechFinal: boolean;
  fromFinalize: boolean;
  transcript: string;
  words: number;
  /** performance.now() when the message arrived. */
  arrivalMs: number;
  /** Worker process CPU and run-queue wait (ms, cumulative) read on arrival; null without a pid. */
  sched: Sched | null;
}

export interface SessionRun {
  /** new WebSocket → open, ms: authentication, admission, the session DO's start (model load). */
  handshakeMs: number;
  /** performance.now() right after frame i was sent. */
  sentAtMs: number[];
  /** Worker process CPU and run-queue wait (ms, cumulative) right after frame i was sent. */
  schedAt: (Sched | null)[];
  /** Samples sent in all (clip + trailing silence). */
  streamSamples: number;
  finals: SessionFinal[];
  /** Interim Results received (with `interim_results=true`). */
  interims: number;
  speechStarted: number;
  close: { code: number; reason: string } | null;
  metadata: boolean;
}

/** End of a final's audio, in samples of the session's stream. */
export function finalEndSample(final: SessionFinal): number {
  return Math.round((final.start + final.duration) * SAMPLE_RATE);
}

/** The session's transcript: its finals' texts joined. */
export function transcriptOf(run: SessionRun): string {
  return run.finals
    .map((f) => f.transcript)
    .filter((t) => t !== "")
    .join(" ");
}

/** When the frame holding sample `endSample - 1` (the last one needed) was sent. */
export function sentAtSample(run: SessionRun, endSample: number): number {
  return run.sentAtMs[frameOf(run, endSample)] ?? Number.NaN;
}

/** Index of the frame holding sample `endSample - 1`, clamped to the frames sent. */
export function frameOf(run: SessionRun, endSample: number): number {
  const frame = Math.floor((endSample - 1) / FRAME_SAMPLES);
  return Math.min(Math.max(0, frame), run.sentAtMs.length - 1);
}

interface Alternative {
  transcript?: unknown;
  words?: unknown;
}

const sleepUntil = (at: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));

function schedOf(pid: number | null): Sched | null {
  return pid === null ? null : sched(pid);
}

export interface SessionOptions {
  /** Added to the query, e.g. { endpointing: "300" }. */
  query?: Record<string, string>;
  /**
   * Finalize is sent right after the frame holding each of these sample positions (ascending), as
   * a client whose own VAD decided the speech ended there.
   */
  finalizeAtSamples?: readonly number[];
  /** Times real time (default 1): frame i is sent at t0 + 20 (i + 1) / pace ms. */
  pace?: number;
}

/**
 * Streams `pcm` (PCM16 LE, 16 kHz mono) through a new session. `cpuPid`: the workerd process to
 * read CPU time from at every frame and final (null: none).
 */
export async function runSession(
  url: string,
  key: string,
  pcm: Uint8Array,
  cpuPid: number | null,
  options: SessionOptions = {},
): Promise<SessionRun> {
  const finalizeAt = [...(options.finalizeAtSamples ?? [])];
  const finals: SessionFinal[] = [];
  let speechStarted = 0;
  let interims = 0;
  let metadata = false;
  let close: SessionRun["close"] = null;
  let protocolError: Error | null = null;
  const onMessage = (message: Record<string, unknown>) => {
    const arrivalMs = performance.now();
    const schedNow = schedOf(cpuPid);
    if (message.type === "SpeechStarted") speechStarted += 1;
    if (message.type === "Metadata") metadata = true;
    if (message.type === "Results" && message.is_final === false) interims += 1;
    if (message.type !== "Results" || message.is_final !== true) return;
    const channel = message.channel as { alternatives?: Alternative[] } | undefined;
    const alternative = channel?.alternatives?.[0];
    finals.push({
      start: Number(message.start),
      duration: Number(message.duration),
      speechFinal: message.speech_final === true,
      fromFinalize: message.from_finalize === true,
      transcript: typeof alternative?.transcript === "string" ? alternative.transcript : "",
      words: Array.isArray(alternative?.words) ? alternative.words.length : 0,
      arrivalMs,
      sched: schedNow,
    });
  };
  const handshakeStarted = performance.now();
  let client: ResumableClient;
  try {
    client = await ResumableClient.open({
      baseUrl: url,
      key,
      query: { ...QUERY, ...options.query },
      resumable: false,
      auth: "subprotocol",
      bytesPerSecond: 2 * SAMPLE_RATE,
      frameBytes: FRAME_BYTES,
      maxKeptBytes: 0,
      handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
      events: {
        onMessage,
        onClose: (closed) => {
          close = { code: closed.code, reason: closed.reason };
        },
        onProtocolError: (error) => {
          protocolError = error;
        },
      },
    });
  } catch (error) {
    if (!(error instanceof HandshakeRefused)) throw error;
    const { status, errCode, errMsg } = error.refusal;
    throw new Error(`the handshake was refused: ${status} ${errCode} ${errMsg}`, { cause: error });
  }
  const handshakeMs = performance.now() - handshakeStarted;

  const sentAtMs: number[] = [];
  const schedAt: (Sched | null)[] = [];
  const clipFrames = Math.ceil(pcm.byteLength / FRAME_BYTES);
  // A Finalize's final closes an utterance as an endpoint's does.
  const pending = () =>
    speechStarted -
    finals.filter((f) => f.speechFinal || (f.fromFinalize && f.duration > 0)).length;
  const t0 = performance.now();
  let streamBytes = 0;
  for (let i = 0; close === null; i++) {
    const trailingMs = (i - clipFrames) * FRAME_MS;
    if (i >= clipFrames) {
      if (trailingMs >= MAX_TRAILING_SILENCE_MS) break;
      if (trailingMs >= MIN_TRAILING_SILENCE_MS && pending() <= 0) break;
    }
    await sleepUntil(t0 + ((i + 1) * FRAME_MS) / (options.pace ?? 1));
    if (close !== null) break;
    // A fresh zeroed frame: silence, or the clip's bytes (its last frame zero-padded to a whole
    // frame, as a capture buffer would be).
    const frame = new Uint8Array(FRAME_BYTES);
    if (i < clipFrames) frame.set(pcm.subarray(i * FRAME_BYTES, (i + 1) * FRAME_BYTES));
    client.push(frame);
    streamBytes += FRAME_BYTES;
    sentAtMs.push(performance.now());
    schedAt.push(schedOf(cpuPid));
    while ((finalizeAt[0] ?? Number.POSITIVE_INFINITY) <= streamBytes / 2) {
      finalizeAt.shift();
      client.sendJson({ type: "Finalize" });
    }
  }
  // CloseStream, then the last finals, Metadata and the close; dropped after CLOSE_TIMEOUT_MS.
  if (close === null) await client.closeStream(CLOSE_TIMEOUT_MS);
  if (protocolError !== null) throw protocolError;
  return {
    handshakeMs,
    sentAtMs,
    schedAt,
    streamSamples: streamBytes / 2,
    finals,
    interims,
    speechStarted,
    close,
    metadata,
  };
}
