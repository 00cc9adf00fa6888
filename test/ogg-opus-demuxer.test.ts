/**
 * The Ogg demuxer on streams built here (no encoder is needed to frame packets): pages with
 * packets that span pages, an OpusTags packet to skip, every split point of the byte stream, and
 * each way a stream can be wrong.
 */
import { describe, expect, it } from "vitest";
import { AudioFormatError } from "../src/audio/audio-format";
import { MAX_OPUS_PACKET_BYTES, OggOpusDemuxer } from "../src/audio/ogg-opus-demuxer";
import { pseudoRandomBytes } from "../tools/eval/random";
import { opusHead } from "./helpers/containers";
import { concat } from "./helpers/typed-arrays";

/** Ogg's CRC-32 bit by bit from RFC 3533's definition (poly 0x04C11DB7, MSB first, init 0). */
function crc(bytes: Uint8Array): number {
  let r = 0;
  for (const byte of bytes) {
    r ^= byte << 24;
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? ((r << 1) ^ 0x04c11db7) >>> 0 : (r << 1) >>> 0;
  }
  return r >>> 0;
}

interface PageSpec {
  flags?: number;
  serial?: number;
  sequence: number;
  /** Lacing values and body: segments of the packets (a final 255 continues on the next page). */
  segments: Uint8Array[];
}

function page({ flags = 0, serial = 7, sequence, segments }: PageSpec): Uint8Array {
  const body = concat(segments);
  const out = new Uint8Array(27 + segments.length + body.length);
  const view = new DataView(out.buffer);
  out.set([0x4f, 0x67, 0x67, 0x53, 0, flags]);
  view.setUint32(14, serial, true);
  view.setUint32(18, sequence, true);
  out[26] = segments.length;
  segments.forEach((s, i) => {
    out[27 + i] = s.length;
  });
  out.set(body, 27 + segments.length);
  view.setUint32(22, crc(out), true);
  return out;
}

/** A packet's segments by Ogg lacing: 255-byte pieces, then the rest (0 if a multiple of 255). */
function lace(packet: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (packet.length - at >= 255) {
    out.push(packet.subarray(at, at + 255));
    at += 255;
  }
  out.push(packet.subarray(at));
  return out;
}

const tags = concat([new TextEncoder().encode("OpusTags"), pseudoRandomBytes(700, 2)]);
const audio = [pseudoRandomBytes(3, 3), pseudoRandomBytes(600, 4), pseudoRandomBytes(255, 5)];

/** Head; tags across two pages; three audio packets, the second across two pages. */
function stream(): Uint8Array {
  const tagSegments = lace(tags); // 700 = 255 + 255 + 190
  const second = lace(audio[1] as Uint8Array); // 600 = 255 + 255 + 90
  return concat([
    page({ flags: 0x02, sequence: 0, segments: lace(opusHead(2, 312)) }),
    page({ sequence: 1, segments: tagSegments.slice(0, 2) }),
    page({ flags: 0x01, sequence: 2, segments: tagSegments.slice(2) }),
    page({ sequence: 3, segments: [...lace(audio[0] as Uint8Array), ...second.slice(0, 1)] }),
    page({
      flags: 0x01,
      sequence: 4,
      segments: [...second.slice(1), ...lace(audio[2] as Uint8Array)],
    }),
    page({ flags: 0x04, sequence: 5, segments: [] }),
  ]);
}

