/**
 * Bench section "whisper": the real service, end to end, against the goals.
 *
 * 1. Setup (idempotent): models prepared and seeded into the bench's own local R2
 *    (`node tools/models/cli.ts --persist-to bench-results/whisper-state`), D1 migrated with the
 *    demo account (`node tools/dev/setup.ts --persist-to …`).
 * 2. Service (whisper-service.ts): wrangler.toml's worker in workerd; a cold session, then every
 *    dev clip, one session at a time, PCM16 in 20 ms frames at real-time pace, silence after it
 *    until its finals are in. Latency of each endpoint final, from two moments:
 *    - speech end: when the frame holding the utterance's last speech sample was sent (what a
 *      speaker feels: the default endpointing wait + the server's work + loopback);
 *    - window end: when the frame completing the endpointing silence was sent (the server's own
 *      work: VAD of that frame, scheduling, mel, encoder, decoding, the Results frame, loopback).
 *    The last speech sample comes from replaying the server's VAD in Node (vad-node.ts), matched
 *    to each final by where the final ends. Then the latency modes (whisper-latency.ts).
 * 3. Memory and in-isolate compute (whisper-memory.ts): the production model code in a bench
 *    worker, over exactly the audio each final covered, then a 15-s and a 28-s utterance.
 */
import path from "node:path";
import { DEFAULT_ENDPOINTING_MS } from "../../../src/protocol/option-schema.ts";
import { MAX_UTTERANCE_SECONDS } from "../../../src/session/caps.ts";
import { msToFrames } from "../../../src/vad/vad-machine.ts";
import { pcm16ToFloat } from "../../eval/wav.ts";
import { wordErrorRate } from "../../eval/wer.ts";
import { prepareState } from "../dev-worker.ts";
import type { HeapUsage } from "../inspector.ts";
import { type EvalClip, loadClips, SAMPLE_RATE } from "./clips.ts";
import {
  type BenchContext,
  fmt,
  MiB,
  median,
  ms,
  msOrNull,
  type Section,
  type SectionResult,
  type Settled,
  settle,
  stats,
  sum,
  type Table,
} from "./report.ts";
import { type Endpoint, replayEndpoints, VAD_FRAME_SAMPLES } from "./vad-node.ts";
import { latencyCells } from "./whisper-latency.ts";
import { type MemoryRun, runMemoryWorker, type Utterance } from "./whisper-memory.ts";
import { PERSIST_DIR, runService, type ServiceRun } from "./whisper-service.ts";
import {
  FRAME_SAMPLES,
  finalEndSample,
  frameOf,
  type SessionRun,
  sentAtSample,
  transcriptOf,
} from "./whisper-session.ts";

/** The default endpointing's silence run: 500 ms → 16 VAD frames of 512 samples. */
const ENDPOINT_SILENCE_SAMPLES = msToFrames(DEFAULT_ENDPOINTING_MS) * VAD_FRAME_SAMPLES;
/** Finals and replayed endpoints match when their ends differ by at most the 1 ms rounding. */
const MATCH_TOLERANCE_SAMPLES = 16;
/** An early final may end up to one VAD frame before the replay's last speech frame ends. */
const EARLY_END_TOLERANCE_SAMPLES = 512;
/** The latency goal applies to utterances of at most this many seconds. */
const GOAL_UTTERANCE_SECONDS = 10;
/**
 * The 28-s utterance of the heap goal, and one of MAX_UTTERANCE_SECONDS (the longest final the
 * service makes): these speech clips joined, cut to length.
 */
const LONG_SECONDS = 28;
const LONG_CLIPS = [
  "wcpp_jfk.wav",
  "lhotse_2412_153948_0000.wav",
  "psx_librivox_0870.wav",
  "sb_lj050_0131.wav",
];
const MB = 1_000_000;

const GOALS = {
  latencyP50Ms: 300,
  latencyP95Ms: 600,
  rtf: 0.06,
  coldLoadMs: 1000,
  /** MB = 10^6 bytes (the stricter reading of "80 MB"). */
  heapBytes: 80 * MB,
  isolateBytes: 120 * MB,
  wer: 0.1,
};

