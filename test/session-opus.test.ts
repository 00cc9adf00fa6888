/**
 * Ogg/Opus and WebM/Opus input, end to end through the session with the fake transcriber (whose
 * words fingerprint every sample it is fed). The Ogg/Opus stream is a real encoder's: opusenc
 * encodes a dev clip on the Node side (OPUS_FIXTURES, test/setup/opus-fixtures.ts). The WebM
 * stream carries the same Opus packets, remuxed here as MediaRecorder lays them out. Nothing
 * binary is committed.
 *
 * The reference for "exactly the audio it encodes" is the same packets decoded here by the same
 * decoder and sent as raw 48 kHz linear32: the session must produce an identical transcript.
 */
import { describe, expect, it } from "vitest";
import { OggOpusDemuxer, oggCrc } from "../src/audio/ogg-opus-demuxer";
import { OpusStreamDecoder } from "../src/audio/opus-decoder";
import { seededRandom } from "../tools/eval/random";
import { type ServerJson, sha256Hex, TestClient, transcriptOf, withoutIds } from "./helpers/client";
import { el, id, opusHead, size, text } from "./helpers/containers";
import { fixture, oggOpusFixture, wavFixture } from "./helpers/fixtures";
import { concat } from "./helpers/typed-arrays";
import { ADMIN_TOKEN, send } from "./setup/accounts-app";

const CLIP = "sb_spk1_snt1";
const COMMON = "interim_results=true&vad_events=true";

/** Frames of 1 to `max` bytes from a seeded generator: cuts fall anywhere in pages and blocks. */
function randomFrames(bytes: Uint8Array, seed: number, max: number): Uint8Array[] {
  const random = seededRandom(seed);
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.byteLength; ) {
    const size = 1 + Math.floor(random() * max);
    out.push(bytes.subarray(at, at + size));
    at += size;
  }
  return out;
}

async function transcribe(query: string, parts: Uint8Array[]) {
  const client = await TestClient.open(`?${query}${query ? "&" : ""}${COMMON}`);
  for (const part of parts) client.sendAudio(part);
  const { metadata, closed } = await client.finish();
  expect(closed.code).toBe(1000);
  expect(metadata.sha256).toBe(await sha256Hex(concat(parts)));
  const messages = client.messages.filter((m) => m.type !== "Metadata");
  const finals = messages.filter((m) => m.type === "Results" && m.is_final === true);
  return { messages: withoutIds(messages), finals, metadata };
}

/** The Ogg stream's audio packets and head, demuxed here. */
function demux(ogg: Uint8Array) {
  const demuxer = new OggOpusDemuxer();
  const packets = demuxer.push(ogg);
  demuxer.end();
  const head = demuxer.head;
  if (head === null) throw new Error("no OpusHead");
  return { packets, head, headBytes: opusHead(head.channels, head.preSkip) };
}

/** The packets decoded here, as raw 48 kHz 32-bit float PCM. */
async function decodedPcm(ogg: Uint8Array): Promise<Uint8Array> {
  const { packets, head } = demux(ogg);
  const decoder = await OpusStreamDecoder.create(head);
  const samples = decoder.decode(packets);
  decoder.free();
  return new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength).slice();
}

const u8 = (...values: number[]) => Uint8Array.from(values);

/** A WebM of `packets` (20-ms Opus frames), 50 blocks per Cluster. */
function webm(codec: string, codecPrivate: Uint8Array, packets: Uint8Array[]): Uint8Array {
  const clusters: Uint8Array[] = [];
  for (let first = 0; first < packets.length; first += 50) {
    const blocks = packets.slice(first, first + 50).map((packet, i) => {
      const timecode = i * 20;
      return el(0xa3, concat([u8(0x81, timecode >> 8, timecode & 0xff, 0x80), packet]));
    });
    const start = first * 20;
    clusters.push(
      concat([id(0x1f43b675), size(null), el(0xe7, u8(start >> 8, start & 0xff)), ...blocks]),
    );
  }
  return concat([
    el(0x1a45dfa3, el(0x4286, u8(1)), el(0x4282, text("webm"))),
    id(0x18538067),
    size(null),
    el(
      0x1654ae6b,
      el(
        0xae,
        el(0xd7, u8(1)),
        el(0x83, u8(2)),
        el(0x86, text(codec)),
        el(0x63a2, codecPrivate),
        el(0xe1, el(0x9f, u8(1))),
      ),
    ),
    ...clusters,
  ]);
}

function finalTimes(finals: ServerJson[]): { start: number; end: number; text: string }[] {
  return finals.map((m) => ({
    start: Number(m.start),
    end: Number(m.start) + Number(m.duration),
    text: transcriptOf(m),
  }));
}

