/**
 * A session's Durable Object dies mid-utterance. The plugin's evictDurableObject() refuses while a
 * non-hibernatable socket is open ("it still has active references"), so the test uses the
 * harshest reset it has, abortAllDurableObjects(): the client sees 1006 (abnormal, so Deepgram's
 * SDK reconnects), the finals stored before the crash survive, and the next session — same audio —
 * produces exactly what it produces on a fresh runtime. A resumable session's in-memory state (VAD,
 * the utterance in progress, the audio digest) died with the object, so its resume is refused 410
 * with the count of stored finals, and the slot is given back then (not only when the lease
 * expires).
 */
import { abortAllDurableObjects } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEMO_ACCOUNT_ID } from "../src/accounts/demo-seed";
import { listActiveSessions } from "../src/limits/limiter-client";
import { frames, handshake, type ServerJson, TestClient, withoutIds } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { limiterRow } from "./helpers/sessions";

const Q = "?encoding=linear16&sample_rate=16000&vad_events=true";

async function reference(pcm: Uint8Array): Promise<ServerJson[]> {
  const client = await TestClient.open(Q);
  for (const frame of frames(pcm, 640)) client.sendAudio(frame);
  await client.finish();
  return client.messages;
}

describe("a session object that dies mid-utterance", () => {
  it("drops its client with a retryable close, keeps its stored finals, and corrupts no later session", async () => {
    const { pcm } = await wavFixture("wcpp_jfk.wav");
    const before = await reference(pcm);

    const victim = await TestClient.open(`${Q}&resumable=true`);
    for (const frame of frames(pcm.subarray(0, 200_000), 640)) victim.sendAudio(frame);
    await victim.waitFor((m) => m.type === "Results" && m.is_final === true, "a stored final");
    const stored = victim.of("Results").filter((m) => m.is_final === true).length;

    await abortAllDurableObjects();
    const closed = await victim.waitClosed();
    // 1006: abnormal closure, which Deepgram's SDK retries (a 1000 would tell it all went well).
    expect(closed.code).toBe(1006);

    const stub = env.SESSION.get(env.SESSION.idFromName(victim.sessionId));
    const transcript = await stub.getTranscript(DEMO_ACCOUNT_ID);
    expect(transcript?.finals.length).toBeGreaterThanOrEqual(stored);
    expect(await stub.getTranscript("another-account")).toBeNull();

    const resume = await handshake(`?session_id=${victim.sessionId}&resume_offset=0`);
    expect(resume.status).toBe(410);
    const refusal = (await resume.json()) as { err_code: string; err_msg: string };
    expect(refusal.err_code).toBe("SESSION_ENDED");
    expect(refusal.err_msg).toContain(`its ${transcript?.finals.length} stored finals`);
    // Released in the background right after the refusal; well within the 35-s lease.
    let held = true;
    for (let i = 0; i < 50 && held; i++) {
      const active = await listActiveSessions(env, DEMO_ACCOUNT_ID);
      held = active.some((s) => s.sessionId === victim.sessionId);
      if (held) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(held).toBe(false);
    // Given back by the refusal, not reclaimed by the lease alarm (which says "expired").
    expect((await limiterRow(DEMO_ACCOUNT_ID, victim.sessionId))?.endReason).toBe("released");

    const after = await reference(pcm);
    const strip = (ms: ServerJson[]) =>
      withoutIds(ms).map((m) => ({ ...(m as object), created: undefined }));
    expect(strip(after)).toEqual(strip(before));
  });
});