/** The latency modes' own goals (whisper-latency.ts), p50 and p95 in ms. */
const LATENCY_MODE_GOALS: Record<string, { p50: number; p95: number }> = {
  "finalize-200ms": { p50: 250, p95: 350 },
  "endpointing-300": { p50: 400, p95: 550 },
};

/** How each figure is measured: the JSON's `method`. */
const METHOD = {
  service:
    "src/index.ts + wrangler.toml in workerd (wrangler unstable_startWorker, no file watching), " +
    "EARSHOT_TRANSCRIBER=whisper, models from its local R2; one /v1/listen WebSocket per clip, " +
    `one at a time; PCM16 16 kHz in ${(1000 * FRAME_SAMPLES) / SAMPLE_RATE} ms frames sent on ` +
    "an absolute wall-clock schedule (frame i at t0 + (i+1)·20 ms), then silence at the same " +
    "pace until every SpeechStarted has its endpoint final (≥ 1 s, ≤ 8 s), then CloseStream; " +
    `default endpointing (${DEFAULT_ENDPOINTING_MS} ms = ${msToFrames(DEFAULT_ENDPOINTING_MS)} ` +
    "VAD frames); interim_results off",
  latency_from_speech_end:
    "final arrival − send time of the frame holding the utterance's last speech sample (VAD " +
    "probability ≥ 0.5, replayed in Node with the same model and state machine and matched to " +
    "the final's end); includes the endpointing wait: what a speaker feels",
  latency_from_window_end:
    "final arrival − send time of the frame completing the endpointing window (the last sample " +
    "the final covers, start + duration): the server's own work (VAD of that frame, queueing, " +
    "log-mel, encoder, decoding, Results) + loopback WebSocket transit",
  rtf_worker:
    "transcribe() wall time inside a bench worker in workerd " +
    "(tools/load/bench/whisper-worker.ts, same model code and R2 objects) on exactly the audio " +
    "each final covered, between two I/O boundaries / the final's duration; the goal is judged " +
    "on this",
  rtf_upper:
    "latency from window end / the final's duration: an upper bound (adds queueing, VAD, I/O)",
  rtf_cpu:
    "CPU time of the worker's workerd process (/proc schedstat, all threads) between the " +
    "window-end frame's send and the final's arrival / the final's duration",
  cold_load:
    "handshake of the first session after the worker started (the session DO awaits the " +
    "Whisper load from R2 before answering 101) − median warm handshake",
  heap:
    "ORT's WebAssembly.Memory byte length (wasmHeapBytes(), src/runtime/ort.ts) in the bench " +
    "worker after Silero + Whisper loaded, after every final's audio, after a 15-s (the " +
    "service's longest final) and a 28-s utterance; it never shrinks, so the last reading is " +
    "the peak. The real service's heap is read at the end through the inspector (every " +
    "WebAssembly.Memory in its isolate)",
  isolate_total:
    "wasm heap + V8 JS heap committed (Runtime.getHeapUsage totalSize) + ArrayBuffer backing " +
    "stores, read through wrangler's inspector after the timed runs: 'live' after a forced " +
    "GC (HeapProfiler.collectGarbage), 'at rest' before it (garbage of the last calls " +
    "included); buffers alive only inside a call are not visible from the inspector. The " +
    "goal is judged on 'live' with the 28-s heap. The workerd process RSS (baseline, end, " +
    "peak) is given beside it: it also holds workerd itself, allocator slack and code",
};

/** The session's stream as the server received it: the clip, then zeros up to what was sent. */
function streamOf(clip: EvalClip, run: SessionRun): Float32Array {
  const out = new Float32Array(run.audioBytes / 2);
  out.set(pcm16ToFloat(clip.pcm).subarray(0, out.length));
  return out;
}

