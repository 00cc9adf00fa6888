/**
 * The one session runner of the soak and the bench: streams a program (tools/load/soak/programs.ts)
 * through one session and records what came back.
 *
 * - live: the program as written — its pace, its pauses (KeepAlive meanwhile), its connection
 *   drops and resumes; every final's latency is measured.
 * - solo: the same audio and options, no pauses or drops, alone on the server, up to `soloPace`
 *   times real time as far as tools/load/soak/solo-gate.ts allows: the soak's reference
 *   transcript the live run must reproduce.
 *
 * Live pacing is an absolute schedule (frame k goes out when k frames' worth of audio time has
 * passed at the pace, plus the pauses so far), so timer lateness does not accumulate. The client
 * keeps audio produced while disconnected and sends it after the resume (public/live-stream.js).
 */
import type { ResumePlan } from "../../public/resume-state.js";
import {
  HandshakeRefused,
  type Refusal,
  ResumableClient,
  type WsClosed,
} from "../client/resumable-client.ts";
import { type Sched, sched } from "./proc.ts";
import {
  BYTES_PER_SECOND,
  type Clip,
  clientPauseMs,
  type Program,
  ProgramAudio,
  UNIT_BYTES,
} from "./soak/programs.ts";
import { errorText } from "./soak/progress.ts";
import { SoloGate } from "./soak/solo-gate.ts";

/** A handshake through wrangler's proxy takes milliseconds; 30 s means the service is stuck. */
const HANDSHAKE_TIMEOUT_MS = 30_000;
/** KeepAlive every 3 s while paused: well inside the 10-s idle timeout. */
const KEEPALIVE_EVERY_MS = 3_000;
/**
 * After CloseStream: the last final, Metadata, close 1000. The server's own bound on ending is
 * 60 s (FINISH_DEADLINE_MS in live-session.ts); waiting a little longer shows whether it held.
 */
const CLOSE_TIMEOUT_MS = 75_000;
/** Most audio kept for a resume: 60 s (1.92 MB), twice the 30-s resume window. */
const MAX_KEPT_BYTES = 60 * BYTES_PER_SECOND;

/**
 * Latency of a final: from when the last byte of its span (start + duration) was last sent — a
 * resumed connection may send it twice — to when the final arrived. Finals a resume replays are
 * not measured: they were produced while the client was away.
 */
export interface FinalRecord {
  start: number;
  duration: number;
  transcript: string;
  speechFinal: boolean;
  fromFinalize: boolean;
  /**
   * Milliseconds from the span's last byte sent to arrival, less any pause of the program's own
   * between that byte and the endpoint's decision (`clientPauseMs`); null for replays and empty
   * spans.
   */
  latencyMs: number | null;
  replay: boolean;
  /** Words in the transcript's word list. */
  words: number;
  /** performance.now() when it arrived. */
  arrivalMs: number;
  /** The worker process's CPU and run-queue wait (ms, cumulative) on arrival; null without a pid. */
  sched: Sched | null;
}

export interface SessionRecord {
  program: string;
  sessionId: string | null;
  /** Null when the session was admitted; else how the handshake was refused. */
  refusal: Refusal | null;
  finals: FinalRecord[];
  metadata: boolean;
  /** How the last connection ended (null: never connected). */
  close: WsClosed | null;
  /** Closes of connections the client did not drop on purpose, before the last. */
  unexpectedCloses: WsClosed[];
  drops: number;
  resumes: number;
  /** What each resume found: finals the server replayed, re-sent bytes it already held. */
  resumePlans: ResumePlan[];
  /** Resume handshakes the server refused (a session that cannot go on). */
  resumeRefusals: Refusal[];
  audioBytes: number;
  /** Protocol violations, resume failures, timeouts: anything that makes the session fail. */
  errors: string[];
  /**
   * new WebSocket → admitted, ms: authentication, admission, the session's start (model load);
   * null when never admitted.
   */
  handshakeMs: number | null;
  /** Interim Results and SpeechStarted messages received. */
  interims: number;
  speechStarted: number;
  /** When each 20-ms unit of the stream was last sent (performance.now(); 0: never). */
  sentAtMs: Float64Array;
  /** The worker's CPU and run-queue wait right after each unit was sent (with `cpuPid`). */
  schedAt: (Sched | null)[];
}

