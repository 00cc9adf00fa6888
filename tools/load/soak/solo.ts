/**
 * The soak's solo phase: every program streamed alone, one after another, faster than real time,
 * for its reference finals (what the live run must reproduce), and the short probe session that
 * tells which transcriber the server runs.
 */
import { createHash } from "node:crypto";
import { type FinalRecord, runProgram, type SessionRecord } from "../session-run.ts";
import { BYTES_PER_SECOND, type Clip, type Program } from "./programs.ts";
import { log } from "./progress.ts";
import type { Service, SoakAccount } from "./service.ts";
import { soloProblems } from "./verdict.ts";

/**
 * Solo pace cap (× real time); tools/load/soak/solo-gate.ts slows a run to 1× whenever the server
 * is not visibly keeping up, so the cap only matters where it is. Fake: VAD only (~0.4 ms per 32-ms
 * frame). Whisper: its inferences share the isolate's lock with the VAD.
 */
export const SOLO_PACE = { fake: 32, whisper: 16 } as const;
/** A solo run that floods or falls behind is retried at half the pace, this many times. */
const SOLO_RETRIES = 2;

/** What a program's audio and options are: equal fingerprints, equal reference. */
export function programFingerprint(program: Program): string {
  const { segments, query, behaviour } = program;
  return createHash("sha256")
    .update(JSON.stringify({ segments, query, resumable: behaviour === "resume" }))
    .digest("hex")
    .slice(0, 16);
}

/** One short session: which transcriber the server runs, and whether it offers resume. */
export async function probeServer(
  service: Service,
  account: SoakAccount,
  resumable: boolean,
): Promise<string> {
  let model = "unknown";
  // 60 s: the first session of an isolate loads the models.
  const client = await service.openSession(account.key, resumable, 60_000, {
    onMessage: (message) => {
      if (message.type !== "Metadata") return;
      const info = message.model_info as Record<string, { name?: unknown }> | undefined;
      const name = info ? Object.values(info)[0]?.name : undefined;
      if (typeof name === "string") model = name;
    },
  });
  client.push(new Uint8Array(BYTES_PER_SECOND / 10));
  const closed = await client.closeStream(30_000);
  if (closed.code !== 1000) throw new Error(`probe session closed ${closed.code} ${closed.reason}`);
  return model;
}

export interface SoloRun {
  service: Service;
  accounts: SoakAccount[];
  programs: readonly Program[];
  clips: Clip[];
  url: string;
  soloPace: number;
  /** Problems are added here. */
  failures: string[];
}

export type SoloResult = Awaited<ReturnType<typeof soloPhase>>;

export async function soloPhase(run: SoloRun) {
  const { service, accounts, failures } = run;
  const started = performance.now();
  /** Reference finals by program id (absent: no solo run succeeded). */
  const references = new Map<string, FinalRecord[]>();
  const records: SessionRecord[] = [];
  for (const program of run.programs) {
    const account = accounts[program.account] as SoakAccount;
    let pace = run.soloPace;
    for (let attempt = 0; attempt <= SOLO_RETRIES; attempt++) {
      const estimateS = program.totalBytes / BYTES_PER_SECOND / pace;
      const record = await runProgram(program, {
        baseUrl: run.url,
        key: account.key,
        clips: run.clips,
        mode: "solo",
        soloPace: pace,
        deadlineMs: Date.now() + (estimateS * 3 + 120) * 1000,
      });
      const problems = soloProblems(record);
      if (problems.length === 0) {
        references.set(program.id, record.finals);
        records.push(record);
        log(`solo ${program.id}: ${record.finals.length} finals at ${pace}×`);
        break;
      }
      log(`solo ${program.id} at ${pace}× failed: ${problems.join("; ")}`);
      if (attempt === SOLO_RETRIES) {
        failures.push(`${program.id}: no solo reference (${problems.join("; ")})`);
      }
      pace /= 2;
      await service.drain(accounts);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const held = await service.drain(accounts);
  if ([...held.slots, ...held.sessions].some((n) => n > 0)) {
    failures.push(
      `after the solo runs, slots ${held.slots} and sessions ${held.sessions} still held`,
    );
  }
  const audioBytes = records.reduce((n, r) => n + r.audioBytes, 0);
  return { references, records, audioBytes, seconds };
}
