/**
 * Wire audio bytes to float samples in [-1, 1), one WebSocket frame at a time.
 *
 * A client may split its byte stream anywhere, including in the middle of a 16-bit sample (the
 * protocol only promises an ordered byte stream), so a linear16 decoder carries an odd trailing
 * byte into the next frame instead of dropping it: decoding a stream in any chunking yields the
 * same samples as decoding it whole.
 */

import type { Encoding } from "../protocol/options";

export type { Encoding };

/** Full scale of a signed 16-bit sample: -32768 maps to -1, 32767 to 32767/32768. */
const PCM16_FULL_SCALE = 32_768;

/**
 * G.711 µ-law code → 16-bit linear sample, for all 256 codes (256 × 2 bytes = 512 bytes, built once
 * per isolate). G.711 transmits the code with every bit inverted; the inverted byte holds a sign
 * bit, a 3-bit segment (exponent) and a 4-bit step within the segment. The magnitude is
 * ((step × 2 + 33) × 2^segment − 33) in G.711's 14-bit units, scaled by 4 to 16 bits, which
 * reaches 8031 × 4 = 32 124 at most.
 */
const MULAW_TO_PCM16: Int16Array = (() => {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) {
    const inverted = ~code & 0xff;
    const segment = (inverted >> 4) & 0x07;
    const step = inverted & 0x0f;
    const magnitude = (((step << 3) + 0x84) << segment) - 0x84;
    table[code] = inverted & 0x80 ? -magnitude : magnitude;
  }
  return table;
})();

export class PcmDecoder {
  readonly encoding: Encoding;
  /** The low byte of a linear16 sample whose high byte has not arrived yet, or -1. */
  #carried = -1;

  constructor(encoding: Encoding) {
    if (encoding !== "linear16" && encoding !== "mulaw") {
      throw new RangeError(`unsupported encoding ${String(encoding)}`);
    }
    this.encoding = encoding;
  }

  /** Decodes a frame to float samples in [-1, 1). */
  decode(bytes: Uint8Array): Float32Array {
    return this.encoding === "mulaw" ? decodeMulaw(bytes) : this.#decodeLinear16(bytes);
  }

  /** Bytes held back for the next frame (0 or 1). */
  get carriedBytes(): number {
    return this.#carried < 0 ? 0 : 1;
  }

  #decodeLinear16(bytes: Uint8Array): Float32Array {
    const carried = this.#carried;
    const available = bytes.length + (carried < 0 ? 0 : 1);
    const out = new Float32Array(available >> 1);
    let read = 0;
    let write = 0;
    if (carried >= 0 && out.length > 0) {
      out[write++] = toSigned16(carried | ((bytes[read++] ?? 0) << 8)) / PCM16_FULL_SCALE;
    }
    // Byte by byte rather than through an Int16Array view: the frame's byteOffset may be odd
    // after a carried byte, and the wire order is little-endian whatever the host's is.
    for (; write < out.length; write++, read += 2) {
      const low = bytes[read] ?? 0;
      const high = bytes[read + 1] ?? 0;
      out[write] = toSigned16(low | (high << 8)) / PCM16_FULL_SCALE;
    }
    if (available % 2 === 1) {
      // The odd byte is either the one carried in (an empty frame) or this frame's last byte.
      this.#carried = read < bytes.length ? (bytes[read] ?? 0) : carried;
    } else {
      this.#carried = -1;
    }
    return out;
  }
}

function decodeMulaw(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    out[i] = (MULAW_TO_PCM16[bytes[i] ?? 0] ?? 0) / PCM16_FULL_SCALE;
  }
  return out;
}

/** An unsigned 16-bit value reinterpreted as two's complement. */
function toSigned16(value: number): number {
  return (value << 16) >> 16;
}