export interface RunContext {
  baseUrl: string;
  key: string;
  clips: Clip[];
  mode: "live" | "solo";
  soloPace: number;
  /** Epoch ms: a session still streaming then stops (and fails). */
  deadlineMs: number;
  /** Called once the session is admitted (101), and once it has ended, whatever the cause. */
  onAdmitted?: () => void;
  onEnded?: () => void;
  /**
   * Live runs: the solo finals, which say exactly where the server ends each utterance, so an
   * after-endpoint drop can fall right on an endpoint (afterEndpoint).
   */
  reference?: readonly FinalRecord[];
  /** Default HANDSHAKE_TIMEOUT_MS; the bench's cold handshake loads the models. */
  handshakeTimeoutMs?: number;
  /** Finalize right after the frame that reaches each of these stream bytes (ascending). */
  finalizeAtBytes?: readonly number[];
  /**
   * After the program, silence at its pace: at least `minMs`, then until every utterance the
   * server started (SpeechStarted) has its endpoint (or Finalize) final, at most `maxMs`.
   */
  trailingSilence?: { minMs: number; maxMs: number };
  /** The worker process to read CPU time from at every unit sent and every final. */
  cpuPid?: number | null;
  /**
   * A close by the server ends the stream and is recorded (`close`), not an error: the bench
   * reports its code. Otherwise a connection that ends mid-stream fails the session.
   */
  endOnClose?: boolean;
}

/** How far an after-endpoint drop may move to land on an endpoint: 5 s of audio. */
const SNAP_WINDOW_BYTES = 5 * BYTES_PER_SECOND;

/**
 * Where an after-endpoint drop goes: right after the frame unit that holds the end of the
 * reference's endpoint final nearest `nominal` (within SNAP_WINDOW_BYTES), so the frame that
 * completes the endpoint is the last one the old connection carries and its final is produced as
 * the connection dies; `nominal` itself when there is no such final.
 */
export function afterEndpoint(nominal: number, reference: readonly FinalRecord[]): number {
  let best = nominal;
  let distance = SNAP_WINDOW_BYTES;
  for (const final of reference) {
    if (!final.speechFinal) continue;
    const end = Math.round((final.start + final.duration) * BYTES_PER_SECOND);
    if (Math.abs(end - nominal) < distance) {
      distance = Math.abs(end - nominal);
      best = Math.ceil(end / UNIT_BYTES) * UNIT_BYTES;
    }
  }
  return best;
}

const sleepUntil = (atMs: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, atMs - performance.now())));