/** The service's figures for one clip's session; `workerMs` is the bench worker's time by final. */
function analyseClip(
  clip: EvalClip,
  run: SessionRun,
  endpoints: Endpoint[],
  workerMs: Map<string, number>,
) {
  const { row } = clip;
  const utterances = run.finals.flatMap((final, index) => {
    if (!final.speechFinal) return [];
    const endSample = finalEndSample(final);
    // An early final (decoded from the first silence) ends before the endpoint's decision, from
    // the last speech frame on.
    const match = endpoints.find(
      (e) =>
        endSample >= e.speechEndSample - EARLY_END_TOLERANCE_SAMPLES &&
        endSample <= e.decidedAtSample + MATCH_TOLERANCE_SAMPLES,
    );
    const speechEndSample = match?.speechEndSample ?? endSample - ENDPOINT_SILENCE_SAMPLES;
    const arrival = final.arrivalMs;
    const windowEndSample = match?.decidedAtSample ?? endSample;
    // The worker's workerd between the window end and the final's arrival: CPU time, and time
    // runnable but waiting for a CPU (other load on the machine).
    const atWindow = run.schedAt[frameOf(run, windowEndSample)] ?? null;
    const spent =
      final.sched === null || atWindow === null
        ? null
        : {
            cpuMs: final.sched.cpuMs - atWindow.cpuMs,
            waitMs: final.sched.waitMs - atWindow.waitMs,
          };
    const fromWindow = arrival - sentAtSample(run, windowEndSample);
    const worker = workerMs.get(`${row.id}#${index}`);
    return [
      {
        start: final.start,
        duration: final.duration,
        words: final.words,
        speechEndSource: match ? "vad-replay" : "window-minus-endpointing",
        latencyFromSpeechEndMs: ms(arrival - sentAtSample(run, speechEndSample)),
        latencyFromWindowEndMs: ms(fromWindow),
        rtfUpper: ms(fromWindow / 1000 / final.duration),
        cpuMs: spent === null ? null : ms(spent.cpuMs),
        runQueueWaitMs: spent === null ? null : ms(spent.waitMs),
        rtfCpu: spent === null ? null : ms(spent.cpuMs / 1000 / final.duration),
        rtfWorker: worker === undefined ? null : ms(worker / 1000 / final.duration),
      },
    ];
  });
  const transcript = transcriptOf(run);
  const score = row.category === "speech" ? wordErrorRate(row.reference, transcript) : null;
  return {
    id: row.id,
    category: row.category,
    seconds: row.duration,
    reference: row.reference,
    transcript,
    words: sum(run.finals.map((f) => f.words)),
    wer: score && {
      errors: score.errors,
      referenceWords: score.referenceWords,
      wer: ms(score.wer),
    },
    handshakeMs: ms(run.handshakeMs),
    finals: run.finals.length,
    cutFinals: run.finals.filter((f) => !f.speechFinal && !f.fromFinalize).length,
    finalizeFinals: run.finals.filter((f) => f.fromFinalize && f.duration > 0).length,
    missingFinals: Math.max(0, run.speechStarted - run.finals.filter((f) => f.speechFinal).length),
    closeCode: run.close?.code ?? null,
    utterances,
  };
}

/** The audio of every final with audio, labelled `<clip>#<index of the final>`. */
function finalSegments(clips: Map<string, EvalClip>, service: ServiceRun): Utterance[] {
  const out: Utterance[] = [];
  for (const { id, run } of service.runs) {
    const clip = clips.get(id);
    if (!clip) continue;
    const stream = streamOf(clip, run);
    for (const [index, final] of run.finals.entries()) {
      const from = Math.round(final.start * SAMPLE_RATE);
      const to = finalEndSample(final);
      if (to > from) out.push({ label: `${id}#${index}`, samples: stream.slice(from, to) });
    }
  }
  return out;
}

function longUtterance(byFile: Map<string, EvalClip>, seconds: number): Utterance {
  const parts = LONG_CLIPS.map((file) => {
    const clip = byFile.get(file);
    if (!clip) throw new Error(`the 28-s utterance needs ${file} in the eval set`);
    return pcm16ToFloat(clip.pcm);
  });
  const samples = new Float32Array(seconds * SAMPLE_RATE);
  let at = 0;
  for (const part of parts) {
    if (at >= samples.length) break;
    samples.set(part.subarray(0, samples.length - at), at);
    at += part.length;
  }
  return { label: `${seconds}-s utterance (${LONG_CLIPS.join(" + ")})`, samples };
}

