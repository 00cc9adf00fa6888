/**
 * The WebM demuxer on streams built here the way MediaRecorder writes them (EBML header, a
 * Segment and Clusters of unknown size, SimpleBlocks), split at every byte, and on each way a
 * stream can be wrong. No encoder is needed: the "packets" are arbitrary bytes.
 */
import { describe, expect, it } from "vitest";
import { AudioFormatError } from "../src/audio/audio-format";
import {
  MAX_WEBM_HELD_ELEMENT_BYTES,
  MAX_WEBM_TRACKS,
  WebmOpusDemuxer,
} from "../src/audio/webm-opus-demuxer";
import { pseudoRandomBytes } from "../tools/eval/random";
import { el, id, size, text } from "./helpers/containers";
import { concat } from "./helpers/typed-arrays";

function unknownSize(elementId: number, ...children: Uint8Array[]): Uint8Array {
  return concat([id(elementId), size(null), ...children]);
}

const u8 = (...values: number[]) => Uint8Array.from(values);
const float64 = (v: number) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, v);
  return out;
};

function header(): Uint8Array {
  return concat([el(0x1a45dfa3, el(0x4286, u8(1)), el(0x4282, text("webm")))]);
}

function tracks(codec = "A_OPUS"): Uint8Array {
  return el(
    0x1654ae6b,
    // A video track first (number 2), then the audio (number 1).
    el(0xae, el(0xd7, u8(2)), el(0x83, u8(1)), el(0x86, text("V_VP8"))),
    el(
      0xae,
      el(0xd7, u8(1)),
      el(0x83, u8(2)),
      el(0x86, text(codec)),
      el(0x63a2, text("OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00")),
      el(0xe1, el(0xb5, float64(48_000)), el(0x9f, u8(1))),
    ),
  );
}

/** A SimpleBlock of `track` (1-byte track number), timecode 0, keyframe flag, no lacing. */
function block(track: number, packet: Uint8Array, flags = 0x80): Uint8Array {
  return el(0xa3, concat([u8(0x80 | track, 0, 0, flags), packet]));
}

const packets = [
  pseudoRandomBytes(40, 1),
  pseudoRandomBytes(300, 2),
  pseudoRandomBytes(1, 3),
  pseudoRandomBytes(90, 4),
];

function recording(): Uint8Array {
  return concat([
    header(),
    unknownSize(
      0x18538067,
      el(0x1549a966, el(0x2ad7b1, u8(0x0f, 0x42, 0x40))), // Info: skipped
      tracks(),
      unknownSize(
        0x1f43b675,
        el(0xe7, u8(0)),
        block(1, packets[0] as Uint8Array),
        block(2, pseudoRandomBytes(500, 9)),
        block(1, packets[1] as Uint8Array),
      ),
      unknownSize(
        0x1f43b675,
        el(0xe7, u8(0x40)),
        block(1, packets[2] as Uint8Array),
        el(0xa0, el(0xa1, concat([u8(0x81, 0, 0, 0), packets[3] as Uint8Array]))),
      ),
    ),
  ]);
}