export async function runProgram(program: Program, context: RunContext): Promise<SessionRecord> {
  const live = context.mode === "live";
  const audio = new ProgramAudio(program, context.clips);
  const trailingBytes = ((context.trailingSilence?.maxMs ?? 0) / 1000) * BYTES_PER_SECOND;
  const cpuPid = context.cpuPid ?? null;
  const schedNow = () => (cpuPid === null ? null : sched(cpuPid));
  const record: SessionRecord = {
    program: program.id,
    sessionId: null,
    refusal: null,
    finals: [],
    metadata: false,
    close: null,
    unexpectedCloses: [],
    drops: 0,
    resumes: 0,
    resumePlans: [],
    resumeRefusals: [],
    audioBytes: 0,
    errors: [],
    handshakeMs: null,
    interims: 0,
    speechStarted: 0,
    sentAtMs: new Float64Array(Math.ceil((audio.totalBytes + trailingBytes) / UNIT_BYTES) + 1),
    schedAt: [],
  };
  const sentAt = record.sentAtMs;
  let dropping = false;
  const gate = new SoloGate(context.soloPace);

  let client: ResumableClient;
  const handshakeStarted = performance.now();
  try {
    client = await ResumableClient.open({
      baseUrl: context.baseUrl,
      key: context.key,
      query: program.query,
      resumable: program.behaviour === "resume",
      auth: program.auth,
      bytesPerSecond: BYTES_PER_SECOND,
      frameBytes: program.frameBytes,
      maxKeptBytes: MAX_KEPT_BYTES,
      handshakeTimeoutMs: context.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
      events: {
        onMessage: (message, { replay }) => {
          const arrival = performance.now();
          gate.observe(message);
          if (message.type === "SpeechStarted") record.speechStarted += 1;
          if (message.type === "Results" && message.is_final === false) record.interims += 1;
          if (message.type === "Metadata") record.metadata = true;
          if (message.type !== "Results" || message.is_final !== true) return;
          record.finals.push(finalOf(message, replay, arrival, sentAt, program, schedNow()));
        },
        onAudioSent: (offset, length) => {
          const now = performance.now();
          const cpu = schedNow();
          for (let u = Math.floor(offset / UNIT_BYTES); u * UNIT_BYTES < offset + length; u++) {
            sentAt[u] = now;
            if (cpuPid !== null) record.schedAt[u] = cpu;
          }
        },
        onClose: (closed) => {
          record.close = closed;
          if (!dropping && !client.closeStreamSent) record.unexpectedCloses.push(closed);
        },
        onProtocolError: (error) => record.errors.push(`protocol: ${error.message}`),
      },
    });
  } catch (error) {
    if (error instanceof HandshakeRefused) record.refusal = error.refusal;
    else record.errors.push(`connect: ${errorText(error)}`);
    return record;
  }
  record.sessionId = client.sessionId;
  record.handshakeMs = performance.now() - handshakeStarted;
  context.onAdmitted?.();
  try {
    await stream();
  } catch (error) {
    record.errors.push(`stream: ${errorText(error)}`);
    client.drop();
  } finally {
    record.audioBytes = client.produced;
    context.onEnded?.();
  }
  return record;

  async function stream(): Promise<void> {
    const pauses = live ? [...program.pauses] : [];
    const drops = live
      ? program.drops.map((drop) =>
          drop.kind === "after-endpoint" && context.reference !== undefined
            ? { ...drop, atByte: afterEndpoint(drop.atByte, context.reference) }
            : drop,
        )
      : [];
    let resuming: Promise<void> | null = null;
    // A resume fails while the loop goes on streaming into the kept buffer: held here (a rejected
    // promise nobody awaits yet would be an unhandled rejection) and thrown at the next frame.
    let resumeFailure: Error | null = null;
    let pausedMs = 0;
    const finalizeAt = [...(context.finalizeAtBytes ?? [])];
    const t0 = performance.now();
    let soloClock = t0;
    for (let offset = 0; offset < audio.totalBytes || moreSilence(offset); ) {
      if (Date.now() > context.deadlineMs) {
        throw new Error(`still streaming at the deadline (${offset} of ${audio.totalBytes} bytes)`);
      }
      if (resumeFailure !== null) throw resumeFailure;
      if (!dropping && !client.connected) {
        // The close frame may have come before the TCP end that reports it: wait for the code.
        const closed = await client.waitClosed(CLOSE_TIMEOUT_MS);
        if (context.endOnClose) {
          record.close = closed;
          return;
        }
        throw new Error(`connection ended mid-stream: ${closed.code} ${closed.reason}`);
      }
      const pause = pauses[0];
      if (pause !== undefined && offset >= pause.atByte) {
        pauses.shift();
        await pauseFor(pause.ms);
        pausedMs += pause.ms;
      }
      const length =
        offset < audio.totalBytes
          ? Math.min(program.frameBytes, audio.totalBytes - offset)
          : program.frameBytes;
      let dueMs: number;
      if (live) {
        // Frame k is due once its audio has been "captured": its end time at the pace.
        dueMs = t0 + pausedMs + ((offset + length) / BYTES_PER_SECOND / program.pace) * 1000;
      } else {
        // The gate's pace changes as the server answers: a running clock, at most 50 ms in debt.
        const pace = gate.pace(offset / BYTES_PER_SECOND, performance.now());
        soloClock = Math.max(soloClock, performance.now() - 50);
        soloClock += ((length / BYTES_PER_SECOND) * 1000) / pace;
        dueMs = soloClock;
      }
      // Live, every frame waits its turn (when late, one turn of the event loop, so the messages
      // that came meanwhile are read when they came). Solo, only when ahead: a timer takes ≥ 1 ms,
      // and at 24× a 20-ms frame is due every 0.8 ms.
      if (live || dueMs > performance.now()) await sleepUntil(dueMs);
      client.push(offset < audio.totalBytes ? audio.read(offset, length) : new Uint8Array(length));
      offset += length;
      while ((finalizeAt[0] ?? Number.POSITIVE_INFINITY) <= offset) {
        finalizeAt.shift();
        client.sendJson({ type: "Finalize" });
      }
      // The connection is lost right after the frame that reaches the drop point, in the same
      // tick: whatever that frame makes the server send (an endpoint's final) meets a dead
      // socket and must come back as a replay after the resume.
      const drop = drops[0];
      if (drop !== undefined && offset >= drop.atByte) {
        drops.shift();
        if (resuming !== null) await resuming;
        resuming = dropAndResume(drop.offlineMs).catch((error: unknown) => {
          resumeFailure = error instanceof Error ? error : new Error(String(error));
        });
      }
    }
    if (resuming !== null) await resuming;
    if (resumeFailure !== null) throw resumeFailure;
    record.close = await client.closeStream(CLOSE_TIMEOUT_MS);
  }

  /** After the program: more trailing silence (the bench's), until the endpoints are in. */
  function moreSilence(offset: number): boolean {
    const trailing = context.trailingSilence;
    if (trailing === undefined) return false;
    const trailingMs = ((offset - audio.totalBytes) / BYTES_PER_SECOND) * 1000;
    if (trailingMs >= trailing.maxMs) return false;
    if (trailingMs < trailing.minMs) return true;
    // A Finalize's final closes an utterance as an endpoint's does.
    const closed = record.finals.filter(
      (f) => f.speechFinal || (f.fromFinalize && f.duration > 0),
    ).length;
    return record.speechStarted - closed > 0;
  }

  async function pauseFor(ms: number): Promise<void> {
    const until = performance.now() + ms;
    while (performance.now() < until) {
      await sleepUntil(Math.min(until, performance.now() + KEEPALIVE_EVERY_MS));
      if (performance.now() < until) client.sendJson({ type: "KeepAlive" });
    }
  }

  async function dropAndResume(offlineMs: number): Promise<void> {
    dropping = true;
    record.drops += 1;
    client.drop();
    await new Promise((resolve) => setTimeout(resolve, offlineMs));
    try {
      record.resumePlans.push(await client.resume(context.deadlineMs));
      record.resumes += 1;
    } catch (error) {
      if (error instanceof HandshakeRefused) {
        record.resumeRefusals.push(error.refusal);
        const { status, errCode, errMsg } = error.refusal;
        throw new Error(`resume refused: ${status} ${errCode} ${errMsg}`);
      }
      throw new Error(`resume failed: ${errorText(error)}`);
    } finally {
      dropping = false;
    }
  }
}