/** What the section measured. */
interface Measured {
  clips: EvalClip[];
  service: ServiceRun;
  /** The replayed endpoints of each of `service.runs`. */
  endpoints: Endpoint[][];
  memory: Settled<MemoryRun>;
}

const numbers = (values: readonly (number | null)[]) =>
  values.filter((v): v is number => v !== null);
const mib = (bytes: number | null | undefined) =>
  bytes === null || bytes === undefined ? "-" : `${(bytes / MiB).toFixed(1)} MiB`;
const atMost = (value: number | null, limit: number) => value !== null && value <= limit;
const goal = (goal: string, value: number | null, met: boolean) => ({ goal, value, met });

/**
 * Isolate total: the WebAssembly memories (ORT's heap, which never shrinks: its peak; and in the
 * bench worker the projection kernel's, which wasmHeapBytes() does not count) + V8's committed JS
 * heap + ArrayBuffer backing stores. "live": after a forced GC; "at rest": before it, garbage of
 * the last calls included (the transient buffers inside a call are not visible from the
 * inspector). The service's reading already sums every WebAssembly.Memory of its isolate.
 */
const isolateTotal = (wasm: number | null, js: HeapUsage | undefined) =>
  wasm === null || js === undefined ? null : wasm + js.totalBytes + js.backingStoreBytes;

/** Where the in-isolate time of the speech finals' audio goes (the bench worker's stats). */
function workerBreakdown(segments: MemoryRun["utterances"]) {
  const audioSeconds = sum(segments.map((u) => u.audioSeconds));
  const perAudioSecond = (pick: (u: (typeof segments)[number]) => number) =>
    audioSeconds > 0 ? ms(sum(segments.map(pick)) / audioSeconds) : null;
  const steps = sum(segments.map((u) => u.decoderSteps));
  return {
    mel_ms_per_audio_s: perAudioSecond((u) => u.melMs),
    encoder_ms_per_audio_s: perAudioSecond((u) => u.encoderMs),
    decoder_ms_per_audio_s: perAudioSecond((u) => u.decoderMs),
    decoder_ms_per_step: steps > 0 ? ms(sum(segments.map((u) => u.decoderMs)) / steps) : null,
    decoder_steps: steps,
    audio_seconds: ms(audioSeconds),
    note:
      "transcribe() stats in the bench worker; the encoder sees the utterance + 1 s of padding, " +
      "the decoder runs one step per token (prompt included)",
  };
}

/**
 * The section's JSON, and what its table shows beside it: the goals by name, and the few figures
 * the table prints unrounded (the JSON rounds them to 0.1 µs).
 */
