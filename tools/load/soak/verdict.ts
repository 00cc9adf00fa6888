/**
 * Judging one live session against its solo reference, and the small statistics the report needs.
 * Pure, so it is tested in workerd (test/soak-verdict.test.ts).
 */
import type { Refusal } from "../../client/resumable-client.ts";
import type { FinalRecord, SessionRecord } from "../session-run.ts";

/** The parts of a final that the live run must reproduce exactly. */
export interface ComparableFinal {
  start: number;
  duration: number;
  transcript: string;
  speechFinal: boolean;
  fromFinalize: boolean;
}

export interface Comparison {
  /** The joined transcripts (non-empty finals, in order, space-separated) are equal. */
  sameText: boolean;
  /** Every final is equal: count, boundaries, flags and text. */
  sameFinals: boolean;
  /**
   * Every final received equals the reference's at its place, but some are missing at the end:
   * the session stopped early (its own failure says why) — not cross-talk.
   */
  truncated: boolean;
  /** Where they first differ, for the report; null when they do not. */
  detail: string | null;
}

export function joinedText(finals: readonly ComparableFinal[]): string {
  return finals
    .map((f) => f.transcript.trim())
    .filter((t) => t !== "")
    .join(" ");
}

function describe(f: ComparableFinal | undefined): string {
  if (f === undefined) return "none";
  const flags = `${f.speechFinal ? " speech_final" : ""}${f.fromFinalize ? " from_finalize" : ""}`;
  return `[${f.start.toFixed(3)}+${f.duration.toFixed(3)}${flags}] ${JSON.stringify(f.transcript)}`;
}

const FINAL_FIELDS = ["start", "duration", "transcript", "speechFinal", "fromFinalize"] as const;
const sameFinal = (a: ComparableFinal, b: ComparableFinal) =>
  FINAL_FIELDS.every((field) => a[field] === b[field]);

export function compareFinals(
  reference: readonly ComparableFinal[],
  actual: readonly ComparableFinal[],
): Comparison {
  const sameText = joinedText(reference) === joinedText(actual);
  const length = Math.max(reference.length, actual.length);
  for (let i = 0; i < length; i++) {
    const want = reference[i];
    const got = actual[i];
    if (want === undefined || got === undefined || !sameFinal(want, got)) {
      return {
        sameText,
        sameFinals: false,
        truncated: got === undefined,
        detail: `final #${i + 1} of ${reference.length} expected ${describe(want)}, got ${describe(got)} (${actual.length} finals)`,
      };
    }
  }
  return { sameText, sameFinals: true, truncated: false, detail: null };
}

/** The measured latencies of `finals` (replays and empty spans have none). */
export function latenciesOf(finals: readonly FinalRecord[]): number[] {
  return finals.flatMap((f) => (f.latencyMs === null ? [] : [f.latencyMs]));
}

/** Nearest-rank percentile (q in [0, 1]); null for no values. */
export function percentile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] ?? null;
}

/**
 * The accounts' limits for `sessions` sessions: three accounts weighted 3 : 2 : 1 (e.g. 34 → 17,
 * 11, 6), every one at least 1, summing to `sessions`.
 */
export function splitSessions(sessions: number): number[] {
  if (!Number.isInteger(sessions) || sessions < 3) throw new RangeError("at least 3 sessions");
  const a = Math.max(1, Math.round((sessions * 3) / 6));
  const b = Math.max(1, Math.round((sessions * 2) / 6));
  const c = sessions - a - b;
  if (c < 1) return [sessions - 2, 1, 1];
  return [a, b, c];
}

/** Counts of equal strings, largest first: refusal reasons, close codes. */
export function tally(values: readonly string[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return Object.fromEntries([...counts].sort((x, y) => y[1] - x[1]));
}

/** A refused handshake, for the report: its status and Deepgram err_code. */
export const refusalReason = (r: Refusal) => `${r.status} ${r.errCode || "(no err_code)"}`;

/** What went wrong with a solo run (its finals are then no reference): refused, errors, close. */
export function soloProblems(record: SessionRecord): string[] {
  const { refusal, close, metadata } = record;
  const problems: string[] = [];
  if (refusal) problems.push(`refused ${refusalReason(refusal)} ${refusal.errMsg}`);
  problems.push(...record.errors);
  if (refusal === null && (close?.code !== 1000 || !metadata)) {
    const without = metadata ? "" : " without Metadata";
    problems.push(`closed ${close?.code} ${close?.reason ?? ""}${without}`);
  }
  return problems;
}

/** What went wrong with a live run, judged against its solo reference. */
export function liveProblems(
  record: SessionRecord,
  reference: FinalRecord[] | undefined,
  maxLatencyMs: number,
): string[] {
  const problems = soloProblems(record);
  if (record.refusal !== null) return problems;
  for (const closed of record.unexpectedCloses) {
    problems.push(`connection closed unexpectedly: ${closed.code} ${closed.reason}`);
  }
  if (record.close !== null && !record.close.clean) {
    problems.push("the last connection ended without a close frame");
  }
  if (record.drops !== record.resumes) {
    problems.push(`${record.drops} drops, ${record.resumes} resumes`);
  }
  const late = latenciesOf(record.finals).filter((ms) => ms > maxLatencyMs);
  if (late.length > 0) {
    const worst = Math.round(Math.max(...late));
    problems.push(`${late.length} finals later than ${maxLatencyMs} ms (worst ${worst} ms)`);
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
