/**
 * The demo page's handshake probe (POST /dev/handshake) asked about a resume of a live session:
 * it reports that the resume would be admitted, and the live client keeps its socket. (It used to
 * replay the resume for real, which took the session over and closed its client 1000 RESUMED, a
 * close neither the page nor the SDK retries.) The dev routes run here on the real worker with
 * EARSHOT_DEMO_TOKENS on, as `npm run dev` has it.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../src";
import { TestClient } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { warmVad } from "./helpers/sessions";

const Q = "?encoding=linear16&sample_rate=16000&resumable=true";
const devEnv = { ...env, EARSHOT_DEMO_TOKENS: "on" };

async function post(path: string, body: unknown): Promise<Response> {
  return worker.request(
    `http://earshot.test${path}`,
    { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) },
    devEnv,
  );
}

async function probe(query: string): Promise<{ status: number; err_code?: string }> {
  const grant = await post("/dev/token", {});
  expect(grant.status).toBe(200);
  const { access_token } = (await grant.json()) as { access_token: string };
  const response = await post("/dev/handshake", { access_token, query });
  expect(response.status).toBe(200);
  return (await response.json()) as { status: number; err_code?: string };
}

describe("POST /dev/handshake on a resume", () => {
  beforeAll(warmVad);

  it("reports a live session's resume as admissible without detaching its client", async () => {
    const { pcm } = await wavFixture("sb_spk1_snt1.wav");
    const client = await TestClient.open(Q);
    client.sendAudio(pcm.subarray(0, 32_000));
    await client.waitFor((m) => m.type === "EarshotAck", "an ack");
    // Held open while the probe runs (this project's idle timeout is 1.5 s).
    const keepAlive = setInterval(() => client.sendJson({ type: "KeepAlive" }), 300);

    const report = await probe(`session_id=${client.sessionId}&resume_offset=0&finals_received=0`);
    expect(report.status).toBe(101);
    // The real client still owns the session: nothing closed it, and it goes on to a clean end.
    await new Promise((resolve) => setTimeout(resolve, 200));
    clearInterval(keepAlive);
    expect(client.isClosed, JSON.stringify(client.messages.at(-1))).toBe(false);
    client.sendAudio(pcm.subarray(32_000));
    const { metadata, closed } = await client.finish();
    expect(closed.code).toBe(1000);
    expect(metadata.duration).toBeCloseTo(pcm.byteLength / 32_000, 2);
  });

  it("reports the refusal of a resume that would be refused", async () => {
    const report = await probe(`session_id=${crypto.randomUUID()}&resume_offset=0`);
    expect(report).toMatchObject({ status: 404, err_code: "SESSION_NOT_FOUND" });
  });
});