function report({ clips, service, endpoints, memory: memoryRun }: Measured) {
  const { value: memory, error: memoryError } = memoryRun;
  const byId = new Map(clips.map((c) => [c.row.id, c]));
  const workerMs = new Map((memory?.utterances ?? []).map((u) => [u.label, u.ms]));
  const results = service.runs.map(({ id, run }, i) => {
    const clip = byId.get(id);
    if (!clip) throw new Error(`no clip ${id}`);
    return analyseClip(clip, run, endpoints[i] ?? [], workerMs);
  });
  const speech = results.filter((r) => r.category === "speech");
  const noSpeech = results.filter((r) => r.category !== "speech");
  const utterances = speech.flatMap((r) => r.utterances);
  const short = utterances.filter((u) => u.duration <= GOAL_UTTERANCE_SECONDS);
  const errors = sum(speech.map((r) => r.wer?.errors ?? 0));
  const referenceWords = sum(speech.map((r) => r.wer?.referenceWords ?? 0));
  const wer = referenceWords > 0 ? errors / referenceWords : Number.NaN;
  const noSpeechWords = sum(noSpeech.map((r) => r.words));

  const warmHandshakes = results.map((r) => r.handshakeMs);
  const coldHandshake = service.cold.run.handshakeMs;
  const warmMedian = median(warmHandshakes);
  const coldLoad = coldHandshake - warmMedian;
  const coldClip = byId.get(service.cold.clip);
  const coldLatencies = coldClip
    ? analyseClip(coldClip, service.cold.run, [], new Map()).utterances.map(
        (u) => u.latencyFromWindowEndMs,
      )
    : [];

  const rtfWorker = stats(numbers(utterances.map((u) => u.rtfWorker)));
  const waits = numbers(utterances.map((u) => u.runQueueWaitMs));
  // The bench worker's run of the speech finals' audio (the clock advances locally, see worker).
  const speechSegments = (memory?.utterances ?? []).filter((u) =>
    speech.some((r) => u.label.startsWith(`${r.id}#`)),
  );
  const rtfWorkerAggregate =
    speechSegments.length > 0
      ? sum(speechSegments.map((u) => u.ms)) / 1000 / sum(speechSegments.map((u) => u.audioSeconds))
      : null;

  const heapDevPeak = memory
    ? Math.max(
        0,
        ...memory.utterances.map((u) => u.heapBytes ?? 0),
        memory.load.heapAfterLoadBytes ?? 0,
      )
    : null;
  const heapMax = memory?.long[0]?.heapBytes ?? null;
  const heapLong = memory?.long[1]?.heapBytes ?? null;
  const serviceHeap = service.wasmMemoriesBytes ? sum(service.wasmMemoriesBytes) : null;
  const kernel = memory?.load.projectionBytes ?? 0;
  const workerWasm = heapLong === null ? null : heapLong + kernel;
  const isolateLive = isolateTotal(workerWasm, memory?.isolate?.afterGc);

  const latencyWindowShort = stats(short.map((u) => u.latencyFromWindowEndMs));
  const windowShortGoal = `(window end, utterances ≤ ${GOAL_UTTERANCE_SECONDS} s)`;
  const goals = {
    latencyP50: goal(
      `final latency p50 ≤ ${GOALS.latencyP50Ms} ms ${windowShortGoal}`,
      latencyWindowShort.median,
      atMost(latencyWindowShort.median, GOALS.latencyP50Ms),
    ),
    latencyP95: goal(
      `final latency p95 ≤ ${GOALS.latencyP95Ms} ms ${windowShortGoal}`,
      latencyWindowShort.p95,
      atMost(latencyWindowShort.p95, GOALS.latencyP95Ms),
    ),
    rtf: goal(
      `RTF of finals ≤ ${GOALS.rtf} (in-isolate transcribe() time, median per utterance)`,
      rtfWorker.median,
      atMost(rtfWorker.median, GOALS.rtf),
    ),
    coldLoad: goal(
      `cold model load ≤ ${GOALS.coldLoadMs} ms (cold − warm handshake)`,
      ms(coldLoad),
      coldLoad <= GOALS.coldLoadMs,
    ),
    heap: goal(
      "WASM heap peak ≤ 80 MB (10^6 B) with VAD + Whisper, incl. a 28-s utterance",
      heapLong,
      atMost(heapLong, GOALS.heapBytes),
    ),
    isolate: goal(
      "isolate total < 120 MB (wasm heap peak incl. 28-s + JS heap committed + backing " +
        "stores, live after GC)",
      isolateLive,
      isolateLive !== null && isolateLive < GOALS.isolateBytes,
    ),
    wer: goal(`WER ≤ ${GOALS.wer} on the dev speech clips`, msOrNull(wer), wer <= GOALS.wer),
    noSpeechWords: goal("0 words on the no-speech clips", noSpeechWords, noSpeechWords === 0),
  };

  const json = {
    method: METHOD,
    goals: Object.values(goals),
    overall: {
      speech_clips: speech.length,
      utterances: utterances.length,
      utterances_le_10s: short.length,
      latency_from_speech_end_ms: stats(utterances.map((u) => u.latencyFromSpeechEndMs)),
      latency_from_window_end_ms: stats(utterances.map((u) => u.latencyFromWindowEndMs)),
      latency_from_speech_end_ms_le_10s: stats(short.map((u) => u.latencyFromSpeechEndMs)),
      latency_from_window_end_ms_le_10s: latencyWindowShort,
      rtf_worker: { ...rtfWorker, aggregate: msOrNull(rtfWorkerAggregate) },
      rtf_upper: stats(utterances.map((u) => u.rtfUpper)),
      rtf_cpu: stats(numbers(utterances.map((u) => u.rtfCpu))),
      run_queue_wait_ms: { ...stats(waits), total: ms(sum(waits)) },
      run_queue_wait_note:
        "time the worker's workerd was runnable but not on a CPU between window end and final " +
        "(other load on this shared 2-core machine), included in the latencies",
      worker_breakdown: workerBreakdown(speechSegments),
      speech_end_from_vad_replay: utterances.filter((u) => u.speechEndSource === "vad-replay")
        .length,
      wer: { errors, reference_words: referenceWords, wer: msOrNull(wer) },
      no_speech_words: noSpeechWords,
      missing_finals: sum(results.map((r) => r.missingFinals)),
      cut_finals: sum(results.map((r) => r.cutFinals)),
      skipped_clips: service.skipped,
    },
    cold: {
      clip: service.cold.clip,
      handshake_ms: ms(coldHandshake),
      warm_handshake_ms: stats(warmHandshakes),
      load_ms: ms(coldLoad),
      first_finals_latency_from_window_end_ms: coldLatencies,
      bench_worker_load_ms: memory ? ms(memory.load.vadMs + memory.load.whisperMs) : null,
      bench_worker_vad_load_ms: memory ? ms(memory.load.vadMs) : null,
      bench_worker_whisper_load_ms: memory ? ms(memory.load.whisperMs) : null,
      r2_read_and_hash_ms: memory ? ms(memory.read.ms) : null,
      r2_read_and_hash_note:
        "the manifest's objects read from R2 and SHA-256-hashed again after the load (warm local " +
        "R2): the share of the load that is not ORT session creation",
      bench_worker_load_note:
        "loadSilero() + loadWhisper() + createWhisperModel() timed inside the bench worker: R2 " +
        "reads, SHA-256 checks, ORT session creation",
    },
    memory: {
      bench_worker: memory && {
        heap_before_bytes: memory.load.heapBeforeBytes,
        heap_after_vad_bytes: memory.load.heapAfterVadBytes,
        heap_after_load_bytes: memory.load.heapAfterLoadBytes,
        projection_kernel_bytes: memory.load.projectionBytes,
        heap_peak_dev_utterances_bytes: heapDevPeak,
        heap_after_28s_bytes: heapLong,
        longest_dev_utterance_s: ms(Math.max(0, ...memory.utterances.map((u) => u.audioSeconds))),
        heap_after_service_max_utterance_bytes: heapMax,
        service_max_utterance_s: MAX_UTTERANCE_SECONDS,
        long_utterances: memory.long.map((u) => ({
          label: u.label,
          ms: ms(u.ms),
          rtf: ms(u.ms / 1000 / u.audioSeconds),
          heap_bytes: u.heapBytes,
          text: u.text,
        })),
        js_heap: memory.isolate,
        isolate_total_live_bytes: isolateLive,
        isolate_total_at_rest_bytes: isolateTotal(workerWasm, memory.isolate?.atEnd),
        isolate_error: memory.isolateError,
        process: memory.process,
      },
      bench_worker_error: memoryError,
      service: {
        wasm_memories_bytes: service.wasmMemoriesBytes,
        js_heap: service.jsHeap,
        isolate_total_live_bytes: isolateTotal(serviceHeap, service.jsHeap?.afterGc),
        isolate_total_at_rest_bytes: isolateTotal(serviceHeap, service.jsHeap?.atEnd),
        process: service.memory,
        inspector_error: service.inspectorError,
      },
    },
    latency: service.latency,
    latency_error: service.latencyError,
    early_finals: process.env.EARSHOT_BENCH_EARLY_FINALS !== "off",
    latency_note:
      "end of speech (Silero's last speech frame, replayed) → final, per utterance, clips at " +
      "real-time pace in 20 ms frames: finalize-200ms = the client sends Finalize 200 ms after " +
      "speech (Pipecat's measurement); early_share = finals decoded from the first silence",
    clips: results,
  };

  const unrounded = { coldLoad, coldHandshake, warmMedian, readMs: memory?.read.ms, wer };
  return { json, goals, unrounded };
}

