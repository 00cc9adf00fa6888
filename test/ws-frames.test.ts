import { describe, expect, it } from "vitest";
import {
  decodeClosePayload,
  encodeClientFrame,
  encodeClosePayload,
  MAX_MESSAGE_BYTES,
  OPCODE,
  ServerFrameReader,
  WsProtocolError,
} from "../scripts/lib/ws-frames.ts";
import { pseudoRandomBytes } from "./helpers/random";

/** A server frame (never masked), optionally with FIN cleared. */
function serverFrame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const length = payload.byteLength;
  const extended = length <= 125 ? 0 : length <= 0xffff ? 2 : 8;
  const out = new Uint8Array(2 + extended + length);
  out[0] = (fin ? 0x80 : 0) | opcode;
  const view = new DataView(out.buffer);
  if (extended === 0) out[1] = length;
  else if (extended === 2) {
    out[1] = 126;
    view.setUint16(2, length);
  } else {
    out[1] = 127;
    view.setBigUint64(2, BigInt(length));
  }
  out.set(payload, 2 + extended);
  return out;
}

const text = (s: string) => new TextEncoder().encode(s);

/** Undoes a client frame's masking: returns opcode, FIN and payload. */
function unmask(frame: Uint8Array): { fin: boolean; opcode: number; payload: Uint8Array } {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let length = (frame[1] ?? 0) & 0x7f;
  let at = 2;
  if (length === 126) {
    length = view.getUint16(2);
    at = 4;
  } else if (length === 127) {
    length = Number(view.getBigUint64(2));
    at = 10;
  }
  expect((frame[1] ?? 0) & 0x80).toBe(0x80); // every client frame is masked
  const mask = frame.subarray(at, at + 4);
  const payload = frame.slice(at + 4, at + 4 + length);
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] ?? 0) ^ (mask[i & 3] ?? 0);
  expect(frame.byteLength).toBe(at + 4 + length);
  return { fin: ((frame[0] ?? 0) & 0x80) !== 0, opcode: (frame[0] ?? 0) & 0x0f, payload };
}

describe("client frames", () => {
  it("masks payloads of every length class and they unmask to the original", () => {
    const mask = new Uint8Array([0x12, 0x34, 0x56, 0x78]);
    for (const length of [0, 1, 125, 126, 640, 65_535, 65_536, 70_000]) {
      const payload = pseudoRandomBytes(length, length + 1);
      const frame = encodeClientFrame(OPCODE.binary, payload, mask);
      const decoded = unmask(frame);
      expect(decoded.fin).toBe(true);
      expect(decoded.opcode).toBe(OPCODE.binary);
      expect(decoded.payload).toEqual(payload);
      if (length >= 4) expect(frame.subarray(frame.byteLength - length)).not.toEqual(payload);
    }
  });

  it("encodes close payloads with a big-endian code and refuses reasons over 123 bytes", () => {
    const payload = encodeClosePayload(1000, "bye");
    expect([...payload.subarray(0, 2)]).toEqual([0x03, 0xe8]);
    expect(decodeClosePayload(payload)).toEqual({ code: 1000, reason: "bye" });
    expect(decodeClosePayload(new Uint8Array(0))).toEqual({ code: 1005, reason: "" });
    expect(() => encodeClosePayload(1000, "x".repeat(124))).toThrow(RangeError);
    expect(() => decodeClosePayload(new Uint8Array([3]))).toThrow(WsProtocolError);
  });
});

describe("ServerFrameReader", () => {
  it("reassembles frames split at every byte and several frames in one chunk", () => {
    const big = pseudoRandomBytes(70_000, 7);
    const stream = new Uint8Array([
      ...serverFrame(OPCODE.text, text('{"type":"Results"}')),
      ...serverFrame(OPCODE.binary, big),
      ...serverFrame(OPCODE.close, encodeClosePayload(1011, "STT-0001")),
    ]);
    const oneChunk = new ServerFrameReader().push(stream);
    expect(oneChunk).toEqual([
      { type: "text", text: '{"type":"Results"}' },
      { type: "binary", data: big },
      { type: "close", code: 1011, reason: "STT-0001" },
    ]);
    const reader = new ServerFrameReader();
    const split = [];
    for (let i = 0; i < stream.byteLength; i += 997) {
      split.push(...reader.push(stream.subarray(i, Math.min(stream.byteLength, i + 997))));
    }
    expect(split).toEqual(oneChunk);
    const byteByByte = new ServerFrameReader();
    const events = [];
    for (const byte of stream.subarray(0, 40))
      events.push(...byteByByte.push(new Uint8Array([byte])));
    expect(events).toEqual([{ type: "text", text: '{"type":"Results"}' }]);
  });

  it("joins fragmented messages, with control frames between fragments", () => {
    const reader = new ServerFrameReader();
    const events = reader.push(
      new Uint8Array([
        ...serverFrame(OPCODE.text, text("hel"), false),
        ...serverFrame(OPCODE.ping, text("p")),
        ...serverFrame(OPCODE.continuation, text("lo "), false),
        ...serverFrame(OPCODE.continuation, text("world")),
      ]),
    );
    expect(events).toEqual([
      { type: "ping", payload: text("p") },
      { type: "text", text: "hello world" },
    ]);
  });

  it("refuses what RFC 6455 forbids a server to send", () => {
    const masked = encodeClientFrame(OPCODE.text, text("x"), new Uint8Array(4));
    const cases: Uint8Array[] = [
      masked,
      serverFrame(OPCODE.continuation, text("orphan")),
      serverFrame(OPCODE.ping, text("x"), false),
      serverFrame(OPCODE.close, new Uint8Array(126)),
      serverFrame(0x3, text("reserved")),
      new Uint8Array([0xc1, 0x00]), // RSV1 without an extension
      serverFrame(OPCODE.text, new Uint8Array([0xff, 0xfe])), // not UTF-8
      new Uint8Array([
        ...serverFrame(OPCODE.text, text("a"), false),
        ...serverFrame(OPCODE.text, text("b")),
      ]),
    ];
    for (const bytes of cases) {
      expect(() => new ServerFrameReader().push(bytes)).toThrow(WsProtocolError);
    }
  });

  it("refuses a message over the cap before buffering it", () => {
    const header = new Uint8Array(10);
    header[0] = 0x82;
    header[1] = 127;
    new DataView(header.buffer).setBigUint64(2, BigInt(MAX_MESSAGE_BYTES + 1));
    expect(() => new ServerFrameReader().push(header)).toThrow(/exceeds/);
  });
});
