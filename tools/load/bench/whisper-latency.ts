/**
 * What a person waits for: end of speech → final, through the real service, per dev speech clip
 * streamed at real-time pace in 20 ms frames (whisper-session.ts), in five modes:
 * - `finalize-200ms`: the client's own VAD stops 200 ms after speech and sends Finalize (as
 *   Pipecat's stt-benchmark does: its "time to final segment"); the server keeps its default
 *   endpointing, which that Finalize always beats;
 * - `finalize-200ms-interims`: the same with `interim_results=true`, as Pipecat's Deepgram service
 *   asks by default: the final may find an interim of its utterance in flight;
 * - `endpointing-10`: `endpointing=10` (Deepgram's default), no Finalize: the server's endpoint
 *   final, which comes after a phrase's pause at least (MIN_ENDPOINTING_MS, 256 ms): the replay
 *   ends speech there too, so the end of speech is the end of a phrase, as a person feels it;
 * - `endpointing-300`: `endpointing=300`, no Finalize: the server's endpoint final;
 * - `endpointing-default`: the default endpointing (DEFAULT_ENDPOINTING_MS, 500 ms).
 * EARSHOT_BENCH_MODES (comma-separated names) runs only those modes.
 * End of speech is the end of Silero's last speech frame, replayed in Node over the same stream
 * (vad-node.ts) with the mode's silence run; the client's Finalize goes out right after the 20-ms
 * frame that ends 200 ms after it (FINALIZE_AFTER_MS), which is 200 ms after the frame holding the
 * end of speech was sent, the time latency is measured from. A final answers an utterance when it
 * is of the mode's kind (from_finalize, or speech_final) and ends between the utterance's last
 * speech frame (an early final: decoded from the first silence) and shortly after the decision.
 */

import { DEFAULT_ENDPOINTING_MS } from "../../../src/protocol/option-schema.ts";
import { PHRASE_PAUSE_FRAMES, VAD_FRAME_MS } from "../../../src/vad/vad-machine.ts";
import { pcm16ToFloat } from "../../eval/wav.ts";
import { wordErrorRate } from "../../eval/wer.ts";
import { pcmSeconds, SAMPLE_RATE } from "./clips.ts";
import { fmt, ms, stats } from "./report.ts";
import { type Endpoint, replayEndpoints } from "./vad-node.ts";
import {
  finalEndSample,
  runSession,
  type SessionRun,
  sentAtSample,
  transcriptOf,
} from "./whisper-session.ts";

interface LatencyMode {
  name: string;
  /** Added to the session's query. */
  query: Record<string, string>;
  /** Silence that ends speech for the replay (and for the client's VAD in finalize mode). */
  minSilenceMs: number;
  finalize: boolean;
}

/**
 * The client's Finalize: this long after the end of speech. Pipecat's Silero analyser stops after
 * round(0.2 s / 32 ms) = 6 silent frames (192 ms) and its stt-benchmark measures from that stop
 * minus 200 ms; sending exactly 200 ms after the last speech frame's end is as late as that or
 * later.
 */
const FINALIZE_AFTER_MS = 200;

const LATENCY_MODES: readonly LatencyMode[] = [
  { name: "finalize-200ms", query: {}, minSilenceMs: 200, finalize: true },
  {
    name: "finalize-200ms-interims",
    query: { interim_results: "true" },
    minSilenceMs: 200,
    finalize: true,
  },
  {
    name: "endpointing-10",
    query: { endpointing: "10" },
    minSilenceMs: PHRASE_PAUSE_FRAMES * VAD_FRAME_MS, // MIN_ENDPOINTING_MS (session-config.ts)
    finalize: false,
  },
  { name: "endpointing-300", query: { endpointing: "300" }, minSilenceMs: 300, finalize: false },
  { name: "endpointing-default", query: {}, minSilenceMs: DEFAULT_ENDPOINTING_MS, finalize: false },
];

/** LATENCY_MODES, or those named in EARSHOT_BENCH_MODES. */
function modesToRun(): readonly LatencyMode[] {
  const named = process.env.EARSHOT_BENCH_MODES?.split(",").filter(Boolean);
  if (!named) return LATENCY_MODES;
  const unknown = named.filter((name) => !LATENCY_MODES.some((m) => m.name === name));
  if (unknown.length > 0)
    throw new Error(`EARSHOT_BENCH_MODES: no mode named ${unknown.join(", ")}`);
  return LATENCY_MODES.filter((m) => named.includes(m.name));
}

