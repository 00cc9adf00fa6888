import { describe, expect, it } from "vitest";
import { PcmDecoder } from "../src/audio/pcm-decoder";
import { pseudoRandomBytes } from "../tools/eval/random";
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

/**
 * A-law expansion of codes 0x00..0xFF as CPython's `audioop.alaw2lin(bytes(range(256)), 2)` gives
 * it (Python 3.12; audioop's G.711 code derives from Sun's reference g711.c): an implementation
 * independent of Earshot's, pasted as numbers (SHA-256 of its little-endian bytes:
 * e04788d110e58ff8c70c93b8480190d973e3b67876b6119abbaec766cc75c174).
 */
const ALAW_REFERENCE = [
  -5504, -5248, -6016, -5760, -4480, -4224, -4992, -4736, -7552, -7296, -8064, -7808, -6528, -6272,
  -7040, -6784, -2752, -2624, -3008, -2880, -2240, -2112, -2496, -2368, -3776, -3648, -4032, -3904,
  -3264, -3136, -3520, -3392, -22016, -20992, -24064, -23040, -17920, -16896, -19968, -18944,
  -30208, -29184, -32256, -31232, -26112, -25088, -28160, -27136, -11008, -10496, -12032, -11520,
  -8960, -8448, -9984, -9472, -15104, -14592, -16128, -15616, -13056, -12544, -14080, -13568, -344,
  -328, -376, -360, -280, -264, -312, -296, -472, -456, -504, -488, -408, -392, -440, -424, -88,
  -72, -120, -104, -24, -8, -56, -40, -216, -200, -248, -232, -152, -136, -184, -168, -1376, -1312,
  -1504, -1440, -1120, -1056, -1248, -1184, -1888, -1824, -2016, -1952, -1632, -1568, -1760, -1696,
  -688, -656, -752, -720, -560, -528, -624, -592, -944, -912, -1008, -976, -816, -784, -880, -848,
  5504, 5248, 6016, 5760, 4480, 4224, 4992, 4736, 7552, 7296, 8064, 7808, 6528, 6272, 7040, 6784,
  2752, 2624, 3008, 2880, 2240, 2112, 2496, 2368, 3776, 3648, 4032, 3904, 3264, 3136, 3520, 3392,
  22016, 20992, 24064, 23040, 17920, 16896, 19968, 18944, 30208, 29184, 32256, 31232, 26112, 25088,
  28160, 27136, 11008, 10496, 12032, 11520, 8960, 8448, 9984, 9472, 15104, 14592, 16128, 15616,
  13056, 12544, 14080, 13568, 344, 328, 376, 360, 280, 264, 312, 296, 472, 456, 504, 488, 408, 392,
  440, 424, 88, 72, 120, 104, 24, 8, 56, 40, 216, 200, 248, 232, 152, 136, 184, 168, 1376, 1312,
  1504, 1440, 1120, 1056, 1248, 1184, 1888, 1824, 2016, 1952, 1632, 1568, 1760, 1696, 688, 656, 752,
  720, 560, 528, 624, 592, 944, 912, 1008, 976, 816, 784, 880, 848,
];

describe("PcmDecoder alaw", () => {
  it("matches an independent G.711 A-law expansion on all 256 codes", () => {
    const out = new PcmDecoder("alaw").decode(new Uint8Array(256).map((_, i) => i));
    expect([...out]).toEqual(ALAW_REFERENCE.map((s) => s / 32768));
  });

  it("puts the smallest steps at 0xD5 (+8) and 0x55 (-8), the extremes at 0xAA and 0x2A", () => {
    const out = new PcmDecoder("alaw").decode(new Uint8Array([0xd5, 0x55, 0xaa, 0x2a]));
    expect([...out]).toEqual([8, -8, 32256, -32256].map((s) => s / 32768));
  });

  it("is stateless: one byte per frame equals the whole", () => {
    const stream = pseudoRandomBytes(64, 5);
    const whole = new PcmDecoder("alaw").decode(stream);
    const decoder = new PcmDecoder("alaw");
    const parts = [...stream].map((byte) => decoder.decode(new Uint8Array([byte])));
    expect(concat(parts, Float32Array)).toEqual(whole);
    expect(decoder.carriedBytes).toBe(0);
  });
});

