/**
 * `npm run soak [-- options]`: a concurrency soak against a running `npm run dev` (loopback only),
 * or against a service of its own (`--launch fake|whisper`: the load tools' launcher,
 * scripts/lib/dev-worker.ts, on test-results/soak-state-<transcriber>, stopped at the end).
 *
 * 1. Creates three fresh accounts whose limits differ (3 : 2 : 1 of --sessions; 34 → 17, 11, 6),
 *    each with a key, through the admin API.
 * 2. Builds one program per session (scripts/soak/programs.ts): its own order of the eval clips and
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
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { resolveAdminToken } from "./admin.ts";
import { type Service as LaunchedService, prepareState, startService } from "./lib/dev-worker.ts";
import { parseManifest } from "./lib/eval/manifest.ts";
import { parseWav } from "./lib/eval/wav.ts";
import { HandshakeRefused, type Refusal, ResumableClient } from "./lib/resumable-client.ts";
import { Monitor, type MonitorResult } from "./soak/monitor.ts";
import {
  BYTES_PER_SECOND,
  buildPrograms,
  type Clip,
  describeProgram,
  type Program,
  SAMPLE_RATE,
} from "./soak/programs.ts";
import { Service, type SoakAccount } from "./soak/service.ts";
import { type FinalRecord, runProgram, type SessionRecord } from "./soak/session-run.ts";
import { compareFinals, percentile, splitSessions, tally } from "./soak/verdict.ts";

const root = path.resolve(import.meta.dirname, "..");
const DEFAULT_URL = "http://127.0.0.1:8787";
/** The issue's bar: at least 30 sessions at once, for several minutes. */
const DEFAULT_SESSIONS = 34;
const DEFAULT_SECONDS = 180;
/** A final this long after its last audio byte was sent is late: a failure. */
const DEFAULT_MAX_LATENCY_MS = 5_000;
/**
 * Solo pace cap (× real time); scripts/soak/solo-gate.ts slows a run to 1× whenever the server is
 * not visibly keeping up, so the cap only matters where it is. Fake: VAD only (~0.4 ms per 32-ms
 * frame). Whisper: its inferences share the isolate's lock with the VAD.
 */
const SOLO_PACE = { fake: 32, whisper: 16 } as const;
/** A solo run that floods or falls behind is retried at half the pace, this many times. */
const SOLO_RETRIES = 2;
/** Probe rounds: the first this long after every session was admitted, then this often. */
const PROBE_FIRST_MS = 5_000;
const PROBE_EVERY_MS = 30_000;
const PROBES_PER_ROUND = 2;
/**
 * How long slots may stay held after the last session ended: a session that must still transcribe
 * what it had queued releases its slot at the latest after FINISH_DEADLINE_MS (60 s, in
 * live-session.ts); 90 s leaves 30 s for the release itself, and also covers the 30-s resume
 * window of a resumable session whose client vanished (the soak's never do). Slots held after that
 * are leaks.
 */
const SLOT_DRAIN_MS = 90_000;
/** Launch jitter: sessions arrive over the first 1.5 s, not in one instant. */
const LAUNCH_SPREAD_MS = 1_500;

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

