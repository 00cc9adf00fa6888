/**
 * What each soak session streams and how: its "program". Pure and seeded (the same seed gives the
 * same programs), so a failing run reproduces.
 *
 * A program is a sequence of eval clips in its own order with its own silences between them (a
 * few gaps are so short that two clips merge into one long utterance, which exercises the
 * max-length cut), its own listen options, frame size and auth style, and a behaviour:
 * - realtime: 1× the whole time;
 * - fast: 1.5–2× real time (its program is that much longer, so it lasts as long as the others);
 * - pauses: 1×, with 1–3 stretches of 2–8 s where the client sends nothing but KeepAlive;
 * - resume: 1× with `resumable=true`, losing its TCP connection twice for 0.5–4 s (the
 *   microphone goes on; the backlog is re-sent after the resume): once in mid-utterance, once just
 *   after an utterance's endpoint, so its final is produced while the client is away and must be
 *   replayed.
 * Pauses and drops change *when* audio arrives, never *what* audio: every program's finals must
 * equal those of the same program streamed alone, without pauses or drops.
 */
import { DEFAULT_ENDPOINTING_MS } from "../../../src/protocol/option-schema.ts";
import { seededRandom } from "../../eval/random.ts";

export const SAMPLE_RATE = 16_000;
/** PCM16 mono: 2 bytes a sample, 32 000 bytes a second. */
export const BYTES_PER_SECOND = SAMPLE_RATE * 2;
/** 20 ms of audio (640 bytes): the unit of pacing, pause and drop positions. */
export const UNIT_BYTES = BYTES_PER_SECOND / 50;

export type Behaviour = "realtime" | "fast" | "pauses" | "resume";

export interface Clip {
  id: string;
  /** PCM16 LE, 16 kHz mono. */
  pcm: Uint8Array;
  speech: boolean;
}

/** A stretch of the stream: a clip, or silence (zeros). Byte lengths are whole units. */
export type Segment =
  | { kind: "clip"; clip: string; bytes: number }
  | { kind: "silence"; bytes: number };

export interface Program {
  /** "s07": also the session's name in the report. */
  id: string;
  /** Index into the soak's accounts. */
  account: number;
  behaviour: Behaviour;
  /** Audio seconds sent per wall second while streaming live. */
  pace: number;
  /** Listen query options (resumable is added by the client for resume programs). */
  query: Record<string, string>;
  auth: "header" | "subprotocol";
  /** Bytes per binary frame: 20, 40 or 100 ms of audio. */
  frameBytes: number;
  segments: Segment[];
  totalBytes: number;
  /** Before sending byte `atByte`, send nothing for `ms` (KeepAlive meanwhile). */
  pauses: { atByte: number; ms: number }[];
  /** Right after sending byte `atByte - 1`, lose the connection for `offlineMs`, then resume. */
  drops: { atByte: number; offlineMs: number; kind: "mid-utterance" | "after-endpoint" }[];
}

export interface ProgramOptions {
  clips: Clip[];
  /** Sessions per account: the accounts' limits (every account is filled to its limit). */
  sessionsPerAccount: number[];
  /** Wall seconds each session streams for (its program's audio at its pace, plus pauses). */
  seconds: number;
  seed: number;
  /** Resume programs, or plain realtime ones in their place (a server without resume). */
  resume: boolean;
  /** Pace of every fast program; null: 1.5× or 2× by the seed. */
  fastPace?: number | null;
}

/** Which behaviour the i-th session of an account gets: a fixed rotation, so every mix has all. */
const ROTATION: readonly Behaviour[] = [
  "realtime",
  "resume",
  "pauses",
  "realtime",
  "fast",
  "resume",
  "pauses",
  "realtime",
];

/** Gaps between clips: mostly 0.3–2 s (utterances end by endpointing)… */
const GAP_MIN_S = 0.3;
const GAP_MAX_S = 2;
/** …and with this probability 40–120 ms, too short to end an utterance: two clips merge. */
const MERGE_PROBABILITY = 0.12;

const units = (seconds: number) => Math.max(1, Math.round(seconds * 50));

