/**
 * GET /admin/isolate through the real worker (src/index.ts mounts it after the admin API, whose
 * `*` middleware must guard it: a reordering that left it open fails "needs the admin token").
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadWhisper } from "../src/stt/model-store";
import { isolateScheduler } from "../src/stt/whisper-transcriber";
import { seedModels } from "./helpers/models";
import { ADMIN_TOKEN, send } from "./setup/accounts-app";

interface IsolateStats {
  inference_queue: {
    waiting: number;
    peak_waiting: number;
    completed_finals: number;
    completed_interims: number;
    dropped_interims: number;
    final_wait_ms: { samples: number; p50: number | null; p95: number | null; max: number | null };
  };
  wasm_heap_bytes: number | null;
  projection_kernel_bytes: number | null;
}

async function stats(): Promise<IsolateStats> {
  const response = await send("/admin/isolate", {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as IsolateStats;
}

describe("GET /admin/isolate", () => {
  it("needs the admin token", async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "Bearer wrong" },
      { authorization: `Token ${ADMIN_TOKEN}` },
    ];
    for (const headers of attempts) {
      const response = await send("/admin/isolate", { headers });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { err_code: string }).err_code).toBe("INVALID_AUTH");
    }
  });

  it("reports the isolate's inference queue as it changes", async () => {
    const before = await stats();
    let release = () => {};
    const blocker = new Promise<void>((resolve) => {
      release = resolve;
    });
    const session = `isolate-stats-${crypto.randomUUID()}`;
    const first = isolateScheduler.submit(session, "final", () => blocker);
    const second = isolateScheduler.submit(session, "final", async () => "done");
    const busy = await stats();
    expect(busy.inference_queue.waiting).toBeGreaterThanOrEqual(1);
    expect(busy.inference_queue.peak_waiting).toBeGreaterThanOrEqual(
      Math.max(1, before.inference_queue.peak_waiting),
    );
    release();
    expect(await second).toEqual({ status: "done", value: "done" });
    await first;
    const after = await stats();
    expect(after.inference_queue.completed_finals).toBe(
      before.inference_queue.completed_finals + 2,
    );
    expect(after.inference_queue.waiting).toBe(0);
    expect(after.inference_queue.final_wait_ms.samples).toBeGreaterThanOrEqual(2);
    expect(after.inference_queue.final_wait_ms.p50).not.toBeNull();
    isolateScheduler.forget(session);
  });

  it("reports the projection kernel's memory beside ORT's heap once Whisper is loaded", async () => {
    await seedModels();
    const models = await loadWhisper((env as unknown as { MODELS: R2Bucket }).MODELS);
    const reported = await stats();
    // The decoder's table (51 865 × 384 bytes) and the kernel's buffers, not counted in ORT's heap.
    expect(reported.projection_kernel_bytes).toBe(models.projection.memoryBytes);
    expect(reported.projection_kernel_bytes).toBeGreaterThan(51_865 * 384);
    expect(reported.wasm_heap_bytes).toBeGreaterThan(0);
  }, 120_000);
});
