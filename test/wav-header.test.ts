import { describe, expect, it } from "vitest";
import { AudioFormatError, sniff } from "../src/audio/audio-format";
import { MAX_WAV_HEADER_BYTES, parseWavHeader } from "../src/audio/wav-header";

/** Little-endian fields and four-character codes, written independently of the parser. */
function bytes(...parts: (string | [number, 2 | 4] | Uint8Array)[]): Uint8Array {
  const chunks = parts.map((part) => {
    if (typeof part === "string") return Uint8Array.from(part, (c) => c.charCodeAt(0));
    if (part instanceof Uint8Array) return part;
    const [value, size] = part;
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) out[i] = (value / 256 ** i) & 0xff;
    return out;
  });
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const fmt = (tag: number, channels: number, rate: number, bits: number) =>
  bytes(
    "fmt ",
    [16, 4],
    [tag, 2],
    [channels, 2],
    [rate, 4],
    [(rate * channels * bits) / 8, 4],
    [(channels * bits) / 8, 2],
    [bits, 2],
  );

describe("parseWavHeader", () => {
  // An odd-sized chunk before fmt (padded to even), then fmt, then data of 6 bytes.
  const header = bytes(
    "RIFF",
    [0, 4],
    "WAVE",
    "junk",
    [3, 4],
    "abc\0",
    fmt(1, 2, 44_100, 16),
    "data",
    [6, 4],
  );

  it("waits for the whole header, whichever byte the stream stops at", () => {
    for (let n = 0; n < header.length; n++) {
      expect(parseWavHeader(header.subarray(0, n), 8000, 48_000), `${n} bytes`).toBeNull();
    }
    expect(parseWavHeader(header, 8000, 48_000)).toEqual({
      sampleFormat: "linear16",
      channels: 2,
      sampleRate: 44_100,
      dataOffset: header.length,
      dataBytes: 6,
    });
  });

  it("reads the real format from WAVE_FORMAT_EXTENSIBLE's SubFormat", () => {
    const extensible = bytes(
      "RIFF",
      [0, 4],
      "WAVE",
      "fmt ",
      [40, 4],
      [0xfffe, 2],
      [1, 2],
      [48_000, 4],
      [192_000, 4],
      [4, 2],
      [32, 2],
      [22, 2],
      [32, 2],
      [4, 4],
      [3, 2],
      new Uint8Array(14), // cbSize, valid bits, mask, IEEE float GUID
      "data",
      [0xffffffff, 4],
    );
    expect(parseWavHeader(extensible, 8000, 48_000)).toMatchObject({
      sampleFormat: "linear32",
      channels: 1,
      sampleRate: 48_000,
      dataBytes: null,
    });
  });

  it("refuses a header chunk that would pass MAX_WAV_HEADER_BYTES before it all arrives", () => {
    const huge = bytes("RIFF", [0, 4], "WAVE", "LIST", [MAX_WAV_HEADER_BYTES, 4]);
    expect(() => parseWavHeader(huge, 8000, 48_000)).toThrow(AudioFormatError);
  });

  it("refuses data before fmt, and a block align that contradicts the format", () => {
    expect(() =>
      parseWavHeader(bytes("RIFF", [0, 4], "WAVE", "data", [0, 4]), 8000, 48_000),
    ).toThrow(/before its fmt/);
    const bad = fmt(1, 2, 16_000, 16);
    bad[20] = 3; // block align 3 for 2 × 16 bits
    expect(() =>
      parseWavHeader(bytes("RIFF", [0, 4], "WAVE", bad, "data", [0, 4]), 8000, 48_000),
    ).toThrow(/block align/);
  });
});

describe("sniff", () => {
  it("decides on exactly 4 bytes", () => {
    expect(sniff(bytes("RIF"))).toBeNull();
    expect(sniff(bytes("RIFF"))).toBe("wav");
    expect(sniff(bytes("OggS"))).toBe("ogg");
    expect(sniff(new Uint8Array([0x1a, 0x45, 0xdf, 0xa3]))).toBe("webm");
    expect(sniff(bytes("RF64"))).toBe("rf64");
    expect(sniff(new Uint8Array(4))).toBe("raw");
    expect(sniff(bytes("RIFx"))).toBe("raw");
    expect(sniff(bytes("fLaC"))).toBe("flac");
    expect(sniff(bytes("ID3\x03"))).toBe("mp3");
    expect(sniff(bytes("ID3\x09"))).toBe("raw");
  });

  it("waits for 8 bytes where the first 4 could be an MP4 box size, and finds ftyp there", () => {
    expect(sniff(bytes("\x00\x00\x00\x20fty"))).toBeNull();
    expect(sniff(bytes("\x00\x00\x00\x20ftyp"))).toBe("mp4");
    expect(sniff(bytes("\x00\x00\x00\x20\x00\x00\x00\x00"))).toBe("raw");
    // Silence (and sizes under 8, which no box has) decides on 4 bytes, as before.
    expect(sniff(new Uint8Array(4))).toBe("raw");
    expect(sniff(bytes("\x00\x00\x00\x07"))).toBe("raw");
  });
});
