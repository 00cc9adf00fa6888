/**
 * `npm run soak [-- options]`: a concurrency soak against a running `npm run dev` (loopback only),
 * or against a service of its own (`--launch fake|whisper`: the load tools' launcher,
 * tools/load/dev-worker.ts, on test-results/soak-state-<transcriber>, stopped at the end).
 *
 * 1. Creates three fresh accounts whose limits differ (3 : 2 : 1 of --sessions; 34 → 17, 11, 6),
 *    each with a key, through the admin API.
 * 2. Builds one program per session (tools/load/soak/programs.ts): its own order of the eval clips
 * and
 *    silences, listen options, frame size; realtime, fast (1.5–2×), with pauses, or resumable with
 *    connection drops in mid-utterance.
 * 3. Solo: streams every program alone, one after another, faster than real time: each one's
 *    reference finals. (--references <file> reuses the references of an earlier run.)
 * 4. Live: every session at once, for --seconds; every account filled to its limit, and probes
 *    (extra connections with the accounts' keys) refused with 429 while they are full.
 * 5. Checks: every session's finals equal its solo finals (zero cross-talk), its close was a clean
 *    1000 after Metadata, no final later than --max-latency-ms, no account above its limit (client
 *    side and GET /v1/sessions), every drop resumed; afterwards zero slots held and zero sessions.
 * Prints a table and the summary JSON on stdout (progress on stderr), writes the full JSON (every
 * session) to test-results/soak.json, disables the soak's accounts, exits 1 on any failure.
 *
 * Options: --url (http://127.0.0.1:8787) --sessions (34) --seconds (180) or --minutes --seed (1)
 * --no-resume (no resumable sessions: a server without resume) --solo-pace (cap: 32 for the fake
 * transcriber, 16 for Whisper) --fast-pace (every fast session's pace; default 1.5 or 2 by seed)
 * --max-latency-ms (5000) --out <file> --references <file> (reference finals of earlier solo
 * runs, by program; test-results/soak-references-<model>.json collects every run's)
 * --inspector-port <port> (V8's heap through that wrangler dev's inspector, e.g. started with
 * `npm run dev -- --inspector-port 9229`; off by default)
 * --token <admin token> (else as `npm run admin` finds it) --launch fake|whisper (start the
 * service instead of using --url; its inspector is read).
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
const DEFAULT_URL = "http://127.0.0.1:8787";
/** The bar: at least 30 sessions at once, for several minutes. */
const DEFAULT_SESSIONS = 34;
const DEFAULT_SECONDS = 180;
/** A final this long after its last audio byte was sent is late: a failure. */
const DEFAULT_MAX_LATENCY_MS = 5_000;

interface Options {
  url: string;
  sessions: number;
  seconds: number;
  seed: number;
  resume: boolean;
  soloPace: number | null;
  fastPace: number | null;
  maxLatencyMs: number;
  references: string | null;
  out: string;
  inspectorPort: number | null;
  token: string | undefined;
  launch: "fake" | "whisper" | null;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: "string" },
      sessions: { type: "string" },
      seconds: { type: "string" },
      minutes: { type: "string" },
      seed: { type: "string" },
      "no-resume": { type: "boolean" },
      "solo-pace": { type: "string" },
      "fast-pace": { type: "string" },
      "max-latency-ms": { type: "string" },
      references: { type: "string" },
      out: { type: "string" },
      "inspector-port": { type: "string" },
      token: { type: "string" },
      launch: { type: "string" },
    },
  });
  const launch = values.launch ?? null;
  if (launch !== null && launch !== "fake" && launch !== "whisper") {
    throw new Error(`--launch must be fake or whisper, got ${launch}`);
  }
  if (launch !== null && (values.url !== undefined || values.token !== undefined)) {
    throw new Error("--launch starts its own service: no --url or --token with it");
  }
  const number = (name: string, text: string | undefined, fallback: number, min: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < min)
      throw new Error(`--${name} must be a number ≥ ${min}`);
    return value;
  };
  const url = values.url ?? process.env.EARSHOT_URL ?? DEFAULT_URL;
  const host = new URL(url).hostname;
  if (!["127.0.0.1", "localhost", "[::1]"].includes(host)) {
    throw new Error(`--url must be a loopback address (the soak creates accounts), got ${host}`);
  }
  const seconds =
    values.minutes !== undefined
      ? number("minutes", values.minutes, 3, 0.25) * 60
      : number("seconds", values.seconds, DEFAULT_SECONDS, 15);
  // Only when asked: nothing tells which worker an inspector port serves, and on a shared machine
  // 9229 (wrangler's default) may well be another wrangler dev's — whose heap would be reported.
  const inspector = number("inspector-port", values["inspector-port"], 0, 0);
  return {
    url,
    sessions: Math.floor(number("sessions", values.sessions, DEFAULT_SESSIONS, 3)),
    seconds,
    seed: Math.floor(number("seed", values.seed, 1, 0)),
    resume: values["no-resume"] !== true,
    soloPace:
      values["solo-pace"] === undefined ? null : number("solo-pace", values["solo-pace"], 1, 0.5),
    fastPace:
      values["fast-pace"] === undefined ? null : number("fast-pace", values["fast-pace"], 1, 1),
    maxLatencyMs: number("max-latency-ms", values["max-latency-ms"], DEFAULT_MAX_LATENCY_MS, 1),
    references: values.references ?? null,
    out: path.resolve(root, values.out ?? "test-results/soak.json"),
    inspectorPort: inspector === 0 ? null : inspector,
    token: values.token,
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
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 2;
  }
  if (options.launch === null) return soak(options);
  const persistTo = path.join(root, "test-results", `soak-state-${options.launch}`);
  log(`launching the service (${options.launch}) on ${path.relative(root, persistTo)}`);
  await prepareState(root, persistTo);
  let launched: LaunchedService | null = null;
  try {
    launched = await startService(
      root,
      persistTo,
      { EARSHOT_TRANSCRIBER: options.launch },
      options.launch === "fake",
    );
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
  const runId = `${Date.now().toString(36)}`;
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
        console.error(
          `the server refused resumable=true (${refusalReason(error.refusal)}: ${error.refusal.errMsg}); ` +
            "it has no resume yet: run with --no-resume",
        );
        return 1;
      }
      throw error;
    }
    const kind = model === "fake" ? "fake" : "whisper";
    const soloPace = options.soloPace ?? SOLO_PACE[kind];
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
    if (new Set(fingerprints).size !== programs.length)
      throw new Error("two programs are identical");
    for (const program of programs) log(describeProgram(program));

    const solo = await soloPhase({
      service,
      accounts,
      programs,
      fingerprints,
      clips,
      model,
      url: options.url,
      soloPace,
      reusedFile: options.references,
      out: options.out,
      failures,
    });
    log(`live: ${programs.length} sessions for ~${options.seconds} s`);
    const live = await livePhase({
      service,
      accounts,
      programs,
      clips,
      references: solo.references,
      url: options.url,
      seconds: options.seconds,
      soloPace,
      inspectorPort: options.inspectorPort,
    });

    const verdict = {
      ...options,
      model,
      accounts,
      programs,
      solo,
      live,
      failures,
      notes,
    };
    const judged = judge(verdict);
    printTable(judged.summary, judged.sessionRows);
    console.log(JSON.stringify(judged.summary, null, 2));
    writeDetails(options.out, verdict, judged, fingerprints);
    const written = [options.out, solo.referencesFile].map((f) => path.relative(root, f));
    log(`wrote ${written.join(" and ")}`);
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
