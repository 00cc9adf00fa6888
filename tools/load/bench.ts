/**
 * `npm run bench`: runs every bench section once, prints one JSON object to stdout and a table per
 * section to stderr (so `npm run -s bench > out.json` gives clean JSON), and writes the JSON to
 * bench-results/latest.json. Loopback only, bounded in time, exits by itself. Sections live in
 * tools/load/bench/ (see report.ts there).
 *
 * Env: EARSHOT_SHARED (default ../shared) for the eval clips; EARSHOT_BENCH_VAD_ROUNDS;
 * EARSHOT_BENCH_SECTIONS (comma-separated names, e.g. "whisper": run only those).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writeGenerated } from "../models/generated.ts";
import { capacitySection } from "./bench/capacity.ts";
import { longSessionSection } from "./bench/long-session.ts";
import { opusSection } from "./bench/opus.ts";
import { type BenchContext, formatTable, type Section } from "./bench/report.ts";
import {
  beamsSection,
  continuationSection,
  earlyFinalsSection,
  revisionSection,
  softCutSection,
} from "./bench/side-by-side.ts";
import { vadSection } from "./bench/vad.ts";
import { whisperSection } from "./bench/whisper.ts";

/**
 * Add a section here: it runs in order, gets its own key in the JSON, and plans its work to end
 * within its budget (a latency mode's clips are not started past it: a budget too small drops the
 * last modes' clips, and the run says so). Measured on the shared 2-core machine:
 * - vad: ~10–50 s;
 * - whisper: every dev clip at real-time pace with its trailing silence and handshake, setup, the
 *   bench worker and the replay: ~3 minutes; then the 5 latency modes (whisper-latency.ts: the
 *   speech clips again in each, ~95 s a mode): ~8 minutes more; hence 900 s;
 * - opus: ~20 s (six Ogg/Opus streams encoded by opusenc, each decoded 8 times in workerd);
 * - capacity: real-time sessions with interims at 6, 8, 10 and 12 at once (~45 s a level) after
 *   one reference run of each program at 8× (~1 minute), plus the service's start: ~5 minutes;
 * - only when named in EARSHOT_BENCH_SECTIONS: early-finals, soft-cut, beams and continuation (the
 *   5 latency modes on two services: ~16 minutes; EARSHOT_BENCH_MODES runs fewer); revision (the
 *   same against a base revision, whose models are prepared first: 2 minutes more); long-session
 *   (an hour of audio at 2×: 30 minutes).
 * The default run (vad, whisper, opus, capacity) takes ~17 minutes.
 */
const SECTIONS: { section: Section; budgetMs: number; onlyWhenNamed?: boolean }[] = [
  { section: vadSection, budgetMs: 100_000 },
  { section: whisperSection, budgetMs: 900_000 },
  { section: opusSection, budgetMs: 60_000 },
  { section: capacitySection, budgetMs: 600_000 },
  { section: earlyFinalsSection, budgetMs: 1_200_000, onlyWhenNamed: true },
  { section: softCutSection, budgetMs: 1_200_000, onlyWhenNamed: true },
  { section: beamsSection, budgetMs: 1_200_000, onlyWhenNamed: true },
  { section: continuationSection, budgetMs: 1_200_000, onlyWhenNamed: true },
  { section: revisionSection, budgetMs: 1_320_000, onlyWhenNamed: true },
  { section: longSessionSection, budgetMs: 2_400_000, onlyWhenNamed: true },
];

/**
 * A hung section (wrangler never ready, a stuck request) ends the process after the budgets of
 * the sections run plus this margin (setup and teardown are outside the budgets).
 */
const HARD_LIMIT_MARGIN_MS = 170_000;

// Loopback only: wrangler/miniflare otherwise fetch workers.cloudflare.com/cf.json and may send
// usage metrics. Set before wrangler is imported (vad.ts imports it lazily).
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
process.env.WRANGLER_SEND_METRICS = "false";
process.env.WRANGLER_SEND_ERROR_REPORTS = "false";

const root = path.resolve(import.meta.dirname, "../..");
const log = (message: string) => process.stderr.write(`${message}\n`);

