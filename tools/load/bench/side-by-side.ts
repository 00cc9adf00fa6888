/**
 * Sections that compare two copies of the real service side by side in one run: four compare two
 * settings of one var, "early-finals" (EARSHOT_EARLY_FINALS off vs on), "soft-cut"
 * (EARSHOT_SOFT_CUT_SECONDS 11 vs 5), "beams" (EARSHOT_BEAM_SIZE 1, greedy, vs 3) and
 * "continuation" (EARSHOT_CONTINUATION off vs on); "revision" compares the service built from a
 * base revision (EARSHOT_BENCH_BASE, default HEAD: the last commit) with the one built from this
 * working tree, for a change that has no var. Both copies, each with its own persistence folder,
 * take every dev speech clip in every latency mode (whisper-latency.ts), alternating which goes
 * first clip by clip, one session at a time: a slow spell of this shared machine falls on both
 * alike, so their medians compare within the run. Reported per mode: end of speech → final
 * p50 / p95 / max and WER for each, and the ratio of the p50s (second over first).
 */
import { execFileSync } from "node:child_process";
import { cp, mkdtemp, rm, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { DevWorker } from "../dev-worker.ts";
import { loadClips } from "./clips.ts";
import { type BenchContext, fmt, type Section } from "./report.ts";
import {
  type LatencyModeResult,
  type LatencyTarget,
  latencyCells,
  runLatencyModes,
} from "./whisper-latency.ts";
import { startWarmService } from "./whisper-service.ts";

/** One of the two services: its name in the report, the source tree it is built from, its vars. */
interface Side {
  label: string;
  root: string;
  vars: Record<string, string>;
}

interface Comparison {
  name: string;
  title: string;
  /** The two services, the baseline first, and what to clean up after both stopped. */
  sides: (context: BenchContext) => Promise<{ sides: [Side, Side]; cleanup?: () => Promise<void> }>;
}

const IN_ONE_RUN = "end of speech → final, both services in one run, clips alternating";

/** Two settings of one wrangler var, the baseline first, on this tree. */
function settingsOf(
  variable: string,
  settings: readonly [string, string],
  label: (setting: string) => string,
): Comparison["sides"] {
  return async ({ root }) => ({
    sides: [
      { label: label(settings[0]), root, vars: { [variable]: settings[0] } },
      { label: label(settings[1]), root, vars: { [variable]: settings[1] } },
    ],
  });
}

export const earlyFinalsSection = sideBySide({
  name: "early-finals",
  title: `Early finals off vs on: ${IN_ONE_RUN}`,
  sides: settingsOf("EARSHOT_EARLY_FINALS", ["off", "on"], (s) => `early finals ${s}`),
});

export const softCutSection = sideBySide({
  name: "soft-cut",
  title: `Soft cut after 11 s vs 5 s: ${IN_ONE_RUN}`,
  sides: settingsOf("EARSHOT_SOFT_CUT_SECONDS", ["11", "5"], (s) => `soft cut ${s} s`),
});

export const beamsSection = sideBySide({
  name: "beams",
  title: `Greedy vs 3-beam finals (up to 5 s): ${IN_ONE_RUN}`,
  sides: settingsOf("EARSHOT_BEAM_SIZE", ["1", "3"], (s) => (s === "1" ? "greedy" : `${s} beams`)),
});

export const continuationSection = sideBySide({
  name: "continuation",
  title: `Finals decoded alone vs continuing the utterance before them: ${IN_ONE_RUN}`,
  sides: settingsOf("EARSHOT_CONTINUATION", ["off", "on"], (s) => `continuation ${s}`),
});

export const revisionSection = sideBySide({
  name: "revision",
  title: `A base revision (EARSHOT_BENCH_BASE, default HEAD) vs this working tree: ${IN_ONE_RUN}`,
  async sides({ root, evalDir }) {
    const base = process.env.EARSHOT_BENCH_BASE || "HEAD";
    const git = (...args: string[]) =>
      execFileSync("git", ["-C", root, ...args], { encoding: "utf8" }).trim();
    const commit = git("rev-parse", "--short", `${base}^{commit}`);
    // The base is checked out as a git worktree beside a link to the shared folder, so that its
    // own scripts find ../shared as this tree's do; it shares this tree's node_modules and the
    // Opus decoder built from them (src/generated, not in git).
    const dir = await mkdtemp(path.join(os.tmpdir(), "earshot-base-"));
    const tree = path.join(dir, "earshot");
    git("worktree", "add", "--detach", tree, commit);
    await symlink(path.join(root, "node_modules"), path.join(tree, "node_modules"));
    await symlink(path.resolve(evalDir, "..", ".."), path.join(dir, "shared"));
    await cp(path.join(root, "src", "generated"), path.join(tree, "src", "generated"), {
      recursive: true,
    });
    return {
      sides: [
        { label: `base ${commit}`, root: tree, vars: {} },
        { label: "this tree", root, vars: {} },
      ],
      async cleanup() {
        git("worktree", "remove", "--force", tree);
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
});

function sideBySide(comparison: Comparison): Section {
  return {
    name: comparison.name,
    title: comparison.title,
    async run(context) {
      const { root, log } = context;
      const clips = (await loadClips(context.evalDir)).filter((c) => c.row.category === "speech");
      const warm = clips[0];
      if (!warm) throw new Error("no speech clips in the eval set");
      const { sides, cleanup } = await comparison.sides(context);
      const workers: DevWorker[] = [];
      try {
        const targets: LatencyTarget[] = [];
        for (const [i, side] of sides.entries()) {
          log(`${comparison.name}: models and demo account for "${side.label}"`);
          const worker = await startWarmService({
            root,
            source: side.root,
            suffix: `-${comparison.name}-${i}`,
            vars: side.vars,
            warm: warm.pcm,
          });
          workers.push(worker);
          targets.push({ name: side.label, url: worker.url, cpuPid: null });
        }
        const results = await runLatencyModes({
          root,
          targets,
          clips: clips.map((c) => ({ id: c.row.id, pcm: c.pcm, reference: c.row.reference })),
          deadline: context.deadline,
          log,
        });
        return summarise(results, [sides[0].label, sides[1].label]);
      } finally {
        for (const worker of workers) await worker.stop();
        await cleanup?.();
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
      const { latency, n, early, wer } = latencyCells(r);
      rows.push([mode, r.target, latency, n, early, wer, r === on ? fmt(ratio, 2) : ""]);
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