/**
 * The table: the JSON's figures against their goals. Figures the JSON rounds and the table prints
 * as they were measured come from `unrounded`.
 */
function tableOf({ json, goals, unrounded }: ReturnType<typeof report>): Table {
  const { overall, memory } = json;
  const worker = memory.bench_worker;
  const breakdown = overall.worker_breakdown;
  const service = memory.service;
  const serviceHeap = service.wasm_memories_bytes && sum(service.wasm_memories_bytes);
  const { coldLoad, coldHandshake, warmMedian } = unrounded;
  const windowEndShort = overall.latency_from_window_end_ms_le_10s;
  /** The detail, goal and met cells of a goal's row. */
  const against = (goal: keyof typeof goals, limit: string) => [
    "",
    limit,
    goals[goal].met ? "met" : "NOT met",
  ];
  const medianP95 = (s: { median: number | null; p95: number | null }) =>
    `${fmt(s.median)} / ${fmt(s.p95)}`;
  const perAudioSecond = [
    breakdown.mel_ms_per_audio_s,
    breakdown.encoder_ms_per_audio_s,
    breakdown.decoder_ms_per_audio_s,
  ];
  const rows: string[][] = [
    [
      "latency speech end → final, p50 / p95 ms (≤ 10 s)",
      medianP95(overall.latency_from_speech_end_ms_le_10s),
    ],
    [
      "latency window end → final, p50 ms (≤ 10 s)",
      fmt(windowEndShort.median),
      ...against("latencyP50", `≤ ${GOALS.latencyP50Ms}`),
    ],
    [
      "latency window end → final, p95 ms (≤ 10 s)",
      fmt(windowEndShort.p95),
      ...against("latencyP95", `≤ ${GOALS.latencyP95Ms}`),
    ],
    [
      "latency window end → final, p50 / p95 ms (all)",
      medianP95(overall.latency_from_window_end_ms),
    ],
    [
      "RTF, in-isolate transcribe(), median",
      fmt(overall.rtf_worker.median, 3),
      ...against("rtf", `≤ ${GOALS.rtf}`),
    ],
    ["RTF upper bound (latency / duration), median", fmt(overall.rtf_upper.median, 3)],
    ["RTF from workerd CPU time, median", fmt(overall.rtf_cpu.median, 3)],
    [
      "in-isolate ms per audio s: mel / encoder / decoder",
      perAudioSecond.map((value) => fmt(value)).join(" / "),
    ],
    ["decoder ms per step (token)", fmt(breakdown.decoder_ms_per_step, 1)],
    ["run-queue wait, window end → final, median ms", fmt(overall.run_queue_wait_ms.median)],
    [
      "cold load: cold − warm handshake, ms",
      `${fmt(coldLoad)} (${fmt(coldHandshake)} − ${fmt(warmMedian)}; R2+hash ${fmt(unrounded.readMs)})`,
      ...against("coldLoad", `≤ ${GOALS.coldLoadMs}`),
    ],
    ["WASM heap after load (VAD + Whisper)", mib(worker?.heap_after_load_bytes)],
    ["WASM heap peak, dev utterances", mib(worker?.heap_peak_dev_utterances_bytes)],
    [
      `WASM heap peak, + a ${MAX_UTTERANCE_SECONDS}-s utterance (service's max)`,
      mib(worker?.heap_after_service_max_utterance_bytes),
    ],
    [
      `WASM heap peak, incl. ${LONG_SECONDS}-s utterance`,
      mib(worker?.heap_after_28s_bytes),
      ...against("heap", "≤ 80 MB"),
    ],
    [
      "projection kernel memory (the decoder's table, beside ORT's heap)",
      mib(worker?.projection_kernel_bytes),
    ],
    ["WASM memories of the service after all clips (ORT + kernel)", mib(serviceHeap)],
    [
      "isolate total, live (28-s ORT heap + kernel + JS + buffers)",
      mib(worker?.isolate_total_live_bytes),
      ...against("isolate", "< 120 MB"),
    ],
    ["isolate total, at rest before GC (same)", mib(worker?.isolate_total_at_rest_bytes)],
    [
      "service isolate after all clips, live / at rest",
      `${mib(service.isolate_total_live_bytes)} / ${mib(service.isolate_total_at_rest_bytes)}`,
    ],
    ["WER, dev speech clips", fmt(unrounded.wer, 3), ...against("wer", `≤ ${GOALS.wer}`)],
    ["words on no-speech clips", String(overall.no_speech_words), ...against("noSpeechWords", "0")],
    ...(json.latency ?? []).map((mode) => {
      const { p50, p95 } = mode.latencyMs;
      const target = LATENCY_MODE_GOALS[mode.mode];
      const met =
        target && p50 !== null && p95 !== null ? p50 <= target.p50 && p95 <= target.p95 : null;
      const cells = latencyCells(mode);
      return [
        `${mode.mode}: speech end → final p50 / p95 / max ms (n, early, WER)`,
        cells.latency,
        `n ${cells.n}, early ${cells.early}, WER ${cells.wer}`,
        target ? `≤ ${target.p50} / ≤ ${target.p95}` : "",
        met === null ? "" : met ? "met" : "NOT met",
      ];
    }),
    ["clip (s) | speech-end/window-end ms RTF", "service", "WER | words"],
    ...json.clips.map((clip) => [
      `${clip.id} (${fmt(clip.seconds, 1)})`,
      clip.utterances
        .map(
          (u) =>
            `${fmt(u.latencyFromSpeechEndMs)}/${fmt(u.latencyFromWindowEndMs)} ${fmt(u.rtfWorker, 3)}`,
        )
        .join(", ") || "-",
      clip.wer ? fmt(clip.wer.wer, 2) : `${clip.words} words`,
      "",
      clip.missingFinals > 0 ? `${clip.missingFinals} missing` : "",
    ]),
  ];
  const columns = ["Whisper: the service (prepared, workerd)", "service", "detail", "goal", "met"];
  // Every row padded to the columns.
  return { columns, rows: rows.map((row) => columns.map((_, i) => row[i] ?? "")) };
}