function version(packageDir: string): string | null {
  try {
    const json: unknown = JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8"));
    const value = (json as { version?: unknown }).version;
    return typeof value === "string" ? value : null;
  } catch {
    return null; // not installed there: reported as null, and the other candidate is tried
  }
}

function gitCommit(): string | null {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: root,
      encoding: "utf8",
    }).trim();
  } catch (error) {
    log(`bench: no git commit (${String(error)})`);
    return null;
  }
}

/** V8 flags Miniflare passes to workerd (MINIFLARE_WORKERD_V8_FLAGS), if any. */
const V8_FLAGS = process.env.MINIFLARE_WORKERD_V8_FLAGS?.trim() || undefined;

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  const modules = path.join(root, "node_modules");
  return {
    cpu: cpus[0]?.model ?? null,
    cores: cpus.length,
    memory_bytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    load_average_1m: os.loadavg()[0],
    node: process.version,
    // wrangler runs the workerd it depends on, which may be nested under it.
    workerd:
      version(path.join(modules, "wrangler", "node_modules", "workerd")) ??
      version(path.join(modules, "workerd")),
    wrangler: version(path.join(modules, "wrangler")),
    onnxruntime_web: version(path.join(modules, "onnxruntime-web")),
    // Miniflare hands these to workerd's V8. A run with `--no-wasm-bounds-checks` measures what
    // V8's WebAssembly trap handler would give (workerd never enables it: docs/decoder-profile.md),
    // not what ships, and its JSON and table say so.
    workerd_v8_flags: V8_FLAGS ?? null,
    commit: gitCommit(),
    date: new Date().toISOString(),
  };
}

async function main(): Promise<void> {
  const shared = path.resolve(root, process.env.EARSHOT_SHARED ?? "../shared");
  const only = process.env.EARSHOT_BENCH_SECTIONS?.split(",").filter(Boolean);
  const unknown = only?.filter((name) => !SECTIONS.some(({ section }) => section.name === name));
  if (unknown && unknown.length > 0) {
    throw new Error(`EARSHOT_BENCH_SECTIONS: no section named ${unknown.join(", ")}`);
  }
  const selected = SECTIONS.filter(({ section, onlyWhenNamed }) =>
    only ? only.includes(section.name) : !onlyWhenNamed,
  );
  const hardLimitMs = selected.reduce((sum, s) => sum + s.budgetMs, HARD_LIMIT_MARGIN_MS);
  const hardLimit = setTimeout(() => {
    log(`bench: still running after ${hardLimitMs} ms; giving up`);
    process.exit(1);
  }, hardLimitMs);
  hardLimit.unref();
  // src/generated/ before any section: Node's Silero reads the prepared model from there (the
  // launcher writes it too, for the workers, but Node may run first).
  await writeGenerated();
  if (V8_FLAGS) log(`bench: workerd runs with V8 flags "${V8_FLAGS}": not the shipped runtime`);
  const before = machine();
  const result: Record<string, unknown> = {};
  const tables: string[] = [];
  for (const { section, budgetMs } of selected) {
    const context: BenchContext = {
      root,
      evalDir: path.join(shared, "eval", "dev"),
      deadline: Date.now() + budgetMs,
      log,
    };
    const started = performance.now();
    const { json, table } = await section.run(context);
    result[section.name] = { ...json, seconds: Math.round(performance.now() - started) / 1000 };
    tables.push(formatTable(section.title, table));
  }
  result.machine = { ...before, load_average_1m_after: os.loadavg()[0] };

  const text = JSON.stringify(result, null, 2);
  const out = path.join(root, "bench-results", "latest.json");
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${text}\n`);
  const flagsNote = V8_FLAGS
    ? `\n\nworkerd's V8 ran with "${V8_FLAGS}": not the shipped runtime.`
    : "";
  log(`\n${tables.join("\n\n")}${flagsNote}\n\nJSON written to ${path.relative(root, out)}`);
  process.stdout.write(`${text}\n`);
}

main().then(
  // Exit explicitly: a library's leftover handle must not keep the bench alive.
  () => process.exit(0),
  (error: unknown) => {
    log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