/** Little-endian IEEE-754 float32 samples, written through DataView (independent of the decoder). */
function float32(samples: number[]): Uint8Array {
  const bytes = new Uint8Array(samples.length * 4);
  const view = new DataView(bytes.buffer);
  samples.forEach((s, i) => {
    view.setFloat32(i * 4, s, true);
  });
  return bytes;
}

describe("PcmDecoder linear32", () => {
  it("decodes little-endian float32 exactly", () => {
    const samples = [0, 0.5, -0.5, 1, -1, 0.1, -0.123456, 2 ** -20];
    const out = new PcmDecoder("linear32").decode(float32(samples));
    expect([...out]).toEqual([...new Float32Array(samples)]);
  });

  it("clamps out-of-range and infinite values to ±1 and NaN to 0", () => {
    const out = new PcmDecoder("linear32").decode(
      float32([1.5, -7, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN]),
    );
    expect([...out]).toEqual([1, -1, 1, -1, 0]);
  });

  it("gives the same samples for every split point of a stream as for the whole", () => {
    const values = Array.from({ length: 13 }, (_, i) => Math.sin(i * 0.7) * 0.9);
    const stream = concat([float32(values), new Uint8Array([1, 2, 3])], Uint8Array);
    const whole = new PcmDecoder("linear32");
    const expected = whole.decode(stream);
    expect([...expected]).toEqual([...new Float32Array(values)]);
    expect(whole.carriedBytes).toBe(3);
    for (let a = 0; a <= stream.length; a++) {
      for (let b = a; b <= stream.length; b++) {
        const decoder = new PcmDecoder("linear32");
        const parts = [
          decoder.decode(stream.subarray(0, a)),
          decoder.decode(stream.subarray(a, b)),
          decoder.decode(stream.subarray(b)),
        ];
        expect(concat(parts, Float32Array)).toEqual(expected);
        expect(decoder.carriedBytes).toBe(3);
      }
    }
  });

  it("carries a sample through one-byte frames", () => {
    const decoder = new PcmDecoder("linear32");
    const parts = [...float32([0.25, -0.75])].map((byte) => decoder.decode(new Uint8Array([byte])));
    expect([...concat(parts, Float32Array)]).toEqual([0.25, -0.75]);
  });
});

describe("PcmDecoder with interleaved channels (WAV bodies)", () => {
  it("downmixes stereo linear16 by averaging each frame's channels", () => {
    const out = new PcmDecoder("linear16", 2).decode(pcm16([1000, 3000, -32768, 32767, 5, 5]));
    expect([...out]).toEqual([2000 / 32768, -0.5 / 32768, 5 / 32768]);
  });

  it("gives the same mono stream for any split of a stereo float stream", () => {
    const values = Array.from({ length: 18 }, (_, i) => Math.cos(i) * 0.5);
    const stream = float32(values);
    const expected = new PcmDecoder("linear32", 2).decode(stream);
    expect(expected.length).toBe(9);
    for (let a = 0; a <= stream.length; a += 1) {
      const decoder = new PcmDecoder("linear32", 2);
      const parts = [decoder.decode(stream.subarray(0, a)), decoder.decode(stream.subarray(a))];
      expect(concat(parts, Float32Array)).toEqual(expected);
      expect(decoder.carriedBytes).toBe(0);
    }
  });

  it("refuses a channel count that is not a positive integer", () => {
    expect(() => new PcmDecoder("linear16", 0)).toThrow(RangeError);
    expect(() => new PcmDecoder("linear16", 1.5)).toThrow(RangeError);
  });
});