function finalOf(
  message: Record<string, unknown>,
  replay: boolean,
  arrivalMs: number,
  sentAt: Float64Array,
  program: Program,
  cpu: Sched | null,
): FinalRecord {
  const channel = message.channel as
    | { alternatives?: { transcript?: unknown; words?: unknown }[] }
    | undefined;
  const alternative = channel?.alternatives?.[0];
  const transcript = alternative?.transcript;
  const start = Number(message.start);
  const duration = Number(message.duration);
  const speechFinal = message.speech_final === true;
  let latencyMs: number | null = null;
  if (!replay && duration > 0) {
    // The span's last byte, in 20-ms units of the stream.
    const lastByte = Math.round((start + duration) * BYTES_PER_SECOND) - 1;
    const sent =
      sentAt[Math.min(sentAt.length - 1, Math.max(0, Math.floor(lastByte / UNIT_BYTES)))];
    const paused = speechFinal ? clientPauseMs(program, lastByte) : 0;
    if (sent !== undefined && sent > 0) latencyMs = arrivalMs - sent - paused;
  }
  return {
    start,
    duration,
    transcript: typeof transcript === "string" ? transcript : "",
    speechFinal,
    fromFinalize: message.from_finalize === true,
    latencyMs,
    replay,
    words: Array.isArray(alternative?.words) ? alternative.words.length : 0,
    arrivalMs,
    sched: cpu,
  };
}
