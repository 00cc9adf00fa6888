import { describe, expect, it } from "vitest";
import { AudioFormatError } from "../src/audio/audio-format";
import { OggOpusDemuxer } from "../src/audio/ogg-opus-demuxer";
import {
  MAX_PACKET_BYTES_PER_CHANNEL,
  OPUS_RATE,
  OpusStreamDecoder,
} from "../src/audio/opus-decoder";
import { MAX_PACKET_SAMPLES, opusPacketSamples } from "../src/audio/opus-packet";
import { MEMORY_PAGES } from "../tools/models/opus-wasm";
import { oggOpusFixture } from "./helpers/fixtures";

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

describe("an Opus packet's duration, from its TOC byte", () => {
  it("is what libopus decodes, packet by packet, for a real stream and for each frame code", async () => {
    const demuxer = new OggOpusDemuxer();
    const packets = demuxer.push(await oggOpusFixture("sb_spk1_snt1"));
    const synthetic = [
      [0xf8], // CELT FB 20 ms, code 0
      [0x0b, 0x00], // SILK NB 20 ms, code 3, 0 frames: refused (not counted)
      [0x1b, 0x02], // SILK NB 60 ms, code 3, 2 frames of no bytes: 120 ms from two bytes
      [0x79, 0x00, 0x00], // hybrid FB 20 ms, code 1: two frames of 1 byte
      [0x82, 0x01, 0x00], // CELT NB 2.5 ms, code 2: frames of 1 and 0 bytes
      [0x83, 0x30], // CELT NB 2.5 ms, code 3, 48 frames: 120 ms
    ].map((bytes) => Uint8Array.from(bytes));
    const decoder = await OpusStreamDecoder.create({ ...MONO });
    let checked = 0;
    for (const packet of [...packets, ...synthetic]) {
      let expected: number;
      try {
        expected = opusPacketSamples(packet);
      } catch (error) {
        expect(error).toBeInstanceOf(AudioFormatError);
        continue;
      }
      expect(decoder.decode([packet]).length).toBe(expected);
      checked += 1;
    }
    expect(checked).toBe(packets.length + synthetic.length - 1);
    decoder.free();
  });

  it("refuses what RFC 6716 says is not a packet: empty, no frame count, 0 frames, over 120 ms", () => {
    const refused =
      (...bytes: number[]) =>
      () =>
        opusPacketSamples(Uint8Array.from(bytes));
    expect(refused()).toThrow(/empty Opus packet/);
    expect(refused(0x0b)).toThrow(/without its frame count/);
    expect(refused(0xfb, 0x00)).toThrow(/declares 0 frames/);
    // SILK 60 ms × 3 = 180 ms; CELT 20 ms × 7 = 140 ms.
    expect(refused(0x1b, 0x03)).toThrow(/declares 3 frames of 60 ms/);
    expect(refused(0xfb, 0x07)).toThrow(/declares 7 frames of 20 ms/);
    expect(opusPacketSamples(Uint8Array.from([0xfb, 0x06]))).toBe(MAX_PACKET_SAMPLES);
  });

  it(`refuses a packet over ${MAX_PACKET_BYTES_PER_CHANNEL} bytes a channel before copying it`, async () => {
    const mono = await OpusStreamDecoder.create(MONO);
    const stereo = await OpusStreamDecoder.create({ ...MONO, channels: 2 });
    const packet = (bytes: number) => new Uint8Array(bytes).fill(0xfc, 0, 1);
    // The package's input buffer is this size: one byte more was a RangeError, not a refusal.
    expect(() => mono.decode([packet(MAX_PACKET_BYTES_PER_CHANNEL + 1)])).toThrow(
      /Opus packet of 3841 bytes is over 3840/,
    );
    expect(() => stereo.decode([packet(2 * MAX_PACKET_BYTES_PER_CHANNEL + 1)])).toThrow(
      AudioFormatError,
    );
    expect(() => stereo.decode([packet(2 * MAX_PACKET_BYTES_PER_CHANNEL)])).not.toThrow(RangeError);
    mono.free();
    stereo.free();
  });

  it("refuses a stream of zero channels (WebM with no CodecPrivate and Channels 0)", async () => {
    await expect(OpusStreamDecoder.create({ ...MONO, channels: 0 })).rejects.toThrow(
      /Opus with 0 channels is not supported/,
    );
  });
});
