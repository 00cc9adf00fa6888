/**
 * A WebSocket upgrade sent with a method other than GET, against the real `npm run dev`. What
 * happens, measured (README "Bad input"): wrangler's local proxy re-issues every upgrade to workerd
 * as a GET, so the worker cannot see the method and admits it like a GET (a session starts); the
 * proxy then answers the client 400 "WebSocket must be initiated with a GET request", the session
 * sees its socket gone (1006) and ends at once, and its slot is free again at once — not after an
 * idle timeout or a lease. Whether Cloudflare's edge does the same cannot be measured here.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, inject, it } from "vitest";

const baseUrl = inject("baseUrl");
const KEY = "earshot-demo-key";

async function usage(): Promise<{ active_sessions: number; sessions_total: number }> {
  const response = await fetch(`${baseUrl}/v1/usage`, {
    headers: { Authorization: `Token ${KEY}` },
  });
  return (await response.json()) as { active_sessions: number; sessions_total: number };
}

/** curl, because fetch() will not send an Upgrade header. */
function upgradeWith(method: string): string {
  const result = spawnSync(
    "curl",
    [
      "-si",
      "--max-time",
      "5",
      "-X",
      method,
      `${baseUrl}/v1/listen?encoding=linear16&sample_rate=16000`,
      "-H",
      `Authorization: Token ${KEY}`,
      "-H",
      "Connection: Upgrade",
      "-H",
      "Upgrade: websocket",
      "-H",
      "Sec-WebSocket-Version: 13",
      "-H",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ],
    { encoding: "utf8" },
  );
  return result.stdout;
}

describe("an upgrade with a method other than GET", () => {
  it.each(["POST", "PUT"])(
    "%s: refused 400, and the slot it briefly took is free at once",
    async (method) => {
      const before = await usage();
      const answer = upgradeWith(method);
      expect(answer).toMatch(/^HTTP\/1\.1 400/);
      expect(answer).toContain("WebSocket must be initiated with a GET request");
      await expect.poll(async () => (await usage()).active_sessions, { timeout: 2000 }).toBe(0);
      // Counted: the worker saw a GET and admitted it before the proxy refused the client.
      expect((await usage()).sessions_total).toBeLessThanOrEqual(before.sessions_total + 1);
    },
  );
});
