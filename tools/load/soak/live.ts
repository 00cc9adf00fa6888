/**
 * The soak's live phase: every session at once, each account filled to its limit, and probes
 * (extra connections with a full account's key) that must be refused with 429; the server is
 * watched throughout (monitor.ts), and afterwards every slot must be released.
 */
import { HandshakeRefused, type Refusal, ResumableClient } from "../../client/resumable-client.ts";
import { type FinalRecord, runProgram, type SessionRecord } from "../session-run.ts";
import { Monitor, type MonitorResult } from "./monitor.ts";
import { BYTES_PER_SECOND, type Clip, type Program, SAMPLE_RATE } from "./programs.ts";
import { log, sleep } from "./progress.ts";
import type { Service, SoakAccount } from "./service.ts";
import { refusalReason } from "./verdict.ts";

/** Launch jitter: sessions arrive over the first 1.5 s, not in one instant. */
const LAUNCH_SPREAD_MS = 1_500;

/** Probe rounds: the first this long after every session was admitted, then this often. */
const PROBE_FIRST_MS = 5_000;
const PROBE_EVERY_MS = 30_000;
const PROBES_PER_ROUND = 2;

export interface AccountTrack {
  sessions: number;
  active: number;
  admitted: number;
  ended: number;
  peak: number;
}

export interface ProbeResult {
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

export interface LiveRun {
  service: Service;
  accounts: SoakAccount[];
  programs: readonly Program[];
  clips: Clip[];
  references: ReadonlyMap<string, FinalRecord[]>;
  url: string;
  seconds: number;
  soloPace: number;
  inspectorPort: number | null;
}

export interface LiveResult {
  /** One per program, in the programs' order. */
  records: SessionRecord[];
  probes: ProbeResult[];
  tracks: AccountTrack[];
  /** Most sessions running at once, as the client saw them. */
  peakAll: number;
  seconds: number;
  server: MonitorResult;
  /** What each account still held when the drain after the phase ended. */
  after: { slots: number[]; sessions: number[]; waitedMs: number };
}

export async function livePhase(run: LiveRun): Promise<LiveResult> {
  const { service, accounts, programs, clips, references, soloPace } = run;
  log(`live: ${programs.length} sessions for ~${run.seconds} s`);
  const monitor = new Monitor(service, accounts, run.inspectorPort);
  await monitor.start();
  const tracks: AccountTrack[] = accounts.map(({ limit: sessions }) => ({
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
  const deadlineMs = Date.now() + (run.seconds * 1.5 + 180) * 1000;
  const liveRuns = programs.map(async (program, i) => {
    await sleep((i * LAUNCH_SPREAD_MS) / programs.length);
    const track = tracks[program.account] as AccountTrack;
    const account = accounts[program.account] as SoakAccount;
    const reference = references.get(program.id);
    let admitted = false;
    const record = await runProgram(program, {
      baseUrl: run.url,
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
      `live ${program.id}: ${record.refusal ? `refused ${refusalReason(record.refusal)}` : `${record.finals.length} finals, close ${record.close?.code} ${record.close?.reason ?? ""}`}`,
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
  const after = await service.drain(accounts);
  return { records, probes, tracks, peakAll, seconds: liveSeconds, server, after };
}
