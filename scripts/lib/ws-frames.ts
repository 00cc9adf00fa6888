/**
 * RFC 6455 framing for a WebSocket *client*, pure (Uint8Array in and out, no Node import), so the
 * workerd tests run it too. Why a client of our own instead of Node's built-in WebSocket: the soak
 * must read a refused handshake's status and JSON body (Node's WebSocket reports only "error"),
 * and must drop a connection the way a network does — the TCP socket gone, no close frame — which
 * no WebSocket API offers. scripts/lib/ws-client.ts puts this codec on a node:http upgrade.
 *
 * Client frames are masked (§5.3: a server must close on an unmasked client frame); server frames
 * must not be (§5.1: the client closes on a masked one). No extensions are negotiated, so the RSV
 * bits must be zero.
 */

export const OPCODE = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/**
 * Largest server message the reader accepts: 1 MiB. Earshot's messages are small JSON (a Results
 * with words for a 15-s utterance is a few KiB); a bigger one is a bug, not something to buffer.
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** §5.5: control frames carry at most 125 bytes and are never fragmented. */
const MAX_CONTROL_PAYLOAD = 125;

/** "No status code was present" (§7.4.1): what a close frame with an empty body means. */
export const NO_STATUS_CODE = 1005;

export class WsProtocolError extends Error {
  override name = "WsProtocolError";
}

/** One masked client frame (FIN set: the client never fragments). `mask`: 4 random bytes. */
export function encodeClientFrame(
  opcode: number,
  payload: Uint8Array,
  mask: Uint8Array,
): Uint8Array {
  if (mask.byteLength !== 4) throw new RangeError("a frame mask is 4 bytes");
  const length = payload.byteLength;
  // 7-bit length up to 125; 126 then a 16-bit length; 127 then a 64-bit length (§5.2).
  const extended = length <= 125 ? 0 : length <= 0xffff ? 2 : 8;
  const out = new Uint8Array(2 + extended + 4 + length);
  out[0] = 0x80 | (opcode & 0x0f);
  const view = new DataView(out.buffer);
  if (extended === 0) {
    out[1] = 0x80 | length;
  } else if (extended === 2) {
    out[1] = 0x80 | 126;
    view.setUint16(2, length);
  } else {
    out[1] = 0x80 | 127;
    view.setBigUint64(2, BigInt(length));
  }
  const maskAt = 2 + extended;
  out.set(mask, maskAt);
  const body = maskAt + 4;
  for (let i = 0; i < length; i++) out[body + i] = (payload[i] ?? 0) ^ (mask[i & 3] ?? 0);
  return out;
}

/** A close frame's body: the code (big-endian) and a UTF-8 reason. */
export function encodeClosePayload(code: number, reason: string): Uint8Array {
  const text = new TextEncoder().encode(reason);
  if (2 + text.byteLength > MAX_CONTROL_PAYLOAD) {
    throw new RangeError(`close reason of ${text.byteLength} bytes exceeds 123`);
  }
  const out = new Uint8Array(2 + text.byteLength);
  new DataView(out.buffer).setUint16(0, code);
  out.set(text, 2);
  return out;
}

export function decodeClosePayload(payload: Uint8Array): { code: number; reason: string } {
  if (payload.byteLength === 0) return { code: NO_STATUS_CODE, reason: "" };
  if (payload.byteLength === 1) throw new WsProtocolError("close frame with a 1-byte body");
  const code = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint16(0);
  const reason = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
    payload.subarray(2),
  );
  return { code, reason };
}

export type ServerEvent =
  | { type: "text"; text: string }
  | { type: "binary"; data: Uint8Array }
  | { type: "close"; code: number; reason: string }
  | { type: "ping"; payload: Uint8Array }
  | { type: "pong"; payload: Uint8Array };

/**
 * Turns the server's byte stream into messages: frames may arrive split across TCP chunks or
 * several to a chunk, and data messages may be fragmented (continuation frames, with control
 * frames allowed in between). Throws WsProtocolError on anything RFC 6455 forbids.
 */
