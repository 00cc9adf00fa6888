/**
 * The `/dev` routes: off unless EARSHOT_DEMO_TOKENS is exactly "on" (checked on the sub-app, in
 * Node, with bindings that would fail loudly if touched), and on the running server: a token that
 * verifies, and a handshake replay that reports the server's real refusal.
 */
import { describe, expect, inject, it } from "vitest";
import { verifyAccessToken } from "../../src/auth/access-token";
import { type DevTokenEnv, devTokenRoutes } from "../../src/routes/dev-token";

const baseUrl = inject("baseUrl");
const tokenSecret = inject("tokenSecret");

/** Bindings for the "off" cases: any use of the database or the replay is a test failure. */
function untouchable(demoTokens: string | undefined): DevTokenEnv {
  return {
    get DB(): D1Database {
      throw new Error("the database must not be read while the demo routes are off");
    },
    EARSHOT_TOKEN_SECRET: "x".repeat(48),
    EARSHOT_DEMO_TOKENS: demoTokens,
  };
}
const noReplay = () => {
  throw new Error("the handshake must not be replayed while the demo routes are off");
};

describe("/dev routes, off", () => {
  for (const value of [undefined, "", "true", "ON", "1", "off"]) {
    it(`answer 404 like an unknown path when EARSHOT_DEMO_TOKENS is ${JSON.stringify(value)}`, async () => {
      const routes = devTokenRoutes(noReplay);
      const env = untouchable(value);
      for (const path of ["/token", "/handshake"]) {
        const response = await routes.request(path, { method: "POST", body: "{}" }, env);
        expect(response.status).toBe(404);
        const body = (await response.json()) as { err_code?: string };
        expect(body.err_code).toBe("NOT_FOUND");
      }
    });
  }
});

describe("/dev routes, on (the server under test)", () => {
  it("mint a 60-second bearer token for the demo account's key", async () => {
    const response = await fetch(`${baseUrl}/dev/token`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = (await response.json()) as { access_token: string; expires_in: number };
    expect(body.expires_in).toBe(60);
    const verified = await verifyAccessToken(tokenSecret, body.access_token, Date.now());
    expect(verified).toMatchObject({ ok: true, claims: { sub: "demo", kid: "key_demo" } });
  });

  it("refuse GET on the token route", async () => {
    const response = await fetch(`${baseUrl}/dev/token`);
    expect(response.status).toBe(404);
  });

  it("report the server's real answer to a replayed handshake", async () => {
    const probe = async (accessToken: string, query: string) => {
      const response = await fetch(`${baseUrl}/dev/handshake`, {
        method: "POST",
        body: JSON.stringify({ access_token: accessToken, query }),
      });
      expect(response.status).toBe(200);
      return (await response.json()) as { status: number; err_code?: string; err_msg?: string };
    };
    const minted = (await (await fetch(`${baseUrl}/dev/token`, { method: "POST" })).json()) as {
      access_token: string;
    };
    expect(await probe(minted.access_token, "encoding=linear16&sample_rate=16000")).toEqual({
      status: 101,
    });
    expect(await probe("not.a-real.token", "encoding=linear16")).toMatchObject({
      status: 401,
      err_code: "INVALID_AUTH",
    });
    const badOption = await probe(minted.access_token, "encoding=opus");
    expect(badOption).toMatchObject({ status: 400 });
    expect(badOption.err_msg).toContain("encoding");
  });

  it("refuse a malformed replay request with 400", async () => {
    const response = await fetch(`${baseUrl}/dev/handshake`, { method: "POST", body: "[1,2]" });
    expect(response.status).toBe(400);
  });
});
