/**
 * The soak's solo phase: every program streamed alone, one after another, faster than real time,
 * for its reference finals (what the live run must reproduce), and the short probe session that
 * tells which transcriber the server runs. References are kept per transcriber and program
 * fingerprint in test-results/soak-references-<model>.json for `--references`.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ResumableClient } from "../../client/resumable-client.ts";
import { type FinalRecord, runProgram, type SessionRecord } from "../session-run.ts";
import { BYTES_PER_SECOND, type Clip, type Program, SAMPLE_RATE } from "./programs.ts";
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

interface ReferenceFile {
  model: string;
  references: Record<string, FinalRecord[]>;
}

function readReferences(file: string | null): ReferenceFile | null {
  if (file === null) return null;
  return JSON.parse(readFileSync(file, "utf8")) as ReferenceFile;
}

export /** One short session: which transcriber the server runs, and whether it offers resume. */
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

export interface SoloRun {
  service: Service;
  accounts: SoakAccount[];
  programs: readonly Program[];
  fingerprints: readonly string[];
  clips: Clip[];
  /** The server's transcriber (probeServer). */
  model: string;
  url: string;
  soloPace: number;
  /** --references: an earlier run's file, or null. */
  reusedFile: string | null;
  /** Where the run's JSON goes; the references file is written beside it. */
  out: string;
  /** Problems are added here. */
  failures: string[];
}

export interface SoloResult {
  /** Reference finals by program id (absent: no solo run succeeded). */
  references: Map<string, FinalRecord[]>;
  records: SessionRecord[];
  audioBytes: number;
  seconds: number;
  referencesFile: string;
}

export async function soloPhase(run: SoloRun): Promise<SoloResult> {
  const { service, accounts, programs, fingerprints, clips, model, soloPace, failures } = run;
  const soloStarted = performance.now();
  const references = new Map<string, FinalRecord[]>();
  const reused = readReferences(run.reusedFile);
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
        baseUrl: run.url,
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
      await service.drain(accounts);
    }
  }
  const soloSeconds = (performance.now() - soloStarted) / 1000;
  // Kept per transcriber (model name) and program fingerprint, added to what earlier runs left,
  // for --references: a solo phase is the long part of a Whisper soak.
  const referencesFile = path.join(path.dirname(run.out), `soak-references-${model}.json`);
  mkdirSync(path.dirname(run.out), { recursive: true });
  let stored: ReferenceFile = { model, references: {} };
  try {
    stored = readReferences(referencesFile) ?? stored;
  } catch (error) {
    // None yet, or unreadable: this run's references replace it.
    const missing = error instanceof Error && "code" in error && error.code === "ENOENT";
    if (!missing) log(`${referencesFile} unreadable (${String(error)}): replaced by this run's`);
  }
  programs.forEach((program, i) => {
    const finals = references.get(program.id);
    if (finals !== undefined) stored.references[fingerprints[i] ?? ""] = finals;
  });
  writeFileSync(referencesFile, JSON.stringify({ model, references: stored.references }));
  const before = await service.drain(accounts);
  if ([...before.slots, ...before.sessions].some((n) => n > 0)) {
    failures.push(
      `after the solo runs, slots ${before.slots} and sessions ${before.sessions} still held`,
    );
  }
  return {
    references,
    records: soloRecords,
    audioBytes: soloAudioBytes,
    seconds: soloSeconds,
    referencesFile,
  };
}