describe("Ogg/Opus from opusenc", () => {
  it("is decoded and transcribed: exactly the audio its packets decode to, at the clip's times", async () => {
    const ogg = await oggOpusFixture(CLIP);
    const opus = await transcribe("", randomFrames(ogg, 1, 2000));
    const reference = await transcribe(
      "encoding=linear32&sample_rate=48000",
      randomFrames(await decodedPcm(ogg), 2, 2000),
    );
    expect(opus.finals.length).toBeGreaterThan(0);
    for (const final of finalTimes(opus.finals)) expect(final.text).not.toBe("");
    expect(opus.messages).toEqual(reference.messages);
    // Pre-skip dropped: the audio is as long as the clip (opusenc pads the last frame).
    const { pcm } = await wavFixture(`${CLIP}.wav`);
    const clipSeconds = pcm.byteLength / 2 / 16_000;
    expect(Number(opus.metadata.duration)).toBeCloseTo(clipSeconds, 1);
    // And finals fall where the clip's speech is: within 0.1 s of the uncompressed clip's.
    const raw = await transcribe("encoding=linear16&sample_rate=16000", randomFrames(pcm, 3, 2000));
    const rawTimes = finalTimes(raw.finals);
    const opusTimes = finalTimes(opus.finals);
    expect(opusTimes.length).toBe(rawTimes.length);
    opusTimes.forEach((t, i) => {
      expect(Math.abs(t.start - (rawTimes[i]?.start ?? Number.NaN))).toBeLessThan(0.1);
      expect(Math.abs(t.end - (rawTimes[i]?.end ?? Number.NaN))).toBeLessThan(0.1);
    });
  });

  it("gives identical results however the stream is split into frames", async () => {
    const ogg = await oggOpusFixture(CLIP);
    const whole = await transcribe("", [ogg]);
    for (const [seed, max] of [
      [4, 2000],
      [5, 64],
      [6, 9000],
    ] as const) {
      const split = await transcribe("", randomFrames(ogg, seed, max));
      expect(split.messages).toEqual(whole.messages);
    }
  });
});

/** Sends `stream` and expects the Error and 1008 that name `message`, with no transcript. */
async function expectRefused(stream: Uint8Array, message: RegExp, query = ""): Promise<void> {
  const client = await TestClient.open(`?${query}${query ? "&" : ""}${COMMON}`);
  client.sendAudio(stream);
  const error = await client.waitFor((m) => m.type === "Error", "an Error");
  expect(error.code).toBe("UNSUPPORTED_AUDIO");
  expect(String(error.description)).toMatch(message);
  const closed = await client.waitClosed();
  expect(closed.code).toBe(1008);
  expect(closed.reason).toMatch(message);
  expect(
    client.messages
      .filter((m) => m.type === "Results")
      .map(transcriptOf)
      .join(""),
  ).toBe("");
}

describe("encoding=ogg-opus (Deepgram's name for an Ogg Opus stream)", () => {
  const QUERY = "encoding=ogg-opus&sample_rate=48000";

  it("is decoded exactly as the same stream sent with no encoding", async () => {
    const ogg = await oggOpusFixture(CLIP);
    const named = await transcribe(QUERY, randomFrames(ogg, 7, 2000));
    const detected = await transcribe("", randomFrames(ogg, 8, 2000));
    expect(named.finals.length).toBeGreaterThan(0);
    expect(named.messages).toEqual(detected.messages);
  });

  it("refuses a stream that is not Ogg, naming what it is", async () => {
    const wav = await fixture(`${CLIP}.wav`);
    const { pcm } = await wavFixture(`${CLIP}.wav`);
    await expectRefused(wav, /encoding=ogg-opus, but the stream is not Ogg \(WAV\)/, QUERY);
    await expectRefused(
      pcm,
      /encoding=ogg-opus, but the stream is not Ogg \(no container\)/,
      QUERY,
    );
  });
});

describe("Ogg that is not Opus", () => {
  it("refuses Vorbis (the first packet a Vorbis identification header) with an Error and 1008", async () => {
    const ogg = (await oggOpusFixture(CLIP)).slice();
    // The first page holds only the 19-byte OpusHead: make it Vorbis's header and re-sign it.
    const segments = ogg[26] ?? 0;
    const first = 27 + segments;
    ogg.set(new TextEncoder().encode("\x01vorbis"), first);
    const pageEnd = first + (ogg[27] ?? 0);
    new DataView(ogg.buffer).setUint32(22, oggCrc(ogg.subarray(0, pageEnd)), true);
    await expectRefused(ogg, /Ogg stream carries Vorbis; only Opus is supported/);
  });
});

describe("WebM/Opus (the same packets in MediaRecorder's layout)", () => {
  it("is decoded and transcribed exactly as the Ogg stream, however it is split", async () => {
    const ogg = await oggOpusFixture(CLIP);
    const { packets, headBytes } = demux(ogg);
    const stream = webm("A_OPUS", headBytes, packets);
    const fromOgg = await transcribe("", randomFrames(ogg, 7, 2000));
    const whole = await transcribe("", [stream]);
    expect(whole.finals.length).toBeGreaterThan(0);
    expect(whole.messages).toEqual(fromOgg.messages);
    const split = await transcribe("", randomFrames(stream, 8, 300));
    expect(split.messages).toEqual(whole.messages);
  });

  it("refuses Vorbis with an Error and 1008", async () => {
    const stream = webm("A_VORBIS", u8(2, 0, 0), [u8(1, 2, 3)]);
    await expectRefused(stream, /WebM audio track carries Vorbis; only Opus is supported/);
  });
});

