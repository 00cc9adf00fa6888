/**
 * The soak's verdict and report: every check on the live phase's records, probes and server
 * readings (a failure is a line in `failures`), the summary JSON, the table on stdout, and the
 * details file (every session's finals beside its reference).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { SessionRecord } from "../session-run.ts";
import type { LiveResult, MonitorResult } from "./live.ts";
import { BYTES_PER_SECOND, describeProgram, type Program } from "./programs.ts";
import { elapsedSeconds } from "./progress.ts";
import type { SoakAccount } from "./service.ts";
import type { SoloResult } from "./solo.ts";
import {
  compareFinals,
  latenciesOf,
  liveProblems,
  percentile,
  refusalReason,
  tally,
} from "./verdict.ts";

export interface Verdict {
  url: string;
  model: string;
  seed: number;
  seconds: number;
  resume: boolean;
  maxLatencyMs: number;
  accounts: readonly SoakAccount[];
  programs: readonly Program[];
  solo: SoloResult;
  live: LiveResult;
  /** Failures found before the verdict (solo phase); the verdict adds its own. */
  failures: string[];
  notes: string[];
}

interface SessionRow {
  program: Program;
  record: SessionRecord;
  problems: string[];
}

export type Summary = ReturnType<typeof judge>["summary"];

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
const roundOrNull = (value: number | null) => (value === null ? null : Math.round(value));
const sumOf = <T>(items: readonly T[], value: (item: T) => number) =>
  items.reduce((total, item) => total + value(item), 0);

export function judge(run: Verdict) {
  const { accounts, programs, failures, notes, solo } = run;
  const { records, probes, tracks, peakAll, server, after } = run.live;
  const sessionRows: SessionRow[] = records.map((record, i) => {
    const program = programs[i] as Program;
    const problems = liveProblems(record, solo.references.get(program.id), run.maxLatencyMs);
    for (const problem of problems) failures.push(`${program.id}: ${problem}`);
    return { program, record, problems };
  });
  const accountRows = accounts.map((account, a) => ({
    name: account.name,
    id: account.id,
    limit: account.limit,
    sessions: tracks[a]?.sessions ?? 0,
    peakClient: tracks[a]?.peak ?? 0,
    peakServer: server.sessionsPeak[a] ?? 0,
    probesRefused: probes.filter((p) => p.account === a && p.refusal?.status === 429).length,
    slotsAfter: after.slots[a] ?? 0,
    sessionsAfter: after.sessions[a] ?? 0,
  }));
  for (const row of accountRows) {
    const checks: [boolean, string][] = [
      [row.peakClient > row.limit, `${row.peakClient} sessions at once, limit ${row.limit}`],
      [row.peakServer > row.limit, `GET /v1/sessions listed ${row.peakServer}, limit ${row.limit}`],
      [row.slotsAfter > 0, `${row.slotsAfter} slots still held after the run`],
      [row.sessionsAfter > 0, `${row.sessionsAfter} sessions still listed after the run`],
    ];
    for (const [failed, what] of checks) if (failed) failures.push(`${row.name}: ${what}`);
  }
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
      failures.push(`${name}: probe refused with ${refusalReason(p.refusal)}, expected 429`);
    }
  }
  const refused429 = probes.filter((p) => p.refusal?.status === 429).length;
  if (refused429 === 0)
    failures.push("no probe was refused: the accounts' limits were never tested");

  const liveFinals = records.flatMap((r) => r.finals);
  const latencies = latenciesOf(liveFinals);
  const refusals = [
    ...probes.flatMap((p) => (p.refusal ? [`probe ${refusalReason(p.refusal)}`] : [])),
    ...records.flatMap((r) => (r.refusal ? [`session ${refusalReason(r.refusal)}`] : [])),
    ...records.flatMap((r) => r.resumeRefusals.map((x) => `resume ${refusalReason(x)}`)),
  ];
  const comparisons = sessionRows.map(({ program, record }) => {
    const reference = solo.references.get(program.id);
    return reference === undefined || record.refusal !== null
      ? null
      : compareFinals(reference, record.finals);
  });
  const summary = {
    ok: failures.length === 0,
    url: run.url,
    model: run.model,
    seed: run.seed,
    seconds: run.seconds,
    resume: run.resume,
    sessions: {
      offered: programs.length + probes.length,
      programs: programs.length,
      admitted: records.filter((r) => r.refusal === null && r.handshakeMs !== null).length,
      peakConcurrent: peakAll,
      completed: sessionRows.filter((r) => r.problems.length === 0).length,
      failed: sessionRows.filter((r) => r.problems.length > 0).length,
      byBehaviour: tally(programs.map((p) => p.behaviour)),
    },
    audioSeconds: {
      live: round(sumOf(records, (r) => r.audioBytes) / BYTES_PER_SECOND, 1),
      solo: round(solo.audioBytes / BYTES_PER_SECOND, 1),
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
    probes: { sent: probes.length, refused429 },
    resumes: {
      drops: sumOf(records, (r) => r.drops),
      resumed: sumOf(records, (r) => r.resumes),
      replayedFinals: liveFinals.filter((f) => f.replay).length,
    },
    finals: {
      count: liveFinals.length,
      measured: latencies.length,
      latencyMs: {
        p50: roundOrNull(percentile(latencies, 0.5)),
        p95: roundOrNull(percentile(latencies, 0.95)),
        max: roundOrNull(percentile(latencies, 1)),
      },
      late: latencies.filter((l) => l > run.maxLatencyMs).length,
      maxLatencyMs: run.maxLatencyMs,
    },
    closes: tally(
      records.map((r) => (r.close ? `${r.close.code} ${r.close.reason}`.trim() : "none")),
    ),
    server: serverSummary(server),
    accounts: accountRows,
    timing: {
      soloSeconds: round(solo.seconds, 1),
      liveSeconds: round(run.live.seconds, 1),
      drainSeconds: round(after.waitedMs / 1000, 1),
      totalSeconds: round(elapsedSeconds(), 1),
    },
    notes: [...notes, ...server.errors.map((e) => `monitor: ${e}`)],
    failures,
  };
  return { summary, sessionRows, comparisons };
}

