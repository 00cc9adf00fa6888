import { describe, expect, it } from "vitest";
import { PcmDecoder } from "../src/session/pcm-decoder";
import { pseudoRandomBytes } from "./helpers/random";
import { concat } from "./helpers/typed-arrays";

/** Little-endian signed 16-bit samples, written independently of the decoder. */
function pcm16(samples: number[]): Uint8Array {
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  samples.forEach((s, i) => {
    view.setInt16(i * 2, s, true);
  });
  return bytes;
}

/**
 * G.711 µ-law expansion written from the standard's definition (ITU-T G.711, table 2a): the
 * transmitted character is the complement of sign | segment (3 bits) | step (4 bits); segment s
 * spans 2^s × 32 − 33 … 2^(s+1) × 32 − 33 in 14-bit units (31, 95, 223 … 8159) in 16 steps of
 * 2^(s+1), and the decoder outputs the middle of the step (segment 0's first step is 0 … 1: 0). Scaled by 4 to 16 bits.
 */
function g711MulawExpand(code: number): number {
  const character = code ^ 0xff;
  const negative = (character & 0x80) !== 0;
  const segment = (character >> 4) & 0x7;
  const step = character & 0xf;
  const segmentStart = 2 ** segment * 32 - 33;
  const stepSize = 2 ** (segment + 1);
  const magnitude14 = segmentStart + step * stepSize + stepSize / 2;
  const value = ((negative ? -1 : 1) * magnitude14 * 4) / 32768;
  // 0x7F is "negative zero"; PCM16 has one zero, so -0 becomes 0.
  return value === 0 ? 0 : value;
}

describe("PcmDecoder linear16", () => {
  it("decodes little-endian signed 16-bit, extremes included", () => {
    const samples = [0, 1, -1, 32767, -32768, 256, -256, 12345, -12345];
    const out = new PcmDecoder("linear16").decode(pcm16(samples));
    expect([...out]).toEqual(samples.map((s) => s / 32768));
    expect(out[3]).toBeLessThan(1);
    expect(out[4]).toBe(-1);
  });

  it("gives the same samples for every split point of a stream as for the whole", () => {
    const stream = pseudoRandomBytes(101, 7); // odd: the last byte stays carried
    const whole = new PcmDecoder("linear16");
    const expected = whole.decode(stream);
    expect(expected.length).toBe(50);
    expect(whole.carriedBytes).toBe(1);
    for (let a = 0; a <= stream.length; a++) {
      for (let b = a; b <= stream.length; b += 3) {
        const decoder = new PcmDecoder("linear16");
        const parts = [
          decoder.decode(stream.subarray(0, a)),
          decoder.decode(stream.subarray(a, b)),
          decoder.decode(stream.subarray(b)),
        ];
        expect(concat(parts, Float32Array)).toEqual(expected);
        expect(decoder.carriedBytes).toBe(1);
      }
    }
  });

  it("carries odd bytes through one-byte and empty frames", () => {
    const stream = pcm16([-32768, 32767, -2, 513]);
    const decoder = new PcmDecoder("linear16");
    const parts: Float32Array[] = [];
    for (const byte of stream) {
      parts.push(decoder.decode(new Uint8Array([byte])));
      expect(decoder.decode(new Uint8Array(0)).length).toBe(0);
      parts.push(decoder.decode(new Uint8Array(0)));
    }
    expect([...concat(parts, Float32Array)]).toEqual(
      [-32768, 32767, -2, 513].map((s) => s / 32768),
    );
    expect(decoder.carriedBytes).toBe(0);
  });

  it("reports the carried byte", () => {
    const decoder = new PcmDecoder("linear16");
    expect(decoder.decode(new Uint8Array([1, 2, 3])).length).toBe(1);
    expect(decoder.carriedBytes).toBe(1);
    expect([...decoder.decode(new Uint8Array([0x80]))]).toEqual([(0x8003 - 0x10000) / 32768]);
    expect(decoder.carriedBytes).toBe(0);
  });

  it("decodes a frame that is a view at an odd offset of a larger buffer", () => {
    const backing = new Uint8Array(9);
    backing.set(pcm16([-32768, 32767, 100, -100]), 1);
    const out = new PcmDecoder("linear16").decode(backing.subarray(1));
    expect([...out]).toEqual([-32768, 32767, 100, -100].map((s) => s / 32768));
  });
});

describe("PcmDecoder mulaw", () => {
  it("matches the G.711 definition on all 256 codes", () => {
    const codes = new Uint8Array(256).map((_, i) => i);
    const out = new PcmDecoder("mulaw").decode(codes);
    expect(out.length).toBe(256);
    for (let code = 0; code < 256; code++) {
      expect(out[code], `code 0x${code.toString(16)}`).toBe(g711MulawExpand(code));
    }
  });

  it("spans ±32124 / 32768 with both zeros at 0xFF and 0x7F, monotonic within each sign", () => {
    const out = new PcmDecoder("mulaw").decode(new Uint8Array([0x00, 0x80, 0xff, 0x7f]));
    expect([...out]).toEqual([-32124 / 32768, 32124 / 32768, 0, 0]);
    const all = new PcmDecoder("mulaw").decode(new Uint8Array(256).map((_, i) => i));
    for (let code = 1; code < 128; code++) {
      // Codes 0x00..0x7F are negative, rising towards zero; 0x80..0xFF positive, falling.
      expect(all[code] ?? Number.NaN).toBeGreaterThan(all[code - 1] ?? Number.NaN);
      expect(all[128 + code] ?? Number.NaN).toBeLessThan(all[127 + code] ?? Number.NaN);
    }
  });

  it("is stateless: one byte per frame equals the whole", () => {
    const stream = pseudoRandomBytes(64, 3);
    const whole = new PcmDecoder("mulaw").decode(stream);
    const decoder = new PcmDecoder("mulaw");
    const parts = [...stream].map((byte) => decoder.decode(new Uint8Array([byte])));
    expect(concat(parts, Float32Array)).toEqual(whole);
    expect(decoder.carriedBytes).toBe(0);
  });

  it("refuses an unknown encoding", () => {
    expect(() => new PcmDecoder("opus" as "mulaw")).toThrow(RangeError);
  });
});
