/**
 * The soak's verdict and report: every check on the live phase's records, probes and server
 * readings (a failure is a line in `failures`), the summary JSON, the table on stdout, and the
 * details file (every session's finals beside its reference).
 */
import { writeFileSync } from "node:fs";
import type { SessionRecord } from "../session-run.ts";
import type { LiveResult } from "./live.ts";
import type { MonitorResult } from "./monitor.ts";
import { BYTES_PER_SECOND, describeProgram, type Program } from "./programs.ts";
import { elapsedSeconds } from "./progress.ts";
import type { SoakAccount } from "./service.ts";
import type { SoloResult } from "./solo.ts";
import { compareFinals, liveProblems, percentile, refusalReason, tally } from "./verdict.ts";

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

export function judge(run: Verdict) {
  const { accounts, programs, failures, notes } = run;
  const { records, probes, tracks, peakAll, server, after } = run.live;
  const solo = run.solo;
  const sessionRows: SessionRow[] = records.map((record, i) => {
    const program = programs[i] as Program;
    const problems = liveProblems(record, solo.references.get(program.id), run.maxLatencyMs);
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
      failures.push(`${name}: probe refused with ${refusalReason(p.refusal)}, expected 429`);
    }
  }
  const expectedProbes = probes.filter((p) => p.refusal?.status === 429).length;
  if (expectedProbes === 0)
    failures.push("no probe was refused: the accounts' limits were never tested");

  const liveFinals = records.flatMap((r) => r.finals);
  const latencies = liveFinals.flatMap((f) => (f.latencyMs === null ? [] : [f.latencyMs]));
  const late = latencies.filter((l) => l > run.maxLatencyMs).length;
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
      admitted: records.filter((r) => r.refusal === null && r.admittedAtMs !== null).length,
      peakConcurrent: peakAll,
      completed: sessionRows.filter((r) => r.problems.length === 0).length,
      failed: sessionRows.filter((r) => r.problems.length > 0).length,
      byBehaviour: tally(programs.map((p) => p.behaviour)),
    },
    audioSeconds: {
      live: round(records.reduce((n, r) => n + r.audioBytes, 0) / BYTES_PER_SECOND, 1),
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
      maxLatencyMs: run.maxLatencyMs,
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

export function printTable(s: Summary, rows: readonly SessionRow[]): void {
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
  writeFileSync(file, JSON.stringify({ summary, sessions: details, solo: soloRuns }, null, 2));
}