async function run(context: BenchContext): Promise<SectionResult> {
  const { root, log } = context;
  const persistTo = path.join(root, PERSIST_DIR);
  log("whisper: models into the bench's R2, D1 migrated (idempotent)");
  await prepareState(root, persistTo);

  const clips = await loadClips(context.evalDir);
  const byId = new Map(clips.map((c) => [c.row.id, c]));
  const byFile = new Map(clips.map((c) => [c.row.file, c]));
  const speech = clips.filter((c) => c.row.category === "speech");
  const cold = [...speech].sort((a, b) => a.row.duration - b.row.duration)[0];
  if (!cold) throw new Error("no speech clips in the eval set");

  const service = await runService({
    root,
    persistTo,
    cold: { id: cold.row.id, pcm: cold.pcm },
    clips: clips.map((c) => ({ id: c.row.id, pcm: c.pcm })),
    deadline: context.deadline,
    latencyClips: speech.map((c) => ({ id: c.row.id, pcm: c.pcm, reference: c.row.reference })),
    log,
  });
  const streams = service.runs.map(({ id, run }) => {
    const clip = byId.get(id);
    if (!clip) throw new Error(`no clip ${id}`);
    return streamOf(clip, run);
  });
  log("whisper: replaying the VAD in Node to place each utterance's last speech frame");
  const endpoints = await replayEndpoints(root, streams);

  log("whisper: bench worker: heap and in-isolate compute on every final's audio");
  const memory = await settle(
    () =>
      runMemoryWorker({
        root,
        persistTo,
        utterances: finalSegments(byId, service),
        long: [longUtterance(byFile, MAX_UTTERANCE_SECONDS), longUtterance(byFile, LONG_SECONDS)],
        log,
      }),
    (error) => log(`whisper: memory run failed: ${error}`),
  );
  const result = report({ clips, service, endpoints, memory });
  return { json: result.json, table: tableOf(result) };
}

export const whisperSection: Section = {
  name: "whisper",
  title: "Whisper through the real service (workerd, real-time pace)",
  run,
};
