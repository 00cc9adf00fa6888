/**
 * `npm run soak [-- options]`: the concurrency soak (README "Soak"), against a running `npm run dev`
 * (loopback only) or a service of its own (`--launch`). The phases: tools/load/soak/solo.ts (each
 * program alone: its reference finals) and live.ts (all at once, with limit probes); the verdict
 * and its report: soak/report.ts. Exits 1 on any failure, 2 on a bad command line.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { HandshakeRefused } from "../client/resumable-client.ts";
import { resolveAdminToken } from "../dev/admin.ts";
import { parseManifest } from "../eval/manifest.ts";
import { parseWav } from "../eval/wav.ts";
import { type Service as LaunchedService, prepareState, startService } from "./dev-worker.ts";
import { livePhase } from "./soak/live.ts";
import { buildPrograms, type Clip, describeProgram, SAMPLE_RATE } from "./soak/programs.ts";
import { log } from "./soak/progress.ts";
import { judge, printTable, writeDetails } from "./soak/report.ts";
import { Service, type SoakAccount } from "./soak/service.ts";
import { probeServer, programFingerprint, SOLO_PACE, soloPhase } from "./soak/solo.ts";
import { refusalReason, splitSessions } from "./soak/verdict.ts";

const root = path.resolve(import.meta.dirname, "../..");

const USAGE = `usage: npm run soak -- [options]
  --url <url>            the service, loopback only ($EARSHOT_URL, else http://127.0.0.1:8787)
  --token <token>        admin token (default: as \`npm run admin\` finds it)
  --launch fake|whisper  start a service of its own instead (no --url or --token then)
  --sessions <n>         sessions at once, split 3 : 2 : 1 over three accounts (34, at least 3)
  --seconds <s>          how long each session streams (180, at least 15)
  --seed <n>             the programs' seed (1)
  --no-resume            no resumable sessions (a server without resume)
  --solo-pace <x>        the solo runs' pace cap (32 with the fake transcriber, 16 with Whisper)
  --fast-pace <x>        every fast session's pace (default 1.5 or 2, by the seed)
  --max-latency-ms <ms>  a later final fails the run (5000)
  --out <file>           the JSON report (test-results/soak.json)
  --inspector-port <n>   read V8's heap through that wrangler dev's inspector (--launch reads its own)`;

/** The bar: at least 30 sessions at once, for several minutes. */
const DEFAULT_SESSIONS = 34;
const DEFAULT_SECONDS = 180;
/** A final this long after its last audio byte was sent is late: a failure. */
const DEFAULT_MAX_LATENCY_MS = 5_000;

type Options = ReturnType<typeof parseOptions>;

const STRING_OPTIONS = [
  ["url", "token", "launch", "sessions", "seconds", "seed", "solo-pace", "fast-pace"],
  ["max-latency-ms", "out", "inspector-port"],
].flat();

function parseOptions(argv: string[]) {
  const strings = STRING_OPTIONS.map((name) => [name, { type: "string" as const }]);
  const { values } = parseArgs({
    args: argv,
    options: { ...Object.fromEntries(strings), "no-resume": { type: "boolean" } },
  });
  const given: Record<string, unknown> = values;
  const text = (name: string) => {
    const value = given[name];
    return typeof value === "string" ? value : undefined;
  };
  const launch = text("launch") ?? null;
  if (launch !== null && launch !== "fake" && launch !== "whisper") {
    throw new Error(`--launch must be fake or whisper, got ${launch}`);
  }
  if (launch !== null && (text("url") !== undefined || text("token") !== undefined)) {
    throw new Error("--launch starts its own service: no --url or --token with it");
  }
  /** The option's number (at least `min`), or `fallback` when it is not given. */
  const number = <T>(name: string, fallback: T, min: number): number | T => {
    const option = text(name);
    if (option === undefined) return fallback;
    const value = Number(option);
    if (!Number.isFinite(value) || value < min) {
      throw new Error(`--${name} must be a number ≥ ${min}`);
    }
    return value;
  };
  const url = text("url") ?? process.env.EARSHOT_URL ?? "http://127.0.0.1:8787";
  const host = new URL(url).hostname;
  if (!["127.0.0.1", "localhost", "[::1]"].includes(host)) {
    throw new Error(`--url must be a loopback address (the soak creates accounts), got ${host}`);
  }
  // Only when asked: nothing tells which worker an inspector port serves, and on a shared machine
  // 9229 (wrangler's default) may well be another wrangler dev's — whose heap would be reported.
  const inspectorPort = number("inspector-port", 0, 0);
  return {
    url,
    sessions: Math.floor(number("sessions", DEFAULT_SESSIONS, 3)),
    seconds: number("seconds", DEFAULT_SECONDS, 15),
    seed: Math.floor(number("seed", 1, 0)),
    resume: given["no-resume"] !== true,
    soloPace: number("solo-pace", null, 0.5),
    fastPace: number("fast-pace", null, 1),
    maxLatencyMs: number("max-latency-ms", DEFAULT_MAX_LATENCY_MS, 1),
    out: path.resolve(root, text("out") ?? "test-results/soak.json"),
    inspectorPort: inspectorPort === 0 ? null : inspectorPort,
    token: text("token"),
    launch,
  };
}

