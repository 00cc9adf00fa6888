/**
 * Bench section "long-session" (run only when named in EARSHOT_BENCH_SECTIONS): does a long
 * session grow the isolate? One session of the real service (wrangler dev, workerd, Whisper) takes
 * an hour of audio with interim results on — every dev clip, speech and no speech, each followed
 * by 0.6–1.4 s of silence, looped — paced faster than real time (2×: 30 minutes), under the flood
 * cap (at 4× a session's VAD frames wait for the isolate's lock between the decoder's runs, fall
 * behind and are closed 1008). Through wrangler's inspector it reads V8's JS heap after a forced
 * GC before the session, every ten minutes of audio during it, and after it ended; plus ORT's
 * WebAssembly heap and the workerd processes' RSS at the same moments.
 *
 * What it reports: the JS heap's growth over the session (its last reading during the session
 * against its first, so what one session holds while it lives) and after it (against before the
 * session: what it left behind), with the finals, interims and close of the session.
 *
 * EARSHOT_BENCH_LONG_MINUTES (default 60) and EARSHOT_BENCH_LONG_PACE (default 2) change the
 * audio length and the pace.
 */

import { type HeapUsage, Inspector } from "../inspector.ts";
import { rss } from "../proc.ts";
import { loadClips, pcmSeconds, SAMPLE_RATE } from "./clips.ts";
import { poke, serviceWasmMemories } from "./memory.ts";
import { MiB, type Section, sum } from "./report.ts";
import { startWarmService } from "./whisper-service.ts";
import { runSession } from "./whisper-session.ts";

/** Silences after the clips, in turn: pauses of different lengths, as in conversation. */
const PAUSES_S = [0.6, 1.0, 1.4];
/** A reading every this much audio. */
const READ_EVERY_AUDIO_S = 600;
/** The bound on what a long session may add to the isolate's JS heap. */
const GROWTH_LIMIT_BYTES = 2 * MiB;

