/**
 * The isolate's session cap (MAX_WHISPER_SESSIONS_PER_ISOLATE; 12 in this project through
 * EARSHOT_MAX_SESSIONS_PER_ISOLATE): one session past it is refused 503 with Retry-After at the
 * handshake — before any audio, with its account slot given back — and the sessions running are
 * untouched. A place frees as soon as a session ends.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createAccount } from "./helpers/accounts";
import { handshake, TestClient } from "./helpers/client";

const Q = "?encoding=linear16&sample_rate=16000";
const CAPACITY = Number(env.EARSHOT_MAX_SESSIONS_PER_ISOLATE);

describe("the isolate's session cap", () => {
  it("refuses one session past it with 503, keeps the others, and admits again when one ends", async () => {
    expect(CAPACITY).toBe(12);
    const account = await createAccount({ maxConcurrentSessions: 50 });
    const running = await Promise.all(
      Array.from({ length: CAPACITY }, () => TestClient.open(Q, { key: account.key })),
    );

    const refused = await handshake(Q, { key: account.key });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    const body = (await refused.json()) as { err_code: string; err_msg: string };
    expect(body.err_code).toBe("SERVICE_UNAVAILABLE");
    expect(body.err_msg).toMatch(/at capacity \(12 sessions/);

    // The running sessions are untouched: each still answers and ends normally.
    const [first, ...others] = running;
    if (first === undefined) throw new Error("no session opened");
    first.sendAudio(new Uint8Array(3200));
    const { closed } = await first.finish();
    expect(closed.code).toBe(1000);

    const admitted = await TestClient.open(Q, { key: account.key });
    for (const client of [...others, admitted]) {
      const end = await client.finish();
      expect(end.closed.code).toBe(1000);
    }
    // The refused handshake held no slot: once the sessions have ended, the account holds none.
    let held: unknown[] = [];
    for (let i = 0; i < 40; i++) {
      const response = await exports.default.fetch("http://earshot.test/v1/sessions", {
        headers: { Authorization: `Token ${account.key}` },
      });
      held = ((await response.json()) as { sessions: unknown[] }).sessions;
      if (held.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(held).toEqual([]);
  });
});
