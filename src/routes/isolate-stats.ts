/**
 * `GET /admin/isolate`: what the isolate that answers is carrying — its inference queue (the
 * scheduler's stats: depth now and at peak, jobs done, interims dropped, waiting times), the
 * size of ORT's WebAssembly heap and of the Whisper projection kernel's memory, and the Opus decoders alive with their own heaps (one per
 * session sending Opus). For the soak (tools/load/soak.ts) and operators.
 *
 * Mounted by src/index.ts at `/admin/isolate` after the admin API (`app.route("/admin", …)`), so
 * the admin API's `*` middleware authenticates it (Bearer EARSHOT_ADMIN_TOKEN) like every /admin
 * route; test/isolate-stats.test.ts checks that this holds for that mounting.
 *
 * Locally (`wrangler dev`) the worker and every Durable Object share one isolate, so these are the
 * figures of every session. In production a request lands on some isolate, rarely the one a given
 * session runs in: the answer describes only the isolate that served it.
 */
import { Hono } from "hono";
import { opusDecoderMemory } from "../audio/opus-decoder";
import { wasmHeapBytes } from "../runtime/ort";
import { percentile } from "../runtime/percentile";
import { projectionMemoryBytes } from "../stt/model-store";
import { isolateScheduler } from "../stt/whisper-transcriber";

export const isolateStatsRoutes = new Hono();

isolateStatsRoutes.get("/", (c) => {
  const stats = isolateScheduler.stats();
  const opus = opusDecoderMemory();
  return c.json({
    inference_queue: {
      waiting: stats.waiting,
      peak_waiting: stats.peakWaiting,
      completed_finals: stats.completed.final,
      completed_interims: stats.completed.interim,
      dropped_interims: stats.droppedInterims,
      // Over the most recent jobs only (the scheduler keeps a bounded sample), milliseconds.
      final_wait_ms: {
        samples: stats.waitMs.final.length,
        p50: percentile(stats.waitMs.final, 0.5),
        p95: percentile(stats.waitMs.final, 0.95),
        max: stats.waitMs.final.length === 0 ? null : Math.max(...stats.waitMs.final),
      },
    },
    // ORT's heap only grows, so its size now is also its peak; null before any model loaded.
    wasm_heap_bytes: wasmHeapBytes() ?? null,
    // The Whisper decoder's vocabulary table lives beside ORT's heap, in the projection kernel's
    // own memory (~21 MB, fixed once loaded); null before Whisper loaded.
    projection_kernel_bytes: projectionMemoryBytes(),
    // Each session sending Ogg/WebM Opus has its own decoder instance and heap (1 MiB each).
    opus_decoders: { live: opus.decoders, heap_bytes: opus.heapBytes },
  });
});
