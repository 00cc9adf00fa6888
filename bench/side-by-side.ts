/**
 * Sections that compare two settings of one var side by side in one run: "early-finals"
 * (EARSHOT_EARLY_FINALS off vs on), "soft-cut" (EARSHOT_SOFT_CUT_SECONDS 11 vs 5), "beams"
 * (EARSHOT_BEAM_SIZE 1, greedy, vs 3) and "continuation" (EARSHOT_CONTINUATION off vs on). Two copies of
 * the real service (wrangler dev, workerd, real models), identical but for that var, each with its
 * own persistence folder, take every dev speech clip in every latency mode
 * (bench/whisper-latency.ts), the two alternating first clip by clip, one session at a time: a
 * slow spell of this shared machine falls on both alike, so their medians compare within the run.
 * Reported per mode: end of speech → final p50 / p95 / max and WER for each, and the ratio of the
 * p50s (second setting over first).
 */
import path from "node:path";
import { prepareState, startService } from "../scripts/lib/dev-worker.ts";
import { DEMO_KEY } from "../src/accounts/demo-seed.ts";
import type { Section } from "./report.ts";
import { loadClips, PERSIST_DIR } from "./whisper.ts";
import { type LatencyModeResult, type LatencyTarget, runLatencyModes } from "./whisper-latency.ts";
import { runSession } from "./whisper-session.ts";

interface Comparison {
  name: string;
  title: string;
  /** The wrangler var that differs between the two services. */
  variable: string;
  /** Its two values: the baseline first. */
  settings: readonly [string, string];
  /** How a service is named in the report, from its setting. */
  label: (setting: string) => string;
}

const fmt = (value: number | null | undefined, digits = 0) =>
  value === null || value === undefined || !Number.isFinite(value) ? "-" : value.toFixed(digits);

export const earlyFinalsSection = sideBySide({
  name: "early-finals",
  title:
    "Early finals off vs on: end of speech → final, both services in one run, clips alternating",
  variable: "EARSHOT_EARLY_FINALS",
  settings: ["off", "on"],
  label: (setting) => `early finals ${setting}`,
});

export const softCutSection = sideBySide({
  name: "soft-cut",
  title:
    "Soft cut after 11 s vs 5 s: end of speech → final, both services in one run, clips alternating",
  variable: "EARSHOT_SOFT_CUT_SECONDS",
  settings: ["11", "5"],
  label: (setting) => `soft cut ${setting} s`,
});

export const beamsSection = sideBySide({
  name: "beams",
  title:
    "Greedy vs 3-beam finals (up to 5 s): end of speech → final, both services in one run, clips alternating",
  variable: "EARSHOT_BEAM_SIZE",
  settings: ["1", "3"],
  label: (setting) => (setting === "1" ? "greedy" : `${setting} beams`),
});

export const continuationSection = sideBySide({
  name: "continuation",
  title:
    "Finals decoded alone vs continuing the utterance before them: end of speech → final, both services in one run, clips alternating",
  variable: "EARSHOT_CONTINUATION",
  settings: ["off", "on"],
  label: (setting) => `continuation ${setting}`,
});

function sideBySide(comparison: Comparison): Section {
  const { settings, variable, label } = comparison;
  return {
    name: comparison.name,
    title: comparison.title,
    async run(context) {
      const { root, log } = context;
      const clips = (await loadClips(context.evalDir)).filter((c) => c.row.category === "speech");
      const workers: { setting: string; stop: () => Promise<void> }[] = [];
      try {
        const targets: LatencyTarget[] = [];
        for (const setting of settings) {
          const persistTo = path.join(root, `${PERSIST_DIR}-${comparison.name}-${setting}`);
          log(`${comparison.name}: models and demo account for the "${setting}" service`);
          await prepareState(root, persistTo);
          const worker = await startService(root, persistTo, { [variable]: setting });
          workers.push({ setting, stop: worker.stop });
          // A first session loads the models, so no measured session pays for the load.
          const warm = clips[0];
          if (!warm) throw new Error("no speech clips in the eval set");
          await runSession(worker.url, DEMO_KEY, warm.pcm, null);
          targets.push({ name: label(setting), url: worker.url, cpuPid: null });
        }
        const results = await runLatencyModes({
          root,
          targets,
          key: DEMO_KEY,
          clips: clips.map((c) => ({ id: c.row.id, pcm: c.pcm, reference: c.row.reference })),
          deadline: context.deadline,
          log,
        });
        return summarise(results, settings.map(label) as [string, string]);
      } finally {
        for (const worker of workers) await worker.stop();
      }
    },
  };
}

function summarise(results: LatencyModeResult[], [first, second]: [string, string]) {
  const modes = [...new Set(results.map((r) => r.mode))];
  const rows: string[][] = [];
  const ratios: Record<string, number | null> = {};
  for (const mode of modes) {
    const off = results.find((r) => r.mode === mode && r.target === first);
    const on = results.find((r) => r.mode === mode && r.target === second);
    const ratio =
      off?.latencyMs.p50 && on?.latencyMs.p50 !== null && on?.latencyMs.p50 !== undefined
        ? on.latencyMs.p50 / off.latencyMs.p50
        : null;
    ratios[mode] = ratio === null ? null : Number(ratio.toFixed(3));
    for (const r of [off, on]) {
      if (!r) continue;
      rows.push([
        mode,
        r.target,
        `${fmt(r.latencyMs.p50)} / ${fmt(r.latencyMs.p95)} / ${fmt(r.latencyMs.max)}`,
        `${r.latencyMs.n}${r.missing > 0 ? ` (${r.missing} missing)` : ""}`,
        `${fmt((r.earlyShare ?? 0) * 100)}%`,
        fmt(r.wer, 3),
        r === on ? fmt(ratio, 2) : "",
      ]);
    }
  }
  return {
    json: {
      modes: results.map(({ utterances, ...rest }) => ({
        ...rest,
        utterances: utterances.map((u) => ({
          clip: u.clip,
          latencyMs: u.latencyMs,
          early: u.early,
        })),
      })),
      p50_second_over_first: ratios,
      services: [first, second],
      note:
        "both services run the same clips in the same mode, alternating which goes first clip by " +
        "clip; a clip counts once both ran it",
    },
    table: {
      columns: ["mode", "service", "p50 / p95 / max ms", "n", "early", "WER", "p50 ratio"],
      rows,
    },
  };
}
