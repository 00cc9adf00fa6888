/**
 * readInbound alone (src/session/inbound.ts): what each client frame asks of a session. The same
 * frames through a real session, with the Error and close a client sees, are in
 * session-control.test.ts and faults.test.ts.
 */
import { describe, expect, it } from "vitest";
import { MAX_TEXT_MESSAGE_BYTES } from "../src/protocol/client-messages";
import { MAX_FRAME_BYTES } from "../src/session/caps";
import { readInbound } from "../src/session/inbound";

const encode = (text: string) => new TextEncoder().encode(text);

describe("text frames", () => {
  it("are the three control messages, with any extra fields", () => {
    for (const type of ["KeepAlive", "Finalize", "CloseStream"] as const) {
      expect(readInbound(JSON.stringify({ type, extra: 1 }))).toEqual({ kind: "control", type });
    }
  });

  it("are refused with the parser's code and the client's message otherwise", () => {
    for (const [text, code] of [
      ["not json", "INVALID_JSON"],
      ["[1]", "NOT_AN_OBJECT"],
      ['{"kind":"KeepAlive"}', "MISSING_TYPE"],
      ['{"type":"keepalive"}', "UNKNOWN_MESSAGE_TYPE"],
    ] as const) {
      const inbound = readInbound(text);
      expect(inbound, text).toMatchObject({ kind: "refused", code, clientMessage: text });
    }
  });

  it(`are refused TEXT_TOO_LARGE past ${MAX_TEXT_MESSAGE_BYTES} UTF-8 bytes, not characters`, () => {
    const fits = `{"type":"KeepAlive","pad":"${"x".repeat(MAX_TEXT_MESSAGE_BYTES - 30)}"}`;
    expect(encode(fits).byteLength).toBeLessThanOrEqual(MAX_TEXT_MESSAGE_BYTES);
    expect(readInbound(fits)).toEqual({ kind: "control", type: "KeepAlive" });
    // 1 400 characters, 4 200 bytes: over the cap only when counted in bytes.
    const wide = `{"type":"KeepAlive","pad":"${"€".repeat(1400)}"}`;
    expect(wide.length).toBeLessThan(MAX_TEXT_MESSAGE_BYTES);
    const inbound = readInbound(wide);
    expect(inbound).toMatchObject({ kind: "refused", code: "TEXT_TOO_LARGE" });
    if (inbound.kind === "refused") {
      expect(inbound.description).toContain(`${encode(wide).byteLength} bytes`);
    }
  });
});

describe("binary frames", () => {
  it("are audio, passed on as the same bytes", () => {
    const frame = new Uint8Array([1, 2, 3, 4]);
    const inbound = readInbound(frame);
    expect(inbound).toEqual({ kind: "audio", bytes: frame });
    if (inbound.kind === "audio") expect(inbound.bytes).toBe(frame);
  });

  it("end the stream when empty", () => {
    expect(readInbound(new Uint8Array(0))).toEqual({ kind: "end-of-stream" });
  });

  it(`end the session 1009 DATA-0001 past ${MAX_FRAME_BYTES} bytes, and not at it`, () => {
    expect(readInbound(new Uint8Array(MAX_FRAME_BYTES)).kind).toBe("audio");
    const inbound = readInbound(new Uint8Array(MAX_FRAME_BYTES + 1));
    expect(inbound).toMatchObject({ kind: "fatal", close: { code: 1009 } });
    if (inbound.kind === "fatal") {
      expect(inbound.close.reason).toMatch(/^DATA-0001: frame of 262145 bytes exceeds 262144/);
    }
  });

  it("are refused CONTROL_AS_BINARY when they hold a control message, not read as audio", () => {
    expect(readInbound(encode('{"type":"CloseStream"}'))).toMatchObject({
      kind: "refused",
      code: "CONTROL_AS_BINARY",
    });
  });
});
