/**
 * Transcript ownership through the real route and a real session object: account A streams a clip,
 * and only A's key can read the finals its session stored. Another account's key gets the same 404
 * as an id that never existed (nothing tells it the session exists), both while the session runs
 * and after it ended. test/accounts-api.test.ts covers the route's error paths with a stand-in.
 */
import { describe, expect, it } from "vitest";
import { TestClient, transcriptOf } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { accountGet, storedFinals } from "./helpers/sessions";
import { newAccountWithKey } from "./setup/accounts-app";

const Q = "?encoding=linear16&sample_rate=16000";

async function notFound(path: string, key: string): Promise<void> {
  const response = await accountGet(path, key);
  expect(response.status).toBe(404);
  expect(((await response.json()) as { err_code: string }).err_code).toBe("NOT_FOUND");
}

describe("GET /v1/sessions/:id/transcript with a real session", () => {
  it("serves the owner's finals and answers another account 404, as for an unknown id", async () => {
    const a = await newAccountWithKey();
    const b = await newAccountWithKey();
    const clip = await wavFixture("sb_spk1_snt1.wav");
    const client = await TestClient.open(Q, { key: a.key });
    const id = client.sessionId;
    client.sendAudio(clip.pcm);
    client.sendJson({ type: "Finalize" });
    await client.waitFor((m) => m.type === "Results" && m.is_final === true, "a final");

    // While the session runs.
    await notFound(`/v1/sessions/${id}/transcript`, b.key);
    await notFound(`/v1/sessions/${crypto.randomUUID()}/transcript`, b.key);
    const live = await storedFinals(a.key, id);
    expect(live.length).toBeGreaterThan(0);

    const { closed } = await client.finish();
    expect(closed.code).toBe(1000);
    // After it ended: the owner reads exactly what was sent; the other account still nothing.
    await notFound(`/v1/sessions/${id}/transcript`, b.key);
    const stored = await storedFinals(a.key, id);
    const sent = client.finals().map(transcriptOf);
    // Empty finals (CloseStream's, with no audio left) are sent but not stored.
    expect(stored.map((f) => f.transcript)).toEqual(sent.filter((t) => t !== ""));
    expect(stored.some((f) => f.transcript !== "")).toBe(true);
  });
});
