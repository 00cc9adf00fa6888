/**
 * The `/v1/listen` handshake as a client meets it: every refusal is an HTTP status with a JSON body
 * and dg-* headers before any upgrade; success is a 101 with the session's id. (Option parsing in
 * detail: test/protocol-options.test.ts.)
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { headerSafe } from "../src/protocol/http-errors";
import { DEMO_KEY, handshake, TestClient } from "./helpers/client";

const Q = "?encoding=linear16&sample_rate=16000";

interface ErrorBody {
  err_code: string;
  err_msg: string;
  request_id: string;
  option?: string;
}

async function refusal(response: Response, status: number, errCode: string): Promise<ErrorBody> {
  expect(response.status).toBe(status);
  expect(response.webSocket).toBeNull();
  expect(response.headers.get("content-type")).toContain("application/json");
  const body = (await response.json()) as ErrorBody;
  expect(body.err_code).toBe(errCode);
  expect(body.request_id).toBe(response.headers.get("dg-request-id"));
  expect(response.headers.get("dg-error")).toBe(headerSafe(body.err_msg));
  return body;
}

describe("authentication", () => {
  it("accepts the key as an Authorization: Token header", async () => {
    const response = await handshake("?encoding=linear16&sample_rate=16000");
    expect(response.status).toBe(101);
    expect(response.headers.get("dg-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get("Sec-WebSocket-Protocol")).toBeNull();
    response.webSocket?.accept();
    response.webSocket?.close(1000);
  });

  it("accepts the key as subprotocols and selects `token`, as browsers require", async () => {
    const response = await handshake("", {
      key: null,
      headers: { "Sec-WebSocket-Protocol": `token, ${DEMO_KEY}` },
    });
    expect(response.status).toBe(101);
    expect(response.headers.get("Sec-WebSocket-Protocol")).toBe("token");
    response.webSocket?.accept();
    response.webSocket?.close(1000);
  });

  it.each([
    ["no credentials", {}],
    ["a wrong key", { Authorization: "Token not-the-key" }],
    ["a malformed header", { Authorization: "Basic dXNlcjpwYXNz" }],
    ["a wrong key as subprotocols", { "Sec-WebSocket-Protocol": "token, nope" }],
    ["a subprotocol without a key", { "Sec-WebSocket-Protocol": "token" }],
  ])("refuses %s with 401 INVALID_AUTH", async (_name, headers) => {
    await refusal(await handshake("", { key: null, headers }), 401, "INVALID_AUTH");
  });

  it("refuses a bearer token signed with another secret with 401", async () => {
    const response = await handshake("", {
      key: null,
      headers: { "Sec-WebSocket-Protocol": "bearer, eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl" },
    });
    await refusal(response, 401, "INVALID_AUTH");
  });

  it("says which kind of credential was refused", async () => {
    const key = await handshake("", { key: "not-the-key" });
    expect(((await key.json()) as { err_msg: string }).err_msg).toBe("invalid or revoked API key");
    const token = await handshake("", {
      key: null,
      headers: { Authorization: "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl" },
    });
    expect(((await token.json()) as { err_msg: string }).err_msg).toBe(
      "invalid or expired access token",
    );
  });

  it("checks credentials before options, so a stranger learns nothing about them", async () => {
    await refusal(await handshake("?channels=2", { key: "wrong" }), 401, "INVALID_AUTH");
  });
});

describe("options", () => {
  it.each([
    ["?encoding=opus&sample_rate=48000", "encoding"],
    ["?encoding=linear16", "sample_rate"],
    ["?sample_rate=96000", "sample_rate"],
    ["?sample_rate=7999", "sample_rate"],
    ["?channels=2", "channels"],
    ["?interim_results=yes", "interim_results"],
    ["?utterance_end_ms=1000", "utterance_end_ms"],
    ["?language=klingon", "language"],
    ["?model=gpt-4", "model"],
    ["?diarize=true", "diarize"],
    ["?endpointing=abc", "endpointing"],
    ["?sample_rate=16000&sample_rate=8000", "sample_rate"],
  ])("refuses %s with 400 naming `%s`", async (query, option) => {
    const body = await refusal(await handshake(query), 400, "Bad Request");
    expect(body.option).toBe(option);
    expect(body.err_msg).toContain(option);
  });

  it("admits the query Pipecat's Deepgram service sends (options off, tag, mip_opt_out)", async () => {
    const client = await TestClient.open(
      "?model=nova-3-general&language=en&detect_entities=false&diarize=false&dictation=false" +
        "&interim_results=true&numerals=false&profanity_filter=true&punctuate=true" +
        "&smart_format=false&encoding=linear16&channels=1&multichannel=false&sample_rate=16000" +
        "&tag=support&mip_opt_out=true",
    );
    const { closed } = await client.finish();
    expect(closed.code).toBe(1000);
  });

  it("echoes a 10 KB unknown option name cut to 40 characters, in a reply of about 1 KB", async () => {
    const name = `x${"y".repeat(10_239)}`;
    const response = await handshake(`?${name}=1`);
    const text = await response.clone().text();
    const body = await refusal(response, 400, "Bad Request");
    expect(body.option).toBe(`${name.slice(0, 40)}…`);
    expect(text.length).toBeLessThan(1500);
    expect(response.headers.get("dg-error")?.length ?? 0).toBeLessThan(1100);
  });

  it("accepts every documented option together", async () => {
    const client = await TestClient.open(
      "?encoding=linear16&sample_rate=44100&channels=1&interim_results=true&endpointing=300" +
        "&utterance_end_ms=1000&vad_events=true&punctuate=true&smart_format=true&language=en-US" +
        "&model=nova-3",
    );
    const { closed } = await client.finish();
    expect(closed.code).toBe(1000);
  });
});

describe("not a WebSocket", () => {
  it("answers a plain GET with 426 and Upgrade: websocket", async () => {
    const response = await exports.default.fetch("http://earshot.test/v1/listen", {
      headers: { Authorization: `Token ${DEMO_KEY}` },
    });
    await refusal(response, 426, "UPGRADE_REQUIRED");
    expect(response.headers.get("upgrade")).toBe("websocket");
  });

  it("answers other methods with 405 and unknown paths with 404, as JSON", async () => {
    const post = await exports.default.fetch("http://earshot.test/v1/listen", { method: "POST" });
    await refusal(post, 405, "METHOD_NOT_ALLOWED");
    const missing = await exports.default.fetch("http://earshot.test/v1/nothing-here");
    await refusal(missing, 404, "NOT_FOUND");
  });
});

describe("sessions", () => {
  it("gives every connection its own session id", async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const client = await TestClient.open("");
      ids.add(client.sessionId);
      await client.finish();
    }
    expect(ids.size).toBe(5);
  });
});

describe("browser tokens at the handshake", () => {
  async function grant(ttlSeconds?: number): Promise<string> {
    const response = await exports.default.fetch("http://earshot.test/v1/auth/grant", {
      method: "POST",
      headers: { Authorization: `Token ${DEMO_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(ttlSeconds === undefined ? {} : { ttl_seconds: ttlSeconds }),
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { access_token: string }).access_token;
  }

  it("opens a session with `bearer, <token>` and selects the `bearer` subprotocol", async () => {
    const token = await grant();
    const response = await handshake(Q, {
      key: null,
      headers: { "Sec-WebSocket-Protocol": `bearer, ${token}` },
    });
    expect(response.status).toBe(101);
    expect(response.headers.get("Sec-WebSocket-Protocol")).toBe("bearer");
    const client = new TestClient(response.webSocket as WebSocket, "");
    expect((await client.finish()).closed.code).toBe(1000);
  });

  it("refuses a token once it has expired", async () => {
    const token = await grant(1);
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    await refusal(
      await handshake(Q, { key: null, headers: { Authorization: `Bearer ${token}` } }),
      401,
      "INVALID_AUTH",
    );
  });
});