export class ServerFrameReader {
  #buffer: Uint8Array = new Uint8Array(0);
  /** The data message being reassembled from fragments, if any. */
  #message: { opcode: number; parts: Uint8Array[]; bytes: number } | null = null;

  push(chunk: Uint8Array): ServerEvent[] {
    this.#buffer = this.#buffer.byteLength === 0 ? chunk.slice() : concat(this.#buffer, chunk);
    const events: ServerEvent[] = [];
    for (;;) {
      const frame = this.#nextFrame();
      if (frame === null) break;
      const event = this.#onFrame(frame);
      if (event !== null) events.push(event);
    }
    return events;
  }

  #nextFrame(): { fin: boolean; opcode: number; payload: Uint8Array } | null {
    const buffer = this.#buffer;
    if (buffer.byteLength < 2) return null;
    const first = buffer[0] ?? 0;
    const second = buffer[1] ?? 0;
    if ((first & 0x70) !== 0) throw new WsProtocolError("RSV bits set without an extension");
    if ((second & 0x80) !== 0) throw new WsProtocolError("masked frame from the server");
    let length = second & 0x7f;
    let at = 2;
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    if (length === 126) {
      if (buffer.byteLength < 4) return null;
      length = view.getUint16(2);
      at = 4;
    } else if (length === 127) {
      if (buffer.byteLength < 10) return null;
      const big = view.getBigUint64(2);
      if (big > BigInt(MAX_MESSAGE_BYTES)) {
        throw new WsProtocolError(`frame of ${big} bytes exceeds ${MAX_MESSAGE_BYTES}`);
      }
      length = Number(big);
      at = 10;
    }
    if (length > MAX_MESSAGE_BYTES) {
      throw new WsProtocolError(`frame of ${length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
    }
    if (buffer.byteLength < at + length) return null;
    const payload = buffer.slice(at, at + length);
    this.#buffer = buffer.subarray(at + length);
    return { fin: (first & 0x80) !== 0, opcode: first & 0x0f, payload };
  }

  #onFrame(frame: { fin: boolean; opcode: number; payload: Uint8Array }): ServerEvent | null {
    const { fin, opcode, payload } = frame;
    if (opcode >= 0x8) {
      if (!fin) throw new WsProtocolError("fragmented control frame");
      if (payload.byteLength > MAX_CONTROL_PAYLOAD) {
        throw new WsProtocolError(`control frame of ${payload.byteLength} bytes`);
      }
      switch (opcode) {
        case OPCODE.close:
          return { type: "close", ...decodeClosePayload(payload) };
        case OPCODE.ping:
          return { type: "ping", payload };
        case OPCODE.pong:
          return { type: "pong", payload };
        default:
          throw new WsProtocolError(`reserved control opcode ${opcode}`);
      }
    }
    let message = this.#message;
    if (opcode === OPCODE.continuation) {
      if (message === null) throw new WsProtocolError("continuation frame without a message");
      message.parts.push(payload);
      message.bytes += payload.byteLength;
    } else if (opcode === OPCODE.text || opcode === OPCODE.binary) {
      if (message !== null) throw new WsProtocolError("new message inside a fragmented one");
      message = { opcode, parts: [payload], bytes: payload.byteLength };
      this.#message = message;
    } else {
      throw new WsProtocolError(`reserved data opcode ${opcode}`);
    }
    if (message.bytes > MAX_MESSAGE_BYTES) {
      throw new WsProtocolError(`message of ${message.bytes} bytes exceeds ${MAX_MESSAGE_BYTES}`);
    }
    if (!fin) return null;
    this.#message = null;
    const data = message.parts.length === 1 ? (message.parts[0] ?? payload) : concatAll(message);
    if (message.opcode === OPCODE.binary) return { type: "binary", data };
    try {
      return {
        type: "text",
        text: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(data),
      };
    } catch (error) {
      throw new WsProtocolError("text message is not valid UTF-8", { cause: error });
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

function concatAll(message: { parts: Uint8Array[]; bytes: number }): Uint8Array {
  const out = new Uint8Array(message.bytes);
  let at = 0;
  for (const part of message.parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}