function serverSummary(server: MonitorResult) {
  const { first, last, jsHeap } = server;
  // The scheduler's own peak is since the isolate started: it is the live phase's peak only if
  // it rose during the phase; otherwise the largest depth sampled is the best reading there is.
  const rose = first !== null && last !== null && last.peakWaiting > first.peakWaiting;
  return {
    isolateRoute: server.isolateRoute,
    peakQueueDepth: rose ? (last?.peakWaiting ?? null) : server.sampledPeakQueue,
    peakQueueDepthSource: rose
      ? "scheduler peak (rose during the live phase)"
      : "largest sampled depth",
    droppedInterims: first && last ? last.droppedInterims - first.droppedInterims : null,
    finalsTranscribed: first && last ? last.completedFinals - first.completedFinals : null,
    wasmHeapPeakBytes: server.wasmHeapPeakBytes,
    jsHeapPeakUsedBytes: jsHeap.peakUsedBytes,
    jsHeapSamples: jsHeap.samples,
    jsHeapMissed: jsHeap.missed,
    jsHeapError: jsHeap.error,
    sessionSamples: server.sessionSamples,
  };
}

const mib = (bytes: number | null) =>
  bytes === null ? "n/a" : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const ms = (value: number | null) => (value === null ? "n/a" : `${Math.round(value)} ms`);

/** Rows of cells as left-aligned columns two spaces apart. */
function pad(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
  const line = (row: string[]) => row.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join("  ");
  return rows.map((row) => line(row).trimEnd()).join("\n");
}

/** The accounts table: its headings and the summary's field under each. */
const ACCOUNT_COLUMNS = [
  ["account", "name"],
  ["limit", "limit"],
  ["sessions", "sessions"],
  ["peak (client)", "peakClient"],
  ["peak (server)", "peakServer"],
  ["probes refused", "probesRefused"],
  ["slots after", "slotsAfter"],
  ["sessions after", "sessionsAfter"],
] as const;

function behaviourRows(rows: readonly SessionRow[]): string[][] {
  return (["realtime", "fast", "pauses", "resume"] as const).flatMap((behaviour) => {
    const of = rows.filter((r) => r.program.behaviour === behaviour);
    if (of.length === 0) return [];
    const latencies = latenciesOf(of.flatMap((r) => r.record.finals));
    const failed = of.filter((r) => r.problems.length > 0).length;
    const finals = sumOf(of, (r) => r.record.finals.length);
    const p50 = ms(percentile(latencies, 0.5));
    const p95 = ms(percentile(latencies, 0.95));
    return [[behaviour, String(of.length), String(failed), String(finals), p50, p95]];
  });
}