async function loadClips(): Promise<Clip[]> {
  const evalDir = path.resolve(root, process.env.EARSHOT_SHARED ?? "../shared", "eval", "dev");
  const rows = parseManifest(await readFile(path.join(evalDir, "manifest.tsv"), "utf8"));
  return Promise.all(
    rows.map(async (row) => {
      const wav = parseWav(new Uint8Array(await readFile(path.join(evalDir, row.file))));
      if (wav.sampleRate !== SAMPLE_RATE || wav.channels !== 1) {
        throw new Error(
          `${row.file}: the soak streams 16 kHz mono, got ${wav.sampleRate} Hz × ${wav.channels}`,
        );
      }
      return { id: row.id, pcm: wav.pcm, speech: row.category === "speech" };
    }),
  );
}

async function main(): Promise<number> {
  if (process.argv.includes("--help")) {
    console.log(USAGE);
    return 0;
  }
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (options.launch === null) return soak(options);
  const persistTo = path.join(root, "test-results", `soak-state-${options.launch}`);
  log(`launching the service (${options.launch}) on ${path.relative(root, persistTo)}`);
  await prepareState(root, persistTo);
  let launched: LaunchedService | null = null;
  try {
    const testSeams = options.launch === "fake";
    const vars = { EARSHOT_TRANSCRIBER: options.launch };
    launched = await startService(root, persistTo, vars, testSeams);
    const { url, adminToken, inspectorPort } = launched;
    return await soak({ ...options, url, token: adminToken, inspectorPort });
  } finally {
    await launched?.stop();
  }
}

async function soak(options: Options): Promise<number> {
  const service = new Service(options.url, resolveAdminToken(options.token));
  const clips = await loadClips();
  const limits = splitSessions(options.sessions);
  const runId = Date.now().toString(36);
  const failures: string[] = [];
  const notes: string[] = [];

  log(`creating accounts with limits ${limits.join(", ")} on ${options.url}`);
  const accounts: SoakAccount[] = [];
  for (const [i, limit] of limits.entries()) {
    accounts.push(await service.createAccount(`soak-${runId}-${"abc"[i]}`, limit));
  }
  // Interrupted (Ctrl-C, a runner's timeout): the accounts are still disabled before exiting.
  const interrupted = (signal: NodeJS.Signals) => {
    log(`${signal}: disabling the soak's accounts and stopping`);
    void Promise.allSettled(accounts.map((a) => service.disableAccount(a.id))).finally(() =>
      process.exit(130),
    );
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    if ((await service.isolateStats()) === null) {
      notes.push("GET /admin/isolate is not mounted: no inference queue or WASM heap readings");
    }
    let model: string;
    try {
      model = await probeServer(service, accounts[0] as SoakAccount, options.resume);
    } catch (error) {
      if (error instanceof HandshakeRefused && options.resume && error.refusal.status === 400) {
        const { refusal } = error;
        console.error(
          `the server refused resumable=true (${refusalReason(refusal)}: ${refusal.errMsg}); ` +
            "it has no resume yet: run with --no-resume",
        );
        return 1;
      }
      throw error;
    }
    const soloPace = options.soloPace ?? SOLO_PACE[model === "fake" ? "fake" : "whisper"];
    log(`server transcriber: ${model}; solo pace ${soloPace}×`);

    const programs = buildPrograms({
      clips,
      sessionsPerAccount: limits,
      seconds: options.seconds,
      seed: options.seed,
      resume: options.resume,
      fastPace: options.fastPace,
    });
    const fingerprints = programs.map(programFingerprint);
    if (new Set(fingerprints).size !== programs.length) {
      throw new Error("two programs are identical");
    }
    for (const program of programs) log(describeProgram(program));

    const common = { service, accounts, programs, clips, url: options.url, soloPace };
    const solo = await soloPhase({ ...common, failures });
    const live = await livePhase({
      ...common,
      references: solo.references,
      seconds: options.seconds,
      inspectorPort: options.inspectorPort,
    });

    const verdict = { ...options, model, accounts, programs, solo, live, failures, notes };
    const judged = judge(verdict);
    printTable(judged.summary, judged.sessionRows);
    console.log(JSON.stringify(judged.summary, null, 2));
    writeDetails(options.out, verdict, judged, fingerprints);
    log(`wrote ${path.relative(root, options.out)}`);
    return judged.summary.ok ? 0 : 1;
  } finally {
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    for (const account of accounts) {
      await service.disableAccount(account.id).catch((error: unknown) => {
        console.error(`could not disable ${account.name}: ${String(error)}`);
      });
    }
  }
}

if (import.meta.main) {
  try {
    process.exitCode = await main();
  } catch (error) {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exitCode = 1;
  }
}