export function buildPrograms(options: ProgramOptions): Program[] {
  const { clips, seconds, seed } = options;
  if (clips.length === 0) throw new Error("no clips");
  const programs: Program[] = [];
  let index = 0;
  options.sessionsPerAccount.forEach((count, account) => {
    for (let i = 0; i < count; i++) {
      const random = seededRandom(seed * 1_000_003 + index * 7919 + 17);
      const pick = <T>(values: readonly T[]): T => {
        const value = values[Math.floor(random() * values.length)];
        if (value === undefined) throw new Error("pick from an empty list");
        return value;
      };
      // Rotated by account too, so accounts with few sessions still see every behaviour.
      let behaviour = ROTATION[(i + account * 3) % ROTATION.length] ?? "realtime";
      if (behaviour === "resume" && !options.resume) behaviour = "realtime";
      const seededFast = pick([1.5, 2]);
      const pace = behaviour === "fast" ? (options.fastPace ?? seededFast) : 1;

      const pauses: Program["pauses"] = [];
      let pausedMs = 0;
      if (behaviour === "pauses") {
        const n = 1 + Math.floor(random() * 3);
        for (let p = 0; p < n; p++) {
          const ms = units(2 + random() * 6) * 20;
          pauses.push({ atByte: 0, ms });
          pausedMs += ms;
        }
      }
      const audioSeconds = Math.max(5, (seconds - pausedMs / 1000) * pace);
      const segments = sequence(clips, audioSeconds, random);
      const totalBytes = segments.reduce((n, s) => n + s.bytes, 0);

      // Pauses anywhere in the first 90 % (inside an utterance or between).
      for (const pause of pauses) {
        pause.atByte = units((random() * 0.9 * totalBytes) / BYTES_PER_SECOND) * UNIT_BYTES;
      }
      pauses.sort((a, b) => a.atByte - b.atByte);
      const query: Record<string, string> = {
        encoding: "linear16",
        sample_rate: String(SAMPLE_RATE),
        vad_events: "true",
      };
      if (random() < 0.5) {
        query.interim_results = "true";
        if (random() < 0.5) query.utterance_end_ms = "1000";
      }
      const endpointing = pick([null, null, 300, 800]);
      if (endpointing !== null) query.endpointing = String(endpointing);
      if (random() < 0.2) query.model = "nova-3";
      const drops =
        behaviour === "resume"
          ? dropPoints(segments, clips, endpointing ?? DEFAULT_ENDPOINTING_MS, random)
          : [];

      programs.push({
        id: `s${String(index + 1).padStart(2, "0")}`,
        account,
        behaviour,
        pace,
        query,
        auth: random() < 0.3 ? "subprotocol" : "header",
        frameBytes: pick([1, 1, 2, 5]) * UNIT_BYTES,
        segments,
        totalBytes,
        pauses,
        drops,
      });
      index += 1;
    }
  });
  return programs;
}

/** Clips in a shuffled order (cycled), with silences between, until `seconds` of audio. */
function sequence(clips: Clip[], seconds: number, random: () => number): Segment[] {
  const order = clips.map((clip) => clip.id);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] ?? "", order[i] ?? ""];
  }
  const byId = new Map(clips.map((clip) => [clip.id, clip]));
  const target = seconds * BYTES_PER_SECOND;
  const segments: Segment[] = [{ kind: "silence", bytes: units(random()) * UNIT_BYTES }];
  let total = segments[0]?.bytes ?? 0;
  for (let i = 0; total < target; i++) {
    const id = order[i % order.length] ?? "";
    const clip = byId.get(id);
    if (clip === undefined) throw new Error(`no clip ${id}`);
    // Whole units only: the clip's tail past the last 20 ms boundary is left out.
    const bytes = Math.floor(clip.pcm.byteLength / UNIT_BYTES) * UNIT_BYTES;
    segments.push({ kind: "clip", clip: id, bytes });
    const gap =
      random() < MERGE_PROBABILITY
        ? 0.04 + random() * 0.08
        : GAP_MIN_S + random() * (GAP_MAX_S - GAP_MIN_S);
    const silence = units(gap) * UNIT_BYTES;
    segments.push({ kind: "silence", bytes: silence });
    total += bytes + silence;
  }
  return segments;
}

/**
 * After the endpoint, the drop comes 160 ms later: 5 VAD frames for the VAD's own notion of where
 * speech ended, yet before the next clip.
 */
const AFTER_ENDPOINT_MS = 160;

/**
 * Two drops, not in the first 10 s: one in the middle 30–70 % of a speech clip in the first half
 * of the program, one just after the endpoint of a speech clip in the second half (one followed
 * by a silence long enough that the drop falls inside it), or mid-utterance if there is none.
 */
