import { describe, expect, it } from "vitest";
import { OPUS_RATE, OpusStreamDecoder } from "../src/audio/opus-decoder";
import { MEMORY_PAGES } from "../tools/models/opus-wasm";

const MONO = { channels: 1, preSkip: 0, inputRate: 48_000, mappingFamily: 0 };

describe("Opus decoder in workerd", () => {
  it("instantiates the pre-compiled wasm and decodes a packet", async () => {
    const decoder = await OpusStreamDecoder.create(MONO);
    // TOC 0xF8: CELT fullband 20 ms, mono, one frame of no bytes (decoded as a lost frame).
    const samples = decoder.decode([new Uint8Array([0xf8])]);
    expect(samples.length).toBe((OPUS_RATE * 20) / 1000);
    // The build's memory limit (tools/models/opus-wasm.ts), not the package's 28 MiB.
    expect(decoder.heapBytes).toBe(MEMORY_PAGES * 65_536);
    decoder.free();
  });

  it("gives each stream its own decoder state", async () => {
    const a = await OpusStreamDecoder.create(MONO);
    const b = await OpusStreamDecoder.create({ ...MONO, channels: 2 });
    expect(a.decode([new Uint8Array([0xf8])]).length).toBe(960);
    expect(b.decode([new Uint8Array([0xfc])]).length).toBe(960); // stereo TOC, mixed to mono
    a.free();
    b.free();
  });
});
