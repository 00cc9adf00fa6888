import { describe, expect, it } from "vitest";
import { OPUS_RATE, OpusStreamDecoder } from "../src/session/opus-decoder";

const MONO = { channels: 1, preSkip: 0, inputRate: 48_000, mappingFamily: 0 };

describe("Opus decoder in workerd", () => {
  it("instantiates the pre-compiled wasm and decodes a packet", async () => {
    const decoder = await OpusStreamDecoder.create(MONO);
    // TOC 0xF8: CELT fullband 20 ms, mono, one frame of no bytes (decoded as a lost frame).
    const samples = decoder.decode([new Uint8Array([0xf8])]);
    expect(samples.length).toBe((OPUS_RATE * 20) / 1000);
    expect(decoder.heapBytes).toBeGreaterThan(0);
    decoder.free();
  });
});