function dropPoints(
  segments: Segment[],
  clips: Clip[],
  endpointingMs: number,
  random: () => number,
): Program["drops"] {
  const speech = new Set(clips.filter((clip) => clip.speech).map((clip) => clip.id));
  const total = segments.reduce((n, s) => n + s.bytes, 0);
  const afterMs = endpointingMs + AFTER_ENDPOINT_MS;
  const middles: number[][] = [[], []];
  const ends: number[] = [];
  let at = 0;
  segments.forEach((segment, i) => {
    const next = segments[i + 1];
    if (segment.kind === "clip" && speech.has(segment.clip) && at > 10 * BYTES_PER_SECOND) {
      const half = at < total / 2 ? 0 : 1;
      const inside = (0.3 + 0.4 * random()) * segment.bytes;
      middles[half]?.push(at + Math.floor(inside / UNIT_BYTES) * UNIT_BYTES);
      const quiet = next?.kind === "silence" ? (next.bytes / BYTES_PER_SECOND) * 1000 : 0;
      if (half === 1 && quiet >= afterMs + 200) {
        ends.push(at + segment.bytes + units(afterMs / 1000) * UNIT_BYTES);
      }
    }
    at += segment.bytes;
  });
  const choose = (values: number[] | undefined) =>
    values === undefined || values.length === 0
      ? undefined
      : values[Math.floor(random() * values.length)];
  const drops: Program["drops"] = [];
  const offlineMs = () => units(0.5 + random() * 3.5) * 20;
  const first = choose(middles[0]);
  if (first !== undefined)
    drops.push({ atByte: first, offlineMs: offlineMs(), kind: "mid-utterance" });
  const after = choose(ends);
  const second = after ?? choose(middles[1]);
  if (second !== undefined) {
    drops.push({
      atByte: second,
      offlineMs: offlineMs(),
      kind: after === undefined ? "mid-utterance" : "after-endpoint",
    });
  }
  return drops;
}

/** Reads the program's stream: bytes [offset, offset + length) (clipped at its end). */
export class ProgramAudio {
  readonly #segments: { start: number; segment: Segment }[] = [];
  readonly #clips: Map<string, Clip>;
  readonly totalBytes: number;

  constructor(program: Program, clips: Clip[]) {
    this.#clips = new Map(clips.map((clip) => [clip.id, clip]));
    let start = 0;
    for (const segment of program.segments) {
      this.#segments.push({ start, segment });
      start += segment.bytes;
    }
    this.totalBytes = start;
  }

  read(offset: number, length: number): Uint8Array {
    const end = Math.min(this.totalBytes, offset + length);
    const out = new Uint8Array(Math.max(0, end - offset));
    for (const { start, segment } of this.#segments) {
      const segmentEnd = start + segment.bytes;
      if (segmentEnd <= offset || start >= end || segment.kind === "silence") continue;
      const clip = this.#clips.get(segment.clip);
      if (clip === undefined) throw new Error(`no clip ${segment.clip}`);
      const from = Math.max(offset, start);
      const to = Math.min(end, segmentEnd);
      out.set(clip.pcm.subarray(from - start, to - start), from - offset);
    }
    return out;
  }
}

/** One line per program for the log: behaviour, pace, audio length, options that vary. */
export function describeProgram(program: Program): string {
  const seconds = (program.totalBytes / BYTES_PER_SECOND).toFixed(0);
  const options = Object.entries(program.query)
    .filter(([name]) => !["encoding", "sample_rate", "vad_events"].includes(name))
    .map(([name, value]) => `${name}=${value}`)
    .join(" ");
  const extras = [
    ...program.pauses.map(
      (p) => `pause ${(p.ms / 1000).toFixed(1)}s@${(p.atByte / BYTES_PER_SECOND).toFixed(1)}s`,
    ),
    ...program.drops.map(
      (d) =>
        `drop ${(d.offlineMs / 1000).toFixed(1)}s@${(d.atByte / BYTES_PER_SECOND).toFixed(1)}s ${d.kind}`,
    ),
  ].join(", ");
  return `${program.id} acct${program.account} ${program.behaviour} ${program.pace}× ${seconds}s audio, ${(program.frameBytes / UNIT_BYTES) * 20}ms frames, ${program.auth}${options ? `, ${options}` : ""}${extras ? `, ${extras}` : ""}`;
}

/**
 * The program's pauses (ms) that fall between a speech final's last byte and the end of the
 * silence its endpoint needed: the server could not decide before that audio came, so the wait
 * was the client's. (A program pausing right after a sentence made a 5.7-s "late final" of a
 * 5.2-s pause.) Drops are not counted: a mid-utterance drop falls inside the span, and an
 * after-endpoint drop after the decision.
 */
export function clientPauseMs(program: Pick<Program, "pauses" | "query">, lastByte: number) {
  const endpointingMs = Number(program.query.endpointing ?? DEFAULT_ENDPOINTING_MS);
  const decidedByte = lastByte + (endpointingMs / 1000) * BYTES_PER_SECOND;
  return program.pauses
    .filter((pause) => pause.atByte > lastByte && pause.atByte <= decidedByte)
    .reduce((total, pause) => total + pause.ms, 0);
}
