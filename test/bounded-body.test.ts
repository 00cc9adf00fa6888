/**
 * Request bodies are read through a bounded reader: a chunked upload with no Content-Length is
 * refused as soon as it passes the route's cap, not buffered whole first (a 96 MB body used to be
 * held in memory before its size was checked). Each case counts the bytes the worker pulled from
 * the client's stream.
 */
import { describe, expect, it } from "vitest";
import { MAX_BODY_BYTES } from "../src/accounts/request-bodies";
import { readBoundedText } from "../src/runtime/bounded-body";
import { DEMO_KEY } from "./helpers/client";
import { ADMIN_TOKEN, send } from "./setup/accounts-app";

const CHUNK_BYTES = 64 * 1024;
/** What the attacker offered: 96 MB. */
const OFFERED_BYTES = 96 * 1024 * 1024;
/** Pulled at most: the cap plus the chunks in flight in the runtime's pipes. */
const MAX_PULLED_BYTES = 1024 * 1024;

/** A body of `total` bytes of "{" that counts how much of it was pulled. */
function countingBody(total: number): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const chunk = new Uint8Array(CHUNK_BYTES).fill(0x7b);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= total) {
        controller.close();
        return;
      }
      pulled += chunk.byteLength;
      controller.enqueue(chunk.slice());
    },
  });
  return { stream, pulled: () => pulled };
}

describe("readBoundedText", () => {
  it("stops reading a stream past the cap", async () => {
    const body = countingBody(OFFERED_BYTES);
    const request = new Request("http://earshot.test/", { method: "POST", body: body.stream });
    expect(request.headers.get("content-length")).toBeNull();
    expect(await readBoundedText(request, MAX_BODY_BYTES)).toEqual({ ok: false, tooLarge: true });
    expect(body.pulled()).toBeLessThanOrEqual(MAX_BODY_BYTES + CHUNK_BYTES);
  });

  it("reads a body of exactly the cap, and one byte more is refused", async () => {
    const text = "x".repeat(MAX_BODY_BYTES);
    const exact = new Request("http://earshot.test/", { method: "POST", body: text });
    expect(await readBoundedText(exact, MAX_BODY_BYTES)).toEqual({ ok: true, text });
    const over = new Request("http://earshot.test/", { method: "POST", body: `${text}x` });
    expect((await readBoundedText(over, MAX_BODY_BYTES)).ok).toBe(false);
  });
});

describe("routes that read a body, sent 96 MB chunked", () => {
  const cases: [string, string, Record<string, string>][] = [
    ["POST /v1/auth/grant", "/v1/auth/grant", { Authorization: `Token ${DEMO_KEY}` }],
    ["POST /admin/accounts", "/admin/accounts", { Authorization: `Bearer ${ADMIN_TOKEN}` }],
  ];
  it.each(cases)("%s answers 400 after reading at most about the cap", async (_, path, headers) => {
    const body = countingBody(OFFERED_BYTES);
    const response = await send(path, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: body.stream,
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { err_msg: string }).err_msg).toContain(
      `larger than ${MAX_BODY_BYTES} bytes`,
    );
    expect(body.pulled()).toBeLessThanOrEqual(MAX_PULLED_BYTES);
  });
});
