/**
 * Operator metrics through Workers Analytics Engine (binding METRICS in wrangler.toml): one data
 * point per handshake outcome and one per ended session, queried with Analytics Engine's SQL API
 * (README "Metrics"). Writing is fire-and-forget by the platform's design (writeDataPoint returns
 * nothing and never blocks the request); a throw is logged, never passed on, because metrics must
 * not fail a session.
 *
 * Layout (the SQL names are Analytics Engine's positional columns):
 * - handshake: index1 = account id ("" before authentication), blob1 = "handshake",
 *   blob2 = err_code or "admitted", double1 = HTTP status (101 when admitted).
 * - session end: index1 = account id, blob1 = "session", blob2 = close code and reason,
 *   blob3 = session id, double1 = close code, double2 = audio seconds received,
 *   double3 = audio seconds transcribed, double4 = session seconds, double5 = finals sent,
 *   double6 = the isolate's WASM heap bytes at the end (0 before any model loaded),
 *   double7 / double8 = the session's end of speech → final p50 / p95 in ms (0 when no final was
 *   timed; src/session/final-latency.ts), double9 = finals timed.
 * Account ids are the index, so sampling keeps each account's share (Analytics Engine samples per
 * index value).
 */
import type { LatencySummary } from "../session/final-latency";
import { createLogger } from "./log";

export interface MetricsEnv {
  /** Absent where no dataset is bound (the metrics are then not written anywhere). */
  METRICS?: AnalyticsEngineDataset;
}

export interface HandshakeMetric {
  accountId: string | null;
  status: number;
  /** The refusal's err_code, or "admitted". */
  outcome: string;
}

export interface SessionMetric {
  accountId: string;
  sessionId: string;
  closeCode: number;
  closeReason: string;
  audioSecondsReceived: number;
  audioSecondsTranscribed: number;
  sessionSeconds: number;
  finals: number;
  wasmHeapBytes: number;
  finalLatency: LatencySummary;
}

const log = createLogger({ module: "metrics" });

type Sink = (point: AnalyticsEngineDataPoint) => void;
/** The test seam: tests read the points instead of the platform's dataset. */
let testSink: Sink | null = null;

/** Tests only: sends every data point to `sink` until the returned function is called. */
export function captureMetricsForTests(sink: Sink): () => void {
  testSink = sink;
  return () => {
    testSink = null;
  };
}

function write(env: MetricsEnv, point: AnalyticsEngineDataPoint): void {
  try {
    if (testSink !== null) testSink(point);
    else env.METRICS?.writeDataPoint(point);
  } catch (error) {
    log.error("metrics write failed", { error, blobs: point.blobs });
  }
}

export function recordHandshake(env: MetricsEnv, metric: HandshakeMetric): void {
  write(env, {
    indexes: [metric.accountId ?? ""],
    blobs: ["handshake", metric.outcome],
    doubles: [metric.status],
  });
}

export function recordSessionEnd(env: MetricsEnv, metric: SessionMetric): void {
  write(env, {
    indexes: [metric.accountId],
    blobs: ["session", `${metric.closeCode} ${metric.closeReason}`.trim(), metric.sessionId],
    doubles: [
      metric.closeCode,
      metric.audioSecondsReceived,
      metric.audioSecondsTranscribed,
      metric.sessionSeconds,
      metric.finals,
      metric.wasmHeapBytes,
      metric.finalLatency.p50Ms ?? 0,
      metric.finalLatency.p95Ms ?? 0,
      metric.finalLatency.timed,
    ],
  });
}