/** Silence streamed after a clip for the replay: more than any mode's silence run. */
const REPLAY_TAIL_SAMPLES = SAMPLE_RATE;
/** A final may end this long after the replay's decision (the Finalize's frame, VAD alignment). */
const LATE_END_SAMPLES = 0.1 * SAMPLE_RATE;
/** …and this long before the last speech frame's end (one VAD frame of rounding). */
const EARLY_END_SAMPLES = 512;

export interface LatencyClip {
  id: string;
  /** PCM16 LE, 16 kHz mono. */
  pcm: Uint8Array;
  reference: string;
}

interface LatencyUtterance {
  clip: string;
  speechEndS: number;
  /** End of the final's audio, s: before the decision when it was an early final. */
  finalEndS: number;
  early: boolean;
  latencyMs: number;
}

export interface LatencyModeResult {
  mode: string;
  /** Which service answered (LatencyTarget.name). */
  target: string;
  utterances: LatencyUtterance[];
  /** Utterances of the replay that no final of the mode's kind answered. */
  missing: number;
  latencyMs: { n: number; p50: number | null; p95: number | null; max: number | null };
  /** Share of answered utterances whose final came from an early decode. */
  earlyShare: number | null;
  wer: number | null;
}

/** One running copy of the service. */
export interface LatencyTarget {
  name: string;
  url: string;
  cpuPid: number | null;
}

interface LatencyOptions {
  root: string;
  /**
   * The services measured. With more than one, each clip runs on every target in turn, the order
   * alternating clip by clip, so that a slow spell of this shared machine falls on all of them
   * alike: their medians can be compared within the one run.
   */
  targets: readonly LatencyTarget[];
  clips: readonly LatencyClip[];
  /** Epoch ms after which no further clip is started. */
  deadline: number;
  log: (message: string) => void;
}

/** Where the utterance was declared over: the client's Finalize, or the server's endpoint. */
function decisionSample(mode: LatencyMode, endpoint: Endpoint): number {
  return mode.finalize
    ? endpoint.speechEndSample + (FINALIZE_AFTER_MS / 1000) * SAMPLE_RATE
    : endpoint.decidedAtSample;
}

function answer(run: SessionRun, mode: LatencyMode, endpoint: Endpoint, used: Set<number>) {
  return run.finals.findIndex((final, index) => {
    if (used.has(index) || final.duration <= 0) return false;
    if (mode.finalize ? !final.fromFinalize : !final.speechFinal) return false;
    const end = finalEndSample(final);
    return (
      end >= endpoint.speechEndSample - EARLY_END_SAMPLES &&
      end <= decisionSample(mode, endpoint) + LATE_END_SAMPLES
    );
  });
}

interface Tally {
  utterances: LatencyUtterance[];
  missing: number;
  errors: number;
  referenceWords: number;
}

const newTally = (): Tally => ({ utterances: [], missing: 0, errors: 0, referenceWords: 0 });

function addTo(total: Tally, part: Tally): void {
  total.utterances.push(...part.utterances);
  total.missing += part.missing;
  total.errors += part.errors;
  total.referenceWords += part.referenceWords;
}

