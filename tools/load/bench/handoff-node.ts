/**
 * How sessions in one isolate hand inference turns to each other (src/runtime/inference-lock.ts,
 * src/stt/inference-scheduler.ts, src/runtime/own-context.ts): the idle gap between one turn
 * ending and the next starting while two sessions contend, and how many timer callbacks the
 * waiting costs. Runs in Node, not workerd: workerd's clocks stand still between I/O, so a gap of
 * a few milliseconds inside it cannot be timed from JavaScript. The waiting logic is the same
 * code; Node's timers fire about as late as workerd's.
 *
 * `node tools/load/bench/handoff-node.ts [src dir]` prints one JSON object (`npm run bench` runs it
 * through tools/load/bench/handoff.ts). The src dir (default ./src) lets the same measurement run
 * against an older copy of the code.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";

const srcDir = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, "../../..", "src"));
const load = (file: string) => import(pathToFileURL(path.join(srcDir, file)).href);

/** Turns each session takes. */
const TURNS = 200;
/**
 * Work per turn: 5 slices of 1 ms of CPU with the event loop let run between them, as a job that
 * awaits I/O or the lock does; so a waiter's timers fire during the turn, as they do in workerd.
 */
const SLICES = 5;
const SLICE_MS = 1;

/** Counts timer callbacks that actually run: each is one wake-up of a waiting session. */
let wakeUps = 0;
const realSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = ((
  callback: (...args: unknown[]) => void,
  ms?: number,
  ...rest: unknown[]
) =>
  realSetTimeout(
    (...args: unknown[]) => {
      wakeUps += 1;
      callback(...args);
    },
    ms,
    ...rest,
  )) as typeof setTimeout;

function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Busy, as a synchronous WASM run is: no timer can fire meanwhile.
  }
}

/** One turn's work; its start and end. */
async function work(turns: Turn[]): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < SLICES; i++) {
    spin(SLICE_MS);
    if (i < SLICES - 1) await new Promise((resolve) => setImmediate(resolve));
  }
  turns.push({ start, end: performance.now() });
}

interface Turn {
  start: number;
  end: number;
}

export interface TurnsResult {
  turns: number;
  gapMs: { median: number; p95: number; max: number; total: number };
  wakeUps: number;
  wakeUpsPerTurn: number;
}

function summarise(turns: Turn[], wakes: number): TurnsResult {
  const sorted = [...turns].sort((a, b) => a.start - b.start);
  const gaps: number[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1];
    const turn = sorted[i];
    if (previous && turn) gaps.push(Math.max(0, turn.start - previous.end));
  }
  gaps.sort((a, b) => a - b);
  const at = (q: number) => gaps[Math.min(gaps.length - 1, Math.floor(q * gaps.length))] ?? 0;
  const round = (value: number) => Math.round(value * 1000) / 1000;
  return {
    turns: turns.length,
    gapMs: {
      median: round(at(0.5)),
      p95: round(at(0.95)),
      max: round(gaps.at(-1) ?? 0),
      total: round(gaps.reduce((a, b) => a + b, 0)),
    },
    wakeUps: wakes,
    wakeUpsPerTurn: round(wakes / turns.length),
  };
}

/** Two sessions, each taking TURNS turns of the inference lock back to back. */
async function lock(): Promise<TurnsResult> {
  const { runExclusive } = await load("runtime/inference-lock.ts");
  const turns: Turn[] = [];
  const session = async () => {
    for (let i = 0; i < TURNS; i++) {
      await runExclusive(() => work(turns));
    }
  };
  wakeUps = 0;
  await Promise.all([session(), session()]);
  return summarise(turns, wakeUps);
}

/** Two sessions, each submitting TURNS finals to a scheduler one after another. */
async function scheduler(): Promise<TurnsResult> {
  const { InferenceScheduler } = await load("stt/inference-scheduler.ts");
  const shared = new InferenceScheduler();
  const turns: Turn[] = [];
  const session = async (id: string) => {
    for (let i = 0; i < TURNS; i++) {
      await shared.submit(id, "final", () => work(turns));
    }
  };
  wakeUps = 0;
  await Promise.all([session("a"), session("b")]);
  return summarise(turns, wakeUps);
}

/** Four sessions asking for one model that takes 50 ms to load: how late the last one goes on. */
async function once(): Promise<{ lateMs: number; wakeUps: number }> {
  const { IsolateOnce } = await load("runtime/own-context.ts");
  const model = new IsolateOnce();
  let loaded = 0;
  const loader = async () => {
    await new Promise((resolve) => realSetTimeout(resolve, 50));
    loaded = performance.now();
    return "model";
  };
  wakeUps = 0;
  const resumed = await Promise.all(
    Array.from({ length: 4 }, async () => {
      await model.get(loader);
      return performance.now();
    }),
  );
  return {
    lateMs: Math.round((Math.max(...resumed) - loaded) * 1000) / 1000,
    wakeUps,
  };
}

/** What this prints (tools/load/bench/handoff.ts reads it). */
export interface HandoffResult {
  srcDir: string;
  workMs: number;
  lock: TurnsResult;
  scheduler: TurnsResult;
  once: { lateMs: number; wakeUps: number };
}

const result: HandoffResult = {
  srcDir,
  workMs: SLICES * SLICE_MS,
  lock: await lock(),
  scheduler: await scheduler(),
  once: await once(),
};
console.log(JSON.stringify(result));