const started = performance.now();
function log(message: string): void {
  console.error(`[soak +${((performance.now() - started) / 1000).toFixed(0)}s] ${message}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

/** What a program's audio and options are: equal fingerprints, equal reference. */
function programFingerprint(program: Program): string {
  const { segments, query, behaviour } = program;
  return createHash("sha256")
    .update(JSON.stringify({ segments, query, resumable: behaviour === "resume" }))
    .digest("hex")
    .slice(0, 16);
}

interface ReferenceFile {
  model: string;
  references: Record<string, FinalRecord[]>;
}

function readReferences(file: string | null): ReferenceFile | null {
  if (file === null) return null;
  return JSON.parse(readFileSync(file, "utf8")) as ReferenceFile;
}

/** One short session: which transcriber the server runs, and whether it offers resume. */
async function probeServer(
  service: Service,
  account: SoakAccount,
  resumable: boolean,
): Promise<string> {
  const client = await ResumableClient.open({
    baseUrl: service.base,
    key: account.key,
    query: { encoding: "linear16", sample_rate: String(SAMPLE_RATE) },
    resumable,
    bytesPerSecond: BYTES_PER_SECOND,
    frameBytes: 640,
    maxKeptBytes: BYTES_PER_SECOND,
    handshakeTimeoutMs: 60_000, // the first session of an isolate loads the models
    events: {
      onMessage: (message) => {
        if (message.type !== "Metadata") return;
        const info = message.model_info as Record<string, { name?: unknown }> | undefined;
        const name = info ? Object.values(info)[0]?.name : undefined;
        if (typeof name === "string") model = name;
      },
    },
  });
  let model = "unknown";
  client.push(new Uint8Array(BYTES_PER_SECOND / 10));
  const closed = await client.closeStream(30_000);
  if (closed.code !== 1000) throw new Error(`probe session closed ${closed.code} ${closed.reason}`);
  return model;
}

/** Waits until no account holds a slot or lists a session; returns what is left at the end. */
async function drainSlots(
  service: Service,
  accounts: SoakAccount[],
  timeoutMs: number,
): Promise<{ slots: number[]; sessions: number[]; waitedMs: number }> {
  const from = performance.now();
  for (;;) {
    const slots = await Promise.all(accounts.map((a) => service.slotsHeld(a.key)));
    const sessions = await Promise.all(
      accounts.map(async (a) => (await service.activeSessions(a.key)).length),
    );
    const waitedMs = performance.now() - from;
    if ([...slots, ...sessions].every((n) => n === 0) || waitedMs > timeoutMs) {
      return { slots, sessions, waitedMs };
    }
    await sleep(500);
  }
}

interface AccountTrack {
  sessions: number;
  active: number;
  admitted: number;
  ended: number;
  peak: number;
}

interface ProbeResult {
  account: number;
  refusal: Refusal | null;
  /** Admitted, and the account then listed more sessions than its limit: a limit violation. */
  violation: boolean;
  /** Admitted although, as far as the client knew, every slot was taken (a session had just
   * ended at the server, or the limit was not enforced: `violation` tells which). */
  admittedWhileFull: boolean;
  error: string | null;
}

async function probe(
  service: Service,
  account: SoakAccount,
  index: number,
  track: AccountTrack,
): Promise<ProbeResult> {
  const full = () => track.admitted === track.sessions && track.ended === 0;
  try {
    const client = await ResumableClient.open({
      baseUrl: service.base,
      key: account.key,
      query: { encoding: "linear16", sample_rate: String(SAMPLE_RATE) },
      resumable: false,
      bytesPerSecond: BYTES_PER_SECOND,
      frameBytes: 640,
      maxKeptBytes: BYTES_PER_SECOND,
      handshakeTimeoutMs: 30_000,
      events: {},
    });
    const admittedWhileFull = full();
    // The limiter's own listing decides: the client's view lags a session that just ended.
    const listed = (await service.activeSessions(account.key)).length;
    await client.closeStream(30_000);
    const violation = listed > account.limit;
    return { account: index, refusal: null, violation, admittedWhileFull, error: null };
  } catch (error) {
    const none = { account: index, violation: false, admittedWhileFull: false };
    if (error instanceof HandshakeRefused) return { ...none, refusal: error.refusal, error: null };
    return { ...none, refusal: null, error: String(error) };
  }
}

const reason = (r: Refusal) => `${r.status} ${r.errCode || "(no err_code)"}`;
const mib = (bytes: number | null) =>
  bytes === null ? "n/a" : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const ms = (value: number | null) => (value === null ? "n/a" : `${Math.round(value)} ms`);

function pad(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
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
          `the server refused resumable=true (${reason(error.refusal)}: ${error.refusal.errMsg}); ` +
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

    // --- solo -----------------------------------------------------------------------------------
    const soloStarted = performance.now();
    const references = new Map<string, FinalRecord[]>();
    const reused = readReferences(options.references);
    if (reused !== null && reused.model !== model) {
      throw new Error(`--references were made with ${reused.model}, the server runs ${model}`);
    }
    const soloRecords: SessionRecord[] = [];
    let soloAudioBytes = 0;
    for (const [i, program] of programs.entries()) {
      const fingerprint = fingerprints[i] ?? "";
      const known = reused?.references[fingerprint];
      if (known !== undefined) {
        references.set(program.id, known);
        continue;
      }
      const account = accounts[program.account] as SoakAccount;
      let pace = soloPace;
      for (let attempt = 0; attempt <= SOLO_RETRIES; attempt++) {
        const estimateS = program.totalBytes / BYTES_PER_SECOND / pace;
        const record = await runProgram(program, {
          baseUrl: options.url,
          key: account.key,
          clips,
          mode: "solo",
          soloPace: pace,
          deadlineMs: Date.now() + (estimateS * 3 + 120) * 1000,
        });
        const problems = soloProblems(record);
        if (problems.length === 0) {
          references.set(program.id, record.finals);
          soloRecords.push(record);
          soloAudioBytes += record.audioBytes;
          log(`solo ${program.id}: ${record.finals.length} finals at ${pace}×`);
          break;
        }
        log(`solo ${program.id} at ${pace}× failed: ${problems.join("; ")}`);
        if (attempt === SOLO_RETRIES)
          failures.push(`${program.id}: no solo reference (${problems.join("; ")})`);
        pace /= 2;
        await drainSlots(service, accounts, SLOT_DRAIN_MS);
      }
    }
    const soloSeconds = (performance.now() - soloStarted) / 1000;
    // Kept per transcriber (model name) and program fingerprint, added to what earlier runs left,
    // for --references: a solo phase is the long part of a Whisper soak.
    const referencesFile = path.join(path.dirname(options.out), `soak-references-${model}.json`);
    mkdirSync(path.dirname(options.out), { recursive: true });
    let stored: ReferenceFile = { model, references: {} };
    try {
      stored = readReferences(referencesFile) ?? stored;
    } catch {
      // None yet, or unreadable: this run's references replace it.
    }
    programs.forEach((program, i) => {
      const finals = references.get(program.id);
      if (finals !== undefined) stored.references[fingerprints[i] ?? ""] = finals;
    });
    writeFileSync(referencesFile, JSON.stringify({ model, references: stored.references }));
    const before = await drainSlots(service, accounts, SLOT_DRAIN_MS);
    if ([...before.slots, ...before.sessions].some((n) => n > 0)) {
      failures.push(
        `after the solo runs, slots ${before.slots} and sessions ${before.sessions} still held`,
      );
    }

    // --- live -----------------------------------------------------------------------------------
    log(`live: ${programs.length} sessions for ~${options.seconds} s`);
    const monitor = new Monitor(service, accounts, options.inspectorPort);
    await monitor.start();
    const tracks: AccountTrack[] = limits.map((sessions) => ({
      sessions,
      active: 0,
      admitted: 0,
      ended: 0,
      peak: 0,
    }));
    let activeAll = 0;
    let peakAll = 0;
    let settled = 0;
    const liveStarted = performance.now();
    const deadlineMs = Date.now() + (options.seconds * 1.5 + 180) * 1000;
    const liveRuns = programs.map(async (program, i) => {
      await sleep((i * LAUNCH_SPREAD_MS) / programs.length);
      const track = tracks[program.account] as AccountTrack;
      const account = accounts[program.account] as SoakAccount;
      const reference = references.get(program.id);
      let admitted = false;
      const record = await runProgram(program, {
        baseUrl: options.url,
        key: account.key,
        clips,
        mode: "live",
        soloPace,
        deadlineMs,
        ...(reference === undefined ? {} : { reference }),
        onAdmitted: () => {
          admitted = true;
          track.admitted += 1;
          track.active += 1;
          track.peak = Math.max(track.peak, track.active);
          activeAll += 1;
          peakAll = Math.max(peakAll, activeAll);
          settled += 1;
        },
        onEnded: () => {
          track.active -= 1;
          track.ended += 1;
          activeAll -= 1;
        },
      });
      if (!admitted) settled += 1;
      log(
        `live ${program.id}: ${record.refusal ? `refused ${reason(record.refusal)}` : `${record.finals.length} finals, close ${record.close?.code} ${record.close?.reason ?? ""}`}`,
      );
      return record;
    });

    // Probes: while an account is full, more connections with its key must be refused.
    const probes: ProbeResult[] = [];
    let liveDone = false;
    const probing = (async () => {
      while (settled < programs.length && !liveDone) await sleep(100);
      await sleep(PROBE_FIRST_MS);
      while (!liveDone) {
        const round = accounts.flatMap((account, a) => {
          const track = tracks[a] as AccountTrack;
          if (track.admitted !== track.sessions || track.ended > 0) return [];
          return Array.from({ length: PROBES_PER_ROUND }, () => probe(service, account, a, track));
        });
        if (round.length === 0) break;
        probes.push(...(await Promise.all(round)));
        const until = performance.now() + PROBE_EVERY_MS;
        while (!liveDone && performance.now() < until) await sleep(250);
      }
    })();
    const records = await Promise.all(liveRuns);
    liveDone = true;
    await probing;
    const liveSeconds = (performance.now() - liveStarted) / 1000;
    const server = await monitor.stop();
    log("live phase over; waiting for every slot to be released");
    const after = await drainSlots(service, accounts, SLOT_DRAIN_MS);

    // --- verdict --------------------------------------------------------------------------------
    const sessionRows = records.map((record, i) => {
      const program = programs[i] as Program;
      const problems = liveProblems(record, references.get(program.id), options.maxLatencyMs);
      for (const problem of problems) failures.push(`${program.id}: ${problem}`);
      return { program, record, problems };
    });
    tracks.forEach((track, a) => {
      const account = accounts[a] as SoakAccount;
      if (track.peak > account.limit)
        failures.push(`${account.name}: ${track.peak} sessions at once, limit ${account.limit}`);
      const serverPeak = server.sessionsPeak[a] ?? 0;
      if (serverPeak > account.limit) {
        failures.push(
          `${account.name}: GET /v1/sessions listed ${serverPeak}, limit ${account.limit}`,
        );
      }
      if ((after.slots[a] ?? 0) > 0)
        failures.push(`${account.name}: ${after.slots[a]} slots still held after the run`);
      if ((after.sessions[a] ?? 0) > 0)
        failures.push(`${account.name}: ${after.sessions[a]} sessions still listed after the run`);
    });
    if (peakAll < programs.length) {
      failures.push(`only ${peakAll} of ${programs.length} sessions were ever running at once`);
    }
    for (const p of probes) {
      const name = accounts[p.account]?.name ?? "?";
      if (p.violation) failures.push(`${name}: a probe was admitted beyond the account's limit`);
      else if (p.admittedWhileFull)
        notes.push(`${name}: a probe took a slot just freed at the server`);
      if (p.error !== null) failures.push(`${name}: probe failed: ${p.error}`);
      if (p.refusal !== null && p.refusal.status !== 429) {
        failures.push(`${name}: probe refused with ${reason(p.refusal)}, expected 429`);
      }
    }
    const expectedProbes = probes.filter((p) => p.refusal?.status === 429).length;
    if (expectedProbes === 0)
      failures.push("no probe was refused: the accounts' limits were never tested");

    const liveFinals = records.flatMap((r) => r.finals);
    const latencies = liveFinals.flatMap((f) => (f.latencyMs === null ? [] : [f.latencyMs]));
    const late = latencies.filter((l) => l > options.maxLatencyMs).length;
    const refusals = [
      ...probes.flatMap((p) => (p.refusal ? [`probe ${reason(p.refusal)}`] : [])),
      ...records.flatMap((r) => (r.refusal ? [`session ${reason(r.refusal)}`] : [])),
      ...records.flatMap((r) => r.resumeRefusals.map((x) => `resume ${reason(x)}`)),
    ];
    const comparisons = sessionRows.map(({ program, record }) => {
      const reference = references.get(program.id);
      return reference === undefined || record.refusal !== null
        ? null
        : compareFinals(reference, record.finals);
    });
    const summary = {
      ok: failures.length === 0,
      url: options.url,
      model,
      seed: options.seed,
      seconds: options.seconds,
      resume: options.resume,
      sessions: {
        offered: programs.length + probes.length,
        programs: programs.length,
        admitted: records.filter((r) => r.refusal === null && r.admittedAtMs !== null).length,
        peakConcurrent: peakAll,
        completed: sessionRows.filter((r) => r.problems.length === 0).length,
        failed: sessionRows.filter((r) => r.problems.length > 0).length,
        byBehaviour: tally(programs.map((p) => p.behaviour)),
      },
      audioSeconds: {
        live: round(records.reduce((n, r) => n + r.audioBytes, 0) / BYTES_PER_SECOND, 1),
        solo: round(soloAudioBytes / BYTES_PER_SECOND, 1),
      },
      mismatches: {
        // A final that differs from the solo run's at its place: cross-talk, or nondeterminism.
        sessions: comparisons.filter((c) => c !== null && !c.sameFinals && !c.truncated).length,
        text: comparisons.filter((c) => c !== null && !c.sameText && !c.truncated).length,
        boundariesOnly: comparisons.filter((c) => c?.sameText === true && !c.sameFinals).length,
        // Every final received was right, but the session ended before the rest (see its close).
        truncated: comparisons.filter((c) => c?.truncated === true).length,
        unchecked: comparisons.filter((c) => c === null).length,
      },
      refusals: tally(refusals),
      probes: { sent: probes.length, refused429: expectedProbes },
      resumes: {
        drops: records.reduce((n, r) => n + r.drops, 0),
        resumed: records.reduce((n, r) => n + r.resumes, 0),
        replayedFinals: liveFinals.filter((f) => f.replay).length,
      },
      finals: {
        count: liveFinals.length,
        measured: latencies.length,
        latencyMs: {
          p50: roundOrNull(percentile(latencies, 0.5)),
          p95: roundOrNull(percentile(latencies, 0.95)),
          max: roundOrNull(latencies.length === 0 ? null : Math.max(...latencies)),
        },
        late,
        maxLatencyMs: options.maxLatencyMs,
      },
      closes: tally(
        records.map((r) => (r.close ? `${r.close.code} ${r.close.reason}`.trim() : "none")),
      ),
      server: serverSummary(server),
      accounts: accounts.map((account, a) => ({
        name: account.name,
        id: account.id,
        limit: account.limit,
        sessions: tracks[a]?.sessions ?? 0,
        peakClient: tracks[a]?.peak ?? 0,
        peakServer: server.sessionsPeak[a] ?? 0,
        probesRefused: probes.filter((p) => p.account === a && p.refusal?.status === 429).length,
        slotsAfter: after.slots[a] ?? 0,
        sessionsAfter: after.sessions[a] ?? 0,
      })),
      timing: {
        soloSeconds: round(soloSeconds, 1),
        liveSeconds: round(liveSeconds, 1),
        drainSeconds: round(after.waitedMs / 1000, 1),
        totalSeconds: round((performance.now() - started) / 1000, 1),
      },
      notes: [...notes, ...server.errors.map((e) => `monitor: ${e}`)],
      failures,
    };

    printTable(summary, sessionRows);
    console.log(JSON.stringify(summary, null, 2));
    const details = sessionRows.map(({ program, record, problems }, i) => ({
      program: program.id,
      fingerprint: fingerprints[i],
      description: describeProgram(program),
      account: accounts[program.account]?.name,
      sessionId: record.sessionId,
      problems,
      comparison: comparisons[i],
      close: record.close,
      drops: record.drops,
      resumes: record.resumePlans,
      finals: record.finals,
      reference: references.get(program.id) ?? null,
    }));
    writeFileSync(
      options.out,
      JSON.stringify(
        {
          summary,
          sessions: details,
          solo: soloRecords.map((r) => ({
            program: r.program,
            close: r.close,
            finals: r.finals.length,
          })),
        },
        null,
        2,
      ),
    );
    log(`wrote ${path.relative(root, options.out)} and ${path.relative(root, referencesFile)}`);
    return summary.ok ? 0 : 1;
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

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function roundOrNull(value: number | null): number | null {
  return value === null ? null : Math.round(value);
}

function serverSummary(server: MonitorResult) {
  // The scheduler's own peak is since the isolate started: it is the live phase's peak only if
  // it rose during the phase; otherwise the largest depth sampled is the best reading there is.
  const rose =
    server.first !== null &&
    server.last !== null &&
    server.last.peakWaiting > server.first.peakWaiting;
  return {
    isolateRoute: server.isolateRoute,
    peakQueueDepth: rose ? (server.last?.peakWaiting ?? null) : server.sampledPeakQueue,
    peakQueueDepthSource: rose
      ? "scheduler peak (rose during the live phase)"
      : "largest sampled depth",
    droppedInterims:
      server.first && server.last
        ? server.last.droppedInterims - server.first.droppedInterims
        : null,
    finalsTranscribed:
      server.first && server.last
        ? server.last.completedFinals - server.first.completedFinals
        : null,
    wasmHeapPeakBytes: server.wasmHeapPeakBytes,
    jsHeapPeakUsedBytes: server.jsHeap.peakUsedBytes,
    jsHeapSamples: server.jsHeap.samples,
    jsHeapMissed: server.jsHeap.missed,
    jsHeapError: server.jsHeap.error,
    sessionSamples: server.sessionSamples,
  };
}

function soloProblems(record: SessionRecord): string[] {
  const problems: string[] = [];
  if (record.refusal) problems.push(`refused ${reason(record.refusal)} ${record.refusal.errMsg}`);
  problems.push(...record.errors);
  if (record.refusal === null && (record.close?.code !== 1000 || !record.metadata)) {
    problems.push(
      `closed ${record.close?.code} ${record.close?.reason ?? ""}${record.metadata ? "" : " without Metadata"}`,
    );
  }
  return problems;
}

function liveProblems(
  record: SessionRecord,
  reference: FinalRecord[] | undefined,
  maxLatencyMs: number,
): string[] {
  const problems = soloProblems(record);
  if (record.refusal !== null) return problems;
  for (const closed of record.unexpectedCloses) {
    problems.push(`connection closed unexpectedly: ${closed.code} ${closed.reason}`);
  }
  if (record.close !== null && !record.close.clean)
    problems.push("the last connection ended without a close frame");
  if (record.drops !== record.resumes)
    problems.push(`${record.drops} drops, ${record.resumes} resumes`);
  const late = record.finals.filter((f) => f.latencyMs !== null && f.latencyMs > maxLatencyMs);
  if (late.length > 0) {
    const worst = Math.max(...late.map((f) => f.latencyMs ?? 0));
    problems.push(
      `${late.length} finals later than ${maxLatencyMs} ms (worst ${Math.round(worst)} ms)`,
    );
  }
  if (reference === undefined) problems.push("no solo reference to compare with");
  else {
    const comparison = compareFinals(reference, record.finals);
    if (!comparison.sameFinals) {
      const what = comparison.truncated
        ? "finals missing (the session ended early)"
        : comparison.sameText
          ? "final boundaries differ"
          : "TRANSCRIPT MISMATCH";
      problems.push(`${what}: ${comparison.detail}`);
    }
  }
  return problems;
}

type Summary = {
  model: string;
  url: string;
  seed: number;
  seconds: number;
  ok: boolean;
  sessions: {
    programs: number;
    admitted: number;
    peakConcurrent: number;
    completed: number;
    failed: number;
  };
  audioSeconds: { live: number; solo: number };
  mismatches: {
    sessions: number;
    text: number;
    boundariesOnly: number;
    truncated: number;
    unchecked: number;
  };
  refusals: Record<string, number>;
  resumes: { drops: number; resumed: number; replayedFinals: number };
  finals: {
    count: number;
    latencyMs: { p50: number | null; p95: number | null; max: number | null };
    late: number;
    maxLatencyMs: number;
  };
  server: ReturnType<typeof serverSummary>;
  accounts: {
    name: string;
    limit: number;
    sessions: number;
    peakClient: number;
    peakServer: number;
    probesRefused: number;
    slotsAfter: number;
    sessionsAfter: number;
  }[];
  timing: { soloSeconds: number; liveSeconds: number };
  notes: string[];
  failures: string[];
};

function printTable(
  s: Summary,
  rows: { program: Program; record: SessionRecord; problems: string[] }[],
): void {
  const out: string[] = [];
  out.push(
    `Earshot soak: ${s.url}, transcriber ${s.model}, seed ${s.seed}, ${s.sessions.programs} sessions × ${s.seconds} s`,
  );
  out.push("");
  out.push(
    pad([
      [
        "account",
        "limit",
        "sessions",
        "peak (client)",
        "peak (server)",
        "probes refused",
        "slots after",
        "sessions after",
      ],
      ...s.accounts.map((a) =>
        [
          a.name,
          a.limit,
          a.sessions,
          a.peakClient,
          a.peakServer,
          a.probesRefused,
          a.slotsAfter,
          a.sessionsAfter,
        ].map(String),
      ),
    ]),
  );
  out.push("");
  const behaviours = ["realtime", "fast", "pauses", "resume"] as const;
  out.push(
    pad([
      ["behaviour", "sessions", "failed", "finals", "latency p50", "latency p95"],
      ...behaviours.flatMap((b) => {
        const of = rows.filter((r) => r.program.behaviour === b);
        if (of.length === 0) return [];
        const lat = of.flatMap((r) =>
          r.record.finals.flatMap((f) => (f.latencyMs === null ? [] : [f.latencyMs])),
        );
        return [
          [
            b,
            String(of.length),
            String(of.filter((r) => r.problems.length > 0).length),
            String(of.reduce((n, r) => n + r.record.finals.length, 0)),
            ms(percentile(lat, 0.5)),
            ms(percentile(lat, 0.95)),
          ],
        ];
      }),
    ]),
  );
  out.push("");
  const refusals =
    Object.entries(s.refusals)
      .map(([k, v]) => `${k} × ${v}`)
      .join(", ") || "none";
  out.push(
    pad([
      [
        "sessions",
        `${s.sessions.admitted} of ${s.sessions.programs} admitted, ${s.sessions.peakConcurrent} at once; ${s.sessions.completed} passed, ${s.sessions.failed} failed`,
      ],
      ["audio", `${s.audioSeconds.live} s live, ${s.audioSeconds.solo} s solo references`],
      [
        "mismatches",
        `${s.mismatches.sessions} sessions (${s.mismatches.text} transcript, ${s.mismatches.boundariesOnly} boundaries only); ${s.mismatches.truncated} ended early, ${s.mismatches.unchecked} unchecked`,
      ],
      ["refusals", refusals],
      [
        "resumes",
        `${s.resumes.drops} drops, ${s.resumes.resumed} resumed, ${s.resumes.replayedFinals} finals replayed`,
      ],
      [
        "finals",
        `${s.finals.count}; latency p50 ${ms(s.finals.latencyMs.p50)}, p95 ${ms(s.finals.latencyMs.p95)}, max ${ms(s.finals.latencyMs.max)}; ${s.finals.late} later than ${s.finals.maxLatencyMs} ms`,
      ],
      [
        "queue",
        `peak inference queue ${s.server.peakQueueDepth ?? "n/a"} (${s.server.peakQueueDepthSource}), ${s.server.droppedInterims ?? "n/a"} interims dropped`,
      ],
      [
        "heap",
        `WASM ${mib(s.server.wasmHeapPeakBytes)}, JS ${mib(s.server.jsHeapPeakUsedBytes)}${
          s.server.jsHeapError
            ? ` (inspector: ${s.server.jsHeapError})`
            : s.server.jsHeapSamples === 0
              ? " (JS: pass --inspector-port)"
              : ""
        }`,
      ],
      ["time", `solo ${s.timing.soloSeconds} s, live ${s.timing.liveSeconds} s`],
    ]),
  );
  for (const note of s.notes) out.push(`note: ${note}`);
  if (s.failures.length > 0) {
    out.push("");
    out.push(`FAILURES (${s.failures.length}):`);
    for (const failure of s.failures.slice(0, 60)) out.push(`  ${failure}`);
    if (s.failures.length > 60)
      out.push(`  … and ${s.failures.length - 60} more (see the JSON file)`);
  }
  out.push("");
  out.push(s.ok ? "RESULT: PASS" : "RESULT: FAIL");
  console.log(out.join("\n"));
}

if (import.meta.main) {
  try {
    process.exitCode = await main();
  } catch (error) {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exitCode = 1;
  }
}