async function measureClip(
  options: LatencyOptions,
  target: LatencyTarget,
  mode: LatencyMode,
  clip: LatencyClip,
  clipEndpoints: readonly Endpoint[],
): Promise<Tally> {
  const run = await runSession(target.url, clip.pcm, target.cpuPid, {
    query: mode.query,
    finalizeAtSamples: mode.finalize ? clipEndpoints.map((e) => decisionSample(mode, e)) : [],
  });
  const used = new Set<number>();
  const { errors, referenceWords } = wordErrorRate(clip.reference, transcriptOf(run));
  const tally: Tally = { utterances: [], missing: 0, errors, referenceWords };
  for (const endpoint of clipEndpoints) {
    const index = answer(run, mode, endpoint, used);
    const final = run.finals[index];
    if (index < 0 || final === undefined) {
      tally.missing += 1;
      continue;
    }
    used.add(index);
    const speechSent = sentAtSample(run, endpoint.speechEndSample);
    const endSample = finalEndSample(final);
    tally.utterances.push({
      clip: clip.id,
      speechEndS: ms(endpoint.speechEndSample / SAMPLE_RATE),
      finalEndS: ms(endSample / SAMPLE_RATE),
      early: endSample < decisionSample(mode, endpoint) - EARLY_END_SAMPLES,
      latencyMs: ms(final.arrivalMs - speechSent),
    });
  }
  const label = options.targets.length > 1 ? ` [${target.name}]` : "";
  options.log(
    `whisper latency: ${mode.name}${label} ${clip.id} → ${tally.utterances
      .map((u) => `${Math.round(u.latencyMs)} ms${u.early ? " (early)" : ""}`)
      .join(", ")}`,
  );
  return tally;
}

function summary(mode: LatencyMode, target: LatencyTarget, tally: Tally): LatencyModeResult {
  const { utterances } = tally;
  const latency = stats(utterances.map((u) => u.latencyMs));
  return {
    mode: mode.name,
    target: target.name,
    utterances,
    missing: tally.missing,
    latencyMs: { n: latency.n, p50: latency.median, p95: latency.p95, max: latency.max },
    earlyShare:
      utterances.length > 0
        ? ms(utterances.filter((u) => u.early).length / utterances.length)
        : null,
    wer: tally.referenceWords > 0 ? ms(tally.errors / tally.referenceWords) : null,
  };
}

/** A mode's result as table cells: p50 / p95 / max ms, the count, the early share, the WER. */
export function latencyCells({ latencyMs, missing, earlyShare, wer }: LatencyModeResult) {
  return {
    latency: `${fmt(latencyMs.p50)} / ${fmt(latencyMs.p95)} / ${fmt(latencyMs.max)}`,
    n: `${latencyMs.n}${missing > 0 ? ` (${missing} missing)` : ""}`,
    early: `${fmt((earlyShare ?? 0) * 100)}%`,
    wer: fmt(wer, 3),
  };
}

export async function runLatencyModes(options: LatencyOptions): Promise<LatencyModeResult[]> {
  const streams = options.clips.map((clip) => {
    const samples = new Float32Array(clip.pcm.byteLength / 2 + REPLAY_TAIL_SAMPLES);
    samples.set(pcm16ToFloat(clip.pcm));
    return samples;
  });
  const modes = modesToRun();
  const endpoints = new Map<LatencyMode, Endpoint[][]>();
  for (const mode of modes) {
    endpoints.set(mode, await replayEndpoints(options.root, streams, mode.minSilenceMs));
  }
  const tallies = new Map(
    modes.map((mode) => [mode, new Map(options.targets.map((t) => [t.name, newTally()]))]),
  );
  // Clip by clip, every mode in turn (the modes' order rotating from clip to clip) and every
  // target in turn (alternating): a slow spell of this shared machine falls on every mode and
  // target alike, so the modes compare within the run as the targets do.
  clips: for (const [i, clip] of options.clips.entries()) {
    const rotated = [...modes.slice(i % modes.length), ...modes.slice(0, i % modes.length)];
    for (const mode of rotated) {
      const order = i % 2 === 0 ? options.targets : [...options.targets].reverse();
      const ran = new Map<string, Tally>();
      for (const target of order) {
        if (Date.now() + (pcmSeconds(clip.pcm) + 2) * 1000 > options.deadline) {
          options.log(`whisper latency: time budget reached before ${mode.name} ${clip.id}`);
          break clips;
        }
        const clipEndpoints = endpoints.get(mode)?.[i] ?? [];
        ran.set(target.name, await measureClip(options, target, mode, clip, clipEndpoints));
      }
      // A clip counts once every target has run it, so the comparison stays like for like.
      for (const [name, tally] of ran) {
        const total = tallies.get(mode)?.get(name);
        if (total) addTo(total, tally);
      }
    }
  }
  return modes.flatMap((mode) =>
    options.targets.map((target) =>
      summary(mode, target, tallies.get(mode)?.get(target.name) ?? newTally()),
    ),
  );
}
