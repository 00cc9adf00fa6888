/**
 * Server-side readings while the live phase runs, each on its own timer:
 * - the isolate's inference queue and ORT's WASM heap (GET /admin/isolate) every second;
 * - every account's active sessions (GET /v1/sessions) every 2 s: never more than its limit;
 * - V8's JS heap through wrangler's inspector (tools/load/inspector.ts) every 5 s, when a port is
 *   given. The inspector answers only while the isolate is idle, so a reading can be late or
 *   missing under load; a missed reading is counted, not fatal.
 * A reading that fails is recorded with its error; the soak reports them.
 */
import { Inspector } from "../inspector.ts";
import type { Service, SoakAccount } from "./service.ts";

const ISOLATE_EVERY_MS = 1_000;
const SESSIONS_EVERY_MS = 2_000;
const JS_HEAP_EVERY_MS = 5_000;

export interface MonitorResult {
  /** False when the server has no /admin/isolate route (not mounted). */
  isolateRoute: boolean;
  isolateSamples: number;
  /** Largest `waiting` seen in a sample. */
  sampledPeakQueue: number | null;
  first: { peakWaiting: number; droppedInterims: number; completedFinals: number } | null;
  last: { peakWaiting: number; droppedInterims: number; completedFinals: number } | null;
  wasmHeapPeakBytes: number | null;
  jsHeap: { samples: number; missed: number; peakUsedBytes: number | null; error: string | null };
  /** Per account (same order as given): the most sessions GET /v1/sessions listed at once. */
  sessionsPeak: number[];
  sessionSamples: number;
  errors: string[];
}

export class Monitor {
  readonly #service: Service;
  readonly #accounts: SoakAccount[];
  readonly #inspectorPort: number | null;
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #inspector: Inspector | null = null;
  readonly result: MonitorResult;

  constructor(service: Service, accounts: SoakAccount[], inspectorPort: number | null) {
    this.#service = service;
    this.#accounts = accounts;
    this.#inspectorPort = inspectorPort;
    this.result = {
      isolateRoute: true,
      isolateSamples: 0,
      sampledPeakQueue: null,
      first: null,
      last: null,
      wasmHeapPeakBytes: null,
      jsHeap: { samples: 0, missed: 0, peakUsedBytes: null, error: null },
      sessionsPeak: accounts.map(() => 0),
      sessionSamples: 0,
      errors: [],
    };
  }

  async start(): Promise<void> {
    await this.#sampleIsolate();
    await this.#sampleSessions();
    this.#every(ISOLATE_EVERY_MS, () => this.#sampleIsolate());
    this.#every(SESSIONS_EVERY_MS, () => this.#sampleSessions());
    if (this.#inspectorPort !== null) {
      try {
        this.#inspector = await Inspector.connect(this.#inspectorPort);
        this.#every(JS_HEAP_EVERY_MS, () => this.#sampleJsHeap());
      } catch (error) {
        this.result.jsHeap.error = errorText(error);
      }
    }
  }

  /** Stops sampling, takes one last isolate reading, closes the inspector. */
  async stop(): Promise<MonitorResult> {
    for (const timer of this.#timers) clearInterval(timer);
    await Promise.all(this.#inFlight);
    await this.#sampleIsolate();
    if (this.#inspector !== null) {
      await this.#sampleJsHeap();
      this.#inspector.close();
    }
    return this.result;
  }

  /** Runs `task` every `ms`, skipping a tick while the previous one is still running. */
  #every(ms: number, task: () => Promise<void>): void {
    let running = false;
    this.#timers.push(
      setInterval(() => {
        if (running) return;
        running = true;
        const run = task().finally(() => {
          running = false;
          this.#inFlight.delete(run);
        });
        this.#inFlight.add(run);
      }, ms),
    );
  }

  async #sampleIsolate(): Promise<void> {
    if (!this.result.isolateRoute) return;
    try {
      const stats = await this.#service.isolateStats();
      if (stats === null) {
        this.result.isolateRoute = false;
        return;
      }
      const r = this.result;
      r.isolateSamples += 1;
      r.sampledPeakQueue = Math.max(r.sampledPeakQueue ?? 0, stats.waiting);
      const summary = {
        peakWaiting: stats.peakWaiting,
        droppedInterims: stats.droppedInterims,
        completedFinals: stats.completedFinals,
      };
      r.first ??= summary;
      r.last = summary;
      if (stats.wasmHeapBytes !== null) {
        r.wasmHeapPeakBytes = Math.max(r.wasmHeapPeakBytes ?? 0, stats.wasmHeapBytes);
      }
    } catch (error) {
      this.#error("isolate stats", error);
    }
  }

  async #sampleSessions(): Promise<void> {
    try {
      const counts = await Promise.all(
        this.#accounts.map(
          async (account) => (await this.#service.activeSessions(account.key)).length,
        ),
      );
      counts.forEach((count, i) => {
        this.result.sessionsPeak[i] = Math.max(this.result.sessionsPeak[i] ?? 0, count);
      });
      this.result.sessionSamples += 1;
    } catch (error) {
      this.#error("active sessions", error);
    }
  }

  async #sampleJsHeap(): Promise<void> {
    const inspector = this.#inspector;
    if (inspector === null) return;
    try {
      const usage = await inspector.heapUsage();
      const heap = this.result.jsHeap;
      heap.samples += 1;
      heap.peakUsedBytes = Math.max(heap.peakUsedBytes ?? 0, usage.usedBytes);
    } catch (error) {
      this.result.jsHeap.missed += 1;
      this.result.jsHeap.error = errorText(error);
    }
  }

  #error(what: string, error: unknown): void {
    // Bounded: one failing poller must not grow the report by one line a second.
    if (this.result.errors.length < 20) this.result.errors.push(`${what}: ${errorText(error)}`);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