interface Reading {
  label: string;
  /** Seconds of audio sent when read (null: outside the session). */
  audioSeconds: number | null;
  jsHeap: HeapUsage;
  wasmBytes: number[];
  rssBytes: number[];
}

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name}: a positive number, got ${raw}`);
  return value;
}

/** The clips with their pauses, repeated to at least `seconds` of PCM16 at 16 kHz. */
function program(clips: readonly Uint8Array[], seconds: number): Uint8Array {
  const loop = Buffer.concat(
    clips.flatMap((pcm, i) => {
      const pause = PAUSES_S[i % PAUSES_S.length] ?? 1;
      return [pcm, new Uint8Array(Math.round(pause * SAMPLE_RATE) * 2)];
    }),
  );
  const loops = Math.ceil((seconds * SAMPLE_RATE * 2) / loop.byteLength);
  return Buffer.concat(Array<Uint8Array>(loops).fill(loop));
}

const mib = (bytes: number) => (bytes / MiB).toFixed(2);

export const longSessionSection: Section = {
  name: "long-session",
  title:
    "One long session (an hour of audio, interims on): the isolate's memory before, during, after",
  async run(context) {
    const { root, log } = context;
    const minutes = envNumber("EARSHOT_BENCH_LONG_MINUTES", 60);
    const pace = envNumber("EARSHOT_BENCH_LONG_PACE", 2);
    const clips = await loadClips(context.evalDir);
    const audio = program(
      clips.map((c) => c.pcm),
      minutes * 60,
    );
    const audioSeconds = pcmSeconds(audio);

    // A first session loads the models and leaves the isolate as a steady service has it.
    const warm = clips.find((c) => c.row.category === "speech");
    if (!warm) throw new Error("no speech clips in the eval set");
    const worker = await startWarmService({ root, suffix: "-long-session", warm: warm.pcm });
    try {
      const inspector = await Inspector.connect(worker.inspectorPort);
      const readings: Reading[] = [];
      const read = async (label: string, sent: number | null) => {
        await inspector.collectGarbage(() => poke(`${worker.url}/v1/listen`));
        const jsHeap = await inspector.heapUsage();
        const wasmBytes = await serviceWasmMemories(inspector, worker.url);
        const rssBytes = worker.workerdPids().map((pid) => rss(pid)?.rssBytes ?? Number.NaN);
        readings.push({ label, audioSeconds: sent, jsHeap, wasmBytes, rssBytes });
        log(
          `long-session: ${label}: JS heap ${mib(jsHeap.usedBytes)} MiB used after GC, ` +
            `backing stores ${mib(jsHeap.backingStoreBytes)} MiB, WASM ${wasmBytes.map(mib).join(" + ")} MiB`,
        );
      };
      try {
        await read("before", null);
        log(
          `long-session: ${(audioSeconds / 60).toFixed(1)} min of audio at ${pace}× ` +
            `(${(audioSeconds / pace / 60).toFixed(1)} min)`,
        );
        const started = performance.now();
        let stop = false;
        const sampler = (async () => {
          for (let next = READ_EVERY_AUDIO_S; !stop; next += READ_EVERY_AUDIO_S) {
            const due = started + (next * 1000) / pace;
            while (!stop && performance.now() < due) {
              await new Promise((resolve) => setTimeout(resolve, 250));
            }
            if (stop || next >= audioSeconds) return;
            await read(`during, ${next / 60} min of audio`, next);
          }
        })();
        const run = await runSession(worker.url, audio, null, {
          query: { interim_results: "true" },
          pace,
        });
        stop = true;
        await sampler;
        await read("after", null);

        const during = readings.filter((r) => r.audioSeconds !== null);
        const first = during[0];
        const last = during.at(-1);
        const before = readings[0];
        const after = readings.at(-1);
        const used = (r: Reading | undefined) => r?.jsHeap.usedBytes ?? Number.NaN;
        // Two readings during the session at least (20 minutes of audio), else there is no growth
        // during it to report (a short trial run).
        const growthDuring = during.length >= 2 ? used(last) - used(first) : null;
        const growthAfter = used(after) - used(before);
        const signed = (bytes: number) => `${bytes >= 0 ? "+" : ""}${mib(bytes)}`;
        const words = sum(run.finals.map((f) => f.words));
        return {
          json: {
            audioSeconds,
            pace,
            close: run.close,
            metadata: run.metadata,
            finals: run.finals.length,
            interims: run.interims,
            words,
            readings,
            growthDuringBytes: growthDuring,
            growthAfterBytes: growthAfter,
            limitBytes: GROWTH_LIMIT_BYTES,
            withinLimit:
              (growthDuring === null || Math.abs(growthDuring) <= GROWTH_LIMIT_BYTES) &&
              Math.abs(growthAfter) <= GROWTH_LIMIT_BYTES,
          },
          table: {
            columns: [
              "reading",
              "JS used MiB",
              "JS total MiB",
              "backing MiB",
              "WASM MiB",
              "RSS MiB",
            ],
            rows: [
              ...readings.map((r) => [
                r.label,
                mib(r.jsHeap.usedBytes),
                mib(r.jsHeap.totalBytes),
                mib(r.jsHeap.backingStoreBytes),
                r.wasmBytes.map(mib).join(" + "),
                r.rssBytes.map((b) => (b / MiB).toFixed(0)).join(" / "),
              ]),
              [
                `session: ${run.finals.length} finals, ${run.interims} interims, ${words} words, close ${run.close?.code ?? "-"}`,
                `during ${growthDuring === null ? "n/a (< 2 readings)" : signed(growthDuring)}`,
                `after ${signed(growthAfter)}`,
                `limit ${mib(GROWTH_LIMIT_BYTES)}`,
                "",
                "",
              ],
            ],
          },
        };
      } finally {
        inspector.close();
      }
    } finally {
      await worker.stop();
    }
  },
};