describe("OggOpusDemuxer", () => {
  it("yields the audio packets, skipping OpusTags, and reads OpusHead", () => {
    const demuxer = new OggOpusDemuxer();
    expect(demuxer.push(stream())).toEqual(audio);
    expect(demuxer.head).toEqual({
      channels: 2,
      preSkip: 312,
      inputRate: 48_000,
      mappingFamily: 0,
    });
    expect(() => demuxer.end()).not.toThrow();
  });

  it("gives the same packets for every split point of the stream", () => {
    const bytes = stream();
    for (let cut = 0; cut <= bytes.length; cut++) {
      const demuxer = new OggOpusDemuxer();
      const packets = [
        ...demuxer.push(bytes.subarray(0, cut)),
        ...demuxer.push(bytes.subarray(cut)),
      ];
      expect(packets, `cut at ${cut}`).toEqual(audio);
      expect(demuxer.heldBytes).toBe(0);
    }
  });

  it("keeps no view of the caller's frames: a packet spanning frames is whole after they are reused", () => {
    // Frame by frame, each overwritten once pushed (as a reused buffer would be). A packet's part
    // kept as a view would also keep the client's whole frame alive (up to 256 KiB for a few bytes).
    // One page a frame: a page whole in its frame is read in place, not held.
    const bytes = stream();
    const demuxer = new OggOpusDemuxer();
    const packets: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; ) {
      const segments = bytes[at + 26] ?? 0;
      const lacing = bytes.subarray(at + 27, at + 27 + segments);
      const size = 27 + segments + lacing.reduce((sum, n) => sum + n, 0);
      const frame = bytes.slice(at, at + size);
      packets.push(...demuxer.push(frame));
      frame.fill(0xee);
      at += size;
    }
    expect(packets).toEqual(audio);
  });

  it("holds at most the unfinished page, and calls a stream that ends inside one truncated", () => {
    const bytes = stream();
    const demuxer = new OggOpusDemuxer();
    demuxer.push(bytes.subarray(0, bytes.length - 10));
    expect(demuxer.heldBytes).toBeGreaterThan(0);
    expect(demuxer.heldBytes).toBeLessThan(40);
    expect(() => demuxer.end()).toThrow(/truncated/);
  });

  function refusal(bytes: Uint8Array): string {
    try {
      new OggOpusDemuxer().push(bytes);
    } catch (error) {
      expect(error).toBeInstanceOf(AudioFormatError);
      return (error as Error).message;
    }
    throw new Error("accepted");
  }

  it("refuses a corrupt page (CRC), lost sync, a lost page, a second stream and other codecs", () => {
    const good = stream();
    const flipped = good.slice();
    flipped[40] = (flipped[40] ?? 0) ^ 1; // inside OpusHead
    expect(refusal(flipped)).toMatch(/CRC mismatch/);

    const head = page({ flags: 0x02, sequence: 0, segments: lace(opusHead(1, 0)) });
    expect(refusal(concat([head, new TextEncoder().encode("garbage")]))).toMatch(/OggS/);
    expect(refusal(concat([head, page({ sequence: 2, segments: lace(tags) })]))).toMatch(
      /lost or reordered/,
    );
    expect(
      refusal(concat([head, page({ flags: 0x02, serial: 8, sequence: 0, segments: lace(tags) })])),
    ).toMatch(/more than one logical stream/);
    const vorbis = concat([
      new Uint8Array([1]),
      new TextEncoder().encode("vorbis"),
      new Uint8Array(23),
    ]);
    expect(refusal(page({ flags: 0x02, sequence: 0, segments: [vorbis] }))).toMatch(
      /carries Vorbis/,
    );
    expect(
      refusal(page({ flags: 0x02, sequence: 0, segments: lace(opusHead(3, 0, 255)) })),
    ).toMatch(/mapping family 255/);
    expect(refusal(page({ sequence: 0, segments: lace(opusHead(1, 0)) }))).toMatch(/first page/);
    const ended = concat([
      page({ flags: 0x06, sequence: 0, segments: lace(opusHead(1, 0)) }),
      page({ flags: 0x02, serial: 9, sequence: 0, segments: lace(opusHead(1, 0)) }),
    ]);
    expect(refusal(ended)).toMatch(/new Ogg stream started/);
  });

  it("refuses a packet over MAX_OPUS_PACKET_BYTES as it grows, without holding more", () => {
    const pages = [
      page({ flags: 0x02, sequence: 0, segments: lace(opusHead(1, 0)) }),
      page({ sequence: 1, segments: lace(tags) }),
    ];
    // 255-segment pages of 255-byte segments: one packet that never ends.
    const full = Array.from({ length: 255 }, () => new Uint8Array(255));
    const pagesNeeded = Math.ceil(MAX_OPUS_PACKET_BYTES / (255 * 255)) + 1;
    for (let i = 0; i < pagesNeeded; i++) {
      pages.push(page({ flags: i === 0 ? 0 : 0x01, sequence: 2 + i, segments: full }));
    }
    expect(refusal(concat(pages))).toMatch(/packet over 65536 bytes/);
  });
});