export function printTable(s: Summary, rows: readonly SessionRow[]): void {
  const { sessions, mismatches, resumes, finals, server } = s;
  const refusals = Object.entries(s.refusals).map(([reason, n]) => `${reason} × ${n}`);
  const jsHeapNote = server.jsHeapError
    ? ` (inspector: ${server.jsHeapError})`
    : server.jsHeapSamples === 0
      ? " (JS: pass --inspector-port)"
      : "";
  const lines = [
    `Earshot soak: ${s.url}, transcriber ${s.model}, seed ${s.seed}, ${sessions.programs} sessions × ${s.seconds} s`,
    "",
    pad([
      ACCOUNT_COLUMNS.map(([heading]) => heading),
      ...s.accounts.map((a) => ACCOUNT_COLUMNS.map(([, field]) => String(a[field]))),
    ]),
    "",
    pad([
      ["behaviour", "sessions", "failed", "finals", "latency p50", "latency p95"],
      ...behaviourRows(rows),
    ]),
    "",
    pad([
      [
        "sessions",
        `${sessions.admitted} of ${sessions.programs} admitted, ${sessions.peakConcurrent} at once; ${sessions.completed} passed, ${sessions.failed} failed`,
      ],
      ["audio", `${s.audioSeconds.live} s live, ${s.audioSeconds.solo} s solo references`],
      [
        "mismatches",
        `${mismatches.sessions} sessions (${mismatches.text} transcript, ${mismatches.boundariesOnly} boundaries only); ${mismatches.truncated} ended early, ${mismatches.unchecked} unchecked`,
      ],
      ["refusals", refusals.join(", ") || "none"],
      [
        "resumes",
        `${resumes.drops} drops, ${resumes.resumed} resumed, ${resumes.replayedFinals} finals replayed`,
      ],
      [
        "finals",
        `${finals.count}; latency p50 ${ms(finals.latencyMs.p50)}, p95 ${ms(finals.latencyMs.p95)}, max ${ms(finals.latencyMs.max)}; ${finals.late} later than ${finals.maxLatencyMs} ms`,
      ],
      [
        "queue",
        `peak inference queue ${server.peakQueueDepth ?? "n/a"} (${server.peakQueueDepthSource}), ${server.droppedInterims ?? "n/a"} interims dropped`,
      ],
      [
        "heap",
        `WASM ${mib(server.wasmHeapPeakBytes)}, JS ${mib(server.jsHeapPeakUsedBytes)}${jsHeapNote}`,
      ],
      ["time", `solo ${s.timing.soloSeconds} s, live ${s.timing.liveSeconds} s`],
    ]),
    ...s.notes.map((note) => `note: ${note}`),
  ];
  if (s.failures.length > 0) {
    lines.push("", `FAILURES (${s.failures.length}):`);
    lines.push(...s.failures.slice(0, 60).map((failure) => `  ${failure}`));
    if (s.failures.length > 60) {
      lines.push(`  … and ${s.failures.length - 60} more (see the JSON file)`);
    }
  }
  lines.push("", s.ok ? "RESULT: PASS" : "RESULT: FAIL");
  console.log(lines.join("\n"));
}

/** The details file: the summary, every live session beside its reference, the solo runs. */
export function writeDetails(
  file: string,
  run: Verdict,
  judged: ReturnType<typeof judge>,
  fingerprints: readonly string[],
): void {
  const { summary, sessionRows, comparisons } = judged;
  const details = sessionRows.map(({ program, record, problems }, i) => ({
    program: program.id,
    fingerprint: fingerprints[i],
    description: describeProgram(program),
    account: run.accounts[program.account]?.name,
    sessionId: record.sessionId,
    problems,
    comparison: comparisons[i],
    close: record.close,
    drops: record.drops,
    resumes: record.resumePlans,
    finals: record.finals,
    reference: run.solo.references.get(program.id) ?? null,
  }));
  const soloRuns = run.solo.records.map((r) => ({
    program: r.program,
    close: r.close,
    finals: r.finals.length,
  }));
  // --out may name a folder that does not exist yet (test-results/ on a fresh clone).
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ summary, sessions: details, solo: soloRuns }, null, 2));
}