interface OpusDecoders {
  live: number;
  heap_bytes: number;
}

/** The Opus decoders GET /admin/isolate reports alive in this isolate. */
async function opusDecoders(): Promise<OpusDecoders> {
  const response = await send("/admin/isolate", {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { opus_decoders: OpusDecoders }).opus_decoders;
}

/** The build's memory limit for one decoder (tools/models/opus-wasm.ts). */
const DECODER_HEAP_LIMIT_BYTES = 1024 * 1024;

describe("each session's Opus decoder", () => {
  it("is counted in the isolate while the session runs, and freed when it ends", async () => {
    const before = await opusDecoders();
    const ogg = await oggOpusFixture(CLIP);
    const client = await TestClient.open(`?${COMMON}`);
    client.sendAudio(ogg.subarray(0, ogg.byteLength >> 1));
    await expect.poll(() => opusDecoders().then((d) => d.live)).toBe(before.live + 1);
    const running = await opusDecoders();
    expect(running.heap_bytes - before.heap_bytes).toBeGreaterThan(0);
    expect(running.heap_bytes - before.heap_bytes).toBeLessThanOrEqual(DECODER_HEAP_LIMIT_BYTES);
    client.sendAudio(ogg.subarray(ogg.byteLength >> 1));
    const { closed } = await client.finish();
    expect(closed.code).toBe(1000);
    await expect.poll(() => opusDecoders()).toEqual(before);
  });

  it("is freed when a corrupt packet ends the stream with an Error and 1008", async () => {
    const before = await opusDecoders();
    const { packets, headBytes } = demux(await oggOpusFixture(CLIP));
    // A code-1 packet (TOC 0xF9) with an odd payload: its two frames cannot be of equal size
    // (RFC 6716 §3.4, R3). Its TOC passes the session's own check; libopus refuses it.
    const corrupt = [...packets.slice(0, 25), u8(0xf9, 1, 2, 3), ...packets.slice(25)];
    const client = await TestClient.open(`?${COMMON}`);
    client.sendAudio(webm("A_OPUS", headBytes, corrupt));
    const error = await client.waitFor((m) => m.type === "Error", "an Error");
    expect(error.code).toBe("UNSUPPORTED_AUDIO");
    expect(String(error.description)).toMatch(/Opus packet could not be decoded/);
    const closed = await client.waitClosed();
    expect(closed.code).toBe(1008);
    await expect.poll(() => opusDecoders()).toEqual(before);
  });
});

describe("Opus packets, checked before they are decoded", () => {
  /** The clip's first half second, then `extra`, then the rest of the clip, as one WebM. */
  async function withPackets(extra: Uint8Array[]): Promise<Uint8Array> {
    const { packets, headBytes } = demux(await oggOpusFixture(CLIP));
    return webm("A_OPUS", headBytes, [...packets.slice(0, 25), ...extra, ...packets.slice(25)]);
  }

  it("refuses an empty packet (libopus would conceal it as 120 ms of lost audio)", async () => {
    await expectRefused(await withPackets([new Uint8Array(0)]), /empty Opus packet/);
  });

  it("refuses a packet larger than the decoder takes with an Error and 1008, not 1011", async () => {
    const large = new Uint8Array(4_000).fill(0x55);
    large[0] = 0xf8; // CELT fullband 20 ms, mono, one frame
    await expectRefused(await withPackets([large]), /Opus packet of 4000 bytes is over 3840/);
  });

  /** `count` packets of 2 bytes and 120 ms each (SILK 60 ms, code 3, two frames of no bytes). */
  async function dense(count: number): Promise<Uint8Array> {
    const { headBytes } = demux(await oggOpusFixture(CLIP));
    return webm(
      "A_OPUS",
      headBytes,
      Array.from({ length: count }, () => u8(0x1b, 0x02)),
    );
  }

  it("closes 1008 BUF-0000 when one frame carries more than 20 s of audio, and decodes none of it", async () => {
    const before = await opusDecoders();
    const client = await TestClient.open(`?${COMMON}`);
    client.sendAudio(await dense(200)); // 24 s in 3 KB
    const closed = await client.waitClosed();
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(
      /^BUF-0000.*24\.0 s of Opus audio arrived at once, more than 20 s/,
    );
    expect(client.messages.some((m) => m.type === "Error" || m.type === "Results")).toBe(false);
    await expect.poll(() => opusDecoders()).toEqual(before);
  });

  it("takes up to 20 s of audio in one frame", async () => {
    const { metadata } = await transcribe("", [await dense(160)]); // 19.2 s, less the pre-skip
    expect(Number(metadata.duration)).toBeCloseTo(19.2, 1);
  });
});