describe("WebmOpusDemuxer", () => {
  it("yields the Opus track's packets in order, ignoring other tracks and unknown elements", () => {
    const demuxer = new WebmOpusDemuxer();
    expect(demuxer.push(recording())).toEqual(packets);
    expect(demuxer.track).toMatchObject({
      number: 1,
      codec: "A_OPUS",
      sampleRate: 48_000,
      channels: 1,
    });
    expect(demuxer.track?.codecPrivate?.subarray(0, 8)).toEqual(text("OpusHead"));
    expect(() => demuxer.end()).not.toThrow();
  });

  it("gives the same packets for every split point, through headers, sizes and blocks", () => {
    const bytes = recording();
    for (let cut = 0; cut <= bytes.length; cut++) {
      const demuxer = new WebmOpusDemuxer();
      const out = [...demuxer.push(bytes.subarray(0, cut)), ...demuxer.push(bytes.subarray(cut))];
      expect(out, `cut at ${cut}`).toEqual(packets);
    }
  });

  it("gives the same packets when every byte is its own blob", () => {
    const demuxer = new WebmOpusDemuxer();
    const out = [...recording()].flatMap((b) => demuxer.push(u8(b)));
    expect(out).toEqual(packets);
    expect(demuxer.heldBytes).toBe(0);
  });

  it("does not hold a skipped element, however large", () => {
    const big = el(0x1254c367, new Uint8Array(300_000)); // Tags: skipped
    const bytes = concat([header(), unknownSize(0x18538067, big, tracks())]);
    const demuxer = new WebmOpusDemuxer();
    for (let at = 0; at < bytes.length; at += 1000) {
      demuxer.push(bytes.subarray(at, at + 1000));
      expect(demuxer.heldBytes).toBeLessThan(2000);
    }
  });

  function refusal(...parts: Uint8Array[]): string {
    try {
      const demuxer = new WebmOpusDemuxer();
      for (const part of parts) demuxer.push(part);
      demuxer.end();
    } catch (error) {
      expect(error).toBeInstanceOf(AudioFormatError);
      return (error as Error).message;
    }
    throw new Error("accepted");
  }

  it("refuses Vorbis, no audio track, lacing, a restarted recorder, corruption and truncation", () => {
    const cluster = (b: Uint8Array) => unknownSize(0x1f43b675, b);
    expect(
      refusal(header(), unknownSize(0x18538067, tracks("A_VORBIS"), cluster(new Uint8Array(0)))),
    ).toMatch(/carries Vorbis/);
    expect(
      refusal(header(), unknownSize(0x18538067, el(0x1654ae6b), cluster(new Uint8Array(0)))),
    ).toMatch(/no audio track/);
    expect(
      refusal(header(), unknownSize(0x18538067, tracks(), cluster(block(1, u8(1, 2), 0x82)))),
    ).toMatch(/lacing/);
    expect(refusal(recording(), header())).toMatch(/new WebM stream started/);
    expect(refusal(header(), u8(0x00, 0x01))).toMatch(/invalid EBML number/);
    expect(refusal(el(0x1a45dfa3, el(0x4282, text("mkv3d"))))).toMatch(/not WebM or Matroska/);
    expect(refusal(el(0xa3, u8(1)))).toMatch(/EBML header/);
    expect(refusal(recording().subarray(0, recording().length - 5))).toMatch(/truncated/);
    expect(refusal(header(), unknownSize(0x1654ae6b))).toMatch(/unknown size/);
  });

  it(`refuses a block over MAX_WEBM_HELD_ELEMENT_BYTES (${MAX_WEBM_HELD_ELEMENT_BYTES}) before holding it`, () => {
    const start = concat([header(), unknownSize(0x18538067, tracks(), unknownSize(0x1f43b675))]);
    const hugeHeader = concat([id(0xa3), size(MAX_WEBM_HELD_ELEMENT_BYTES + 1)]);
    // The audio track's (1): refused as soon as its track number says so.
    expect(refusal(start, hugeHeader, u8(0x81))).toMatch(/is over/);
  });

  it("skips another track's block however large (a video keyframe), without holding it", () => {
    const video = block(2, pseudoRandomBytes(200_000, 7));
    const before = concat([
      header(),
      unknownSize(
        0x18538067,
        tracks(),
        unknownSize(0x1f43b675, block(1, packets[0] as Uint8Array)),
      ),
    ]);
    const after = unknownSize(0x1f43b675, block(1, packets[1] as Uint8Array));
    const bytes = concat([before, video, after]);
    // One frame ends right after the video block's header, before its track number.
    const videoBody = before.length + video.length - (200_000 + 4);
    for (const cuts of [[videoBody], [1000, 2000, 65_000, 130_000]]) {
      const demuxer = new WebmOpusDemuxer();
      const out: Uint8Array[] = [];
      let from = 0;
      for (const cut of [...cuts, bytes.length]) {
        out.push(...demuxer.push(bytes.subarray(from, cut)));
        expect(demuxer.heldBytes).toBeLessThan(2000);
        from = cut;
      }
      expect(out).toEqual(packets.slice(0, 2));
    }
  });

  it(`reads up to MAX_WEBM_TRACKS (${MAX_WEBM_TRACKS}) TrackEntries and refuses the next`, () => {
    // An empty TrackEntry is 2 bytes (AE 80) and was kept as an object for the session's life.
    const entries = (n: number) => concat(Array.from({ length: n }, () => u8(0xae, 0x80)));
    const start = concat([header(), id(0x18538067), size(null)]);
    const demuxer = new WebmOpusDemuxer();
    expect(demuxer.push(concat([start, entries(MAX_WEBM_TRACKS)]))).toEqual([]);
    expect(refusal(start, entries(MAX_WEBM_TRACKS + 1))).toMatch(/more than 16 tracks/);
    // Also in later frames, after the first Cluster.
    const streamed = concat([header(), unknownSize(0x18538067, tracks(), unknownSize(0x1f43b675))]);
    expect(refusal(streamed, entries(MAX_WEBM_TRACKS))).toMatch(/more than 16 tracks/);
  });
});
