/**
 * Every accepted audio format reaches the transcriber as exactly the audio it encodes. The fake
 * transcriber's words fingerprint every sample it is fed (with offsets), so a format test sends a
 * clip in that format and the same samples as raw linear16, and compares the transcripts for
 * equality. The encoded streams are built here from the 16-bit dev clips (nothing binary is
 * committed); each test picks samples its format represents exactly, so equality is exact.
 */
import { describe, expect, it } from "vitest";
import { seededRandom } from "../tools/eval/random";
import { alawCompress } from "./helpers/audio";
import {
  handshake,
  type ServerJson,
  sha256Hex,
  TestClient,
  transcriptOf,
  withoutIds,
} from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { expectSlotReleased } from "./helpers/sessions";
import { newAccountWithKey } from "./setup/accounts-app";

const CLIP = "sb_spk1_snt1.wav";
const COMMON = "interim_results=true&vad_events=true";

/** Splits into frames of 1 to 2000 bytes from a seeded generator (cuts through samples). */
function frames(bytes: Uint8Array, seed: number): Uint8Array[] {
  const random = seededRandom(seed);
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.byteLength; ) {
    const size = 1 + Math.floor(random() * 2000);
    out.push(bytes.subarray(at, at + size));
    at += size;
  }
  return out;
}

async function transcribe(
  query: string,
  stream: Uint8Array,
  seed = 1,
): Promise<{ messages: unknown[]; metadata: ServerJson }> {
  const client = await TestClient.open(`?${query}&${COMMON}`);
  for (const frame of frames(stream, seed)) client.sendAudio(frame);
  const { metadata, closed } = await client.finish();
  expect(closed.code).toBe(1000);
  // Metadata describes the bytes the client sent, whatever they encode.
  expect(metadata.sha256).toBe(await sha256Hex(stream));
  const messages = client.messages.filter((m) => m.type !== "Metadata");
  expect(messages.filter((m) => m.type === "Results").length).toBeGreaterThan(0);
  return { messages: withoutIds(messages), metadata };
}

function int16s(pcm: Uint8Array): Int16Array {
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  return Int16Array.from({ length: pcm.byteLength >> 1 }, (_, i) => view.getInt16(i * 2, true));
}

function toPcm16(samples: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(samples.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < samples.length; i++) view.setInt16(i * 2, samples[i] ?? 0, true);
  return out;
}

describe("encoding=alaw", () => {
  it("transcribes exactly the samples its codes stand for", async () => {
    const { pcm } = await wavFixture(CLIP);
    const codes = Uint8Array.from(int16s(pcm), alawCompress);
    // What linear16 carries: each code's value from the A-law expansion (independent reference in
    // test/pcm-decoder.test.ts), which is a 16-bit integer, so the two streams are the same audio.
    const expanded = Int16Array.from(codes, (code) => alawExpand(code));
    const alaw = await transcribe("encoding=alaw&sample_rate=8000", codes, 3);
    const linear = await transcribe("encoding=linear16&sample_rate=8000", toPcm16(expanded), 4);
    expect(alaw.messages).toEqual(linear.messages);
    expect(alaw.metadata.duration).toBeCloseTo(codes.byteLength / 8000, 3);
  });
});

/** A-law expansion from G.711's definition (see alawCompress). */
function alawExpand(code: number): number {
  const toggled = code ^ 0x55;
  const segment = (toggled >> 4) & 7;
  const step = toggled & 0x0f;
  const magnitude13 = segment === 0 ? step * 2 + 1 : (step * 2 + 33) * 2 ** (segment - 1);
  return (toggled & 0x80 ? 1 : -1) * magnitude13 * 8;
}

/** 16-bit samples as the 32-bit little-endian floats they equal (linear32's wire format). */
function float32le(samples: Int16Array): Uint8Array {
  const out = new Uint8Array(samples.length * 4);
  const view = new DataView(out.buffer);
  samples.forEach((s, i) => {
    view.setFloat32(i * 4, s / 32768, true);
  });
  return out;
}

describe("encoding=linear32", () => {
  it("transcribes float samples exactly as the 16-bit samples they equal", async () => {
    const { pcm } = await wavFixture(CLIP);
    const samples = int16s(pcm);
    const floats = float32le(samples);
    const float = await transcribe("encoding=linear32&sample_rate=16000", floats, 5);
    const linear = await transcribe("encoding=linear16&sample_rate=16000", pcm, 6);
    expect(float.messages).toEqual(linear.messages);
    expect(float.metadata.duration).toBeCloseTo(samples.length / 16000, 3);
  });
});

/** A WAV file built here: RIFF header, optional chunks before/after `data`, then the body. */
function wavFile(options: {
  tag: number;
  channels: number;
  sampleRate: number;
  bits: number;
  body: Uint8Array;
  /** The data chunk's size field; default the body's length. */
  dataSize?: number;
  before?: Uint8Array;
  after?: Uint8Array;
}): Uint8Array {
  const { tag, channels, sampleRate, bits, body } = options;
  const before = options.before ?? new Uint8Array(0);
  const after = options.after ?? new Uint8Array(0);
  const header = new Uint8Array(12 + 24 + before.length + 8);
  const view = new DataView(header.buffer);
  const ascii = (at: number, text: string) => {
    for (let i = 0; i < 4; i++) header[at + i] = text.charCodeAt(i);
  };
  ascii(0, "RIFF");
  view.setUint32(4, header.length - 8 + body.length + after.length, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, tag, true);
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, (sampleRate * channels * bits) / 8, true);
  view.setUint16(32, (channels * bits) / 8, true);
  view.setUint16(34, bits, true);
  header.set(before, 36);
  ascii(36 + before.length, "data");
  view.setUint32(40 + before.length, options.dataSize ?? body.length, true);
  const out = new Uint8Array(header.length + body.length + after.length);
  out.set(header);
  out.set(body, header.length);
  out.set(after, header.length + body.length);
  return out;
}

/** A RIFF chunk (id, little-endian size, body, pad byte) such as LIST metadata. */
function chunk(id: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + body.length + (body.length % 2));
  for (let i = 0; i < 4; i++) out[i] = id.charCodeAt(i);
  new DataView(out.buffer).setUint32(4, body.length, true);
  out.set(body, 8);
  return out;
}

describe("a WAV file with no encoding or sample_rate", () => {
  it("at 44.1 kHz stereo PCM16 is transcribed as its mono downmix sent as linear16 at 44100", async () => {
    // The clip's samples, declared as 44.1 kHz (the fingerprint compares samples, not speech).
    const mono = int16s((await wavFixture(CLIP)).pcm);
    // Left and right differ but average exactly to the mono sample.
    const stereo = new Int16Array(mono.length * 2);
    mono.forEach((x, i) => {
      const d = x > -32000 && x < 32000 ? (i % 7) - 3 : 0;
      stereo[2 * i] = x + d;
      stereo[2 * i + 1] = x - d;
    });
    const file = wavFile({
      tag: 1,
      channels: 2,
      sampleRate: 44_100,
      bits: 16,
      body: toPcm16(stereo),
      before: chunk("LIST", new TextEncoder().encode("INFOISFT\x05\x00\x00\x00test\x00")),
      after: chunk("LIST", new Uint8Array(33)), // trailing metadata: ignored
    });
    // No encoding and no sample_rate: detection decides.
    const detected = await transcribe("language=en", file, 8);
    const linear = await transcribe("sample_rate=44100", toPcm16(mono), 9);
    expect(detected.messages).toEqual(linear.messages);
    expect(detected.metadata.duration).toBeCloseTo(mono.length / 44_100, 3);
  });

  it("with 32-bit float samples and a streaming header (data size 0xFFFFFFFF) is decoded to the end", async () => {
    const { pcm } = await wavFixture(CLIP);
    const samples = int16s(pcm);
    const body = float32le(samples);
    const file = wavFile({
      tag: 3,
      channels: 1,
      sampleRate: 16_000,
      bits: 32,
      body,
      dataSize: 0xffffffff,
    });
    const detected = await transcribe("language=en", file, 10);
    const linear = await transcribe("encoding=linear16&sample_rate=16000", pcm, 11);
    expect(detected.messages).toEqual(linear.messages);
  });
});

describe("detection falls back to raw linear16 at 16 kHz", () => {
  it("when the first bytes are no container, even if they arrive one by one", async () => {
    const { pcm } = await wavFixture(CLIP);
    const client = await TestClient.open(`?${COMMON}`);
    for (let i = 0; i < 3; i++) client.sendAudio(pcm.subarray(i, i + 1));
    for (const frame of frames(pcm.subarray(3), 12)) client.sendAudio(frame);
    const { metadata } = await client.finish();
    expect(metadata.sha256).toBe(await sha256Hex(pcm));
    const linear = await transcribe("encoding=linear16&sample_rate=16000", pcm, 13);
    expect(withoutIds(client.messages.filter((m) => m.type !== "Metadata"))).toEqual(
      linear.messages,
    );
  });
});

/**
 * Sends `stream` with detection on and returns the Error message and the close, once the session
 * has given its account's slot back itself.
 */
async function refused(
  stream: Uint8Array,
  /** Send CloseStream after the bytes (for a refusal that comes at the end of the stream). */
  close = false,
): Promise<{ error: ServerJson; code: number; reason: string }> {
  // An account of its own, so the refusal can be seen to give its slot back.
  const account = await newAccountWithKey(1);
  const client = await TestClient.open(`?${COMMON}`, { key: account.key });
  for (const frame of frames(stream, 14)) client.sendAudio(frame);
  if (close) client.sendJson({ type: "CloseStream" });
  const closed = await client.waitClosed();
  await expectSlotReleased(account, client.sessionId);
  const errors = client.of("Error");
  expect(errors.length).toBe(1);
  // Never a transcript of undecodable bytes.
  expect(client.of("Results").map(transcriptOf).join("")).toBe("");
  return { error: errors[0] as ServerJson, ...closed };
}

describe("a stream that cannot be decoded gets an Error and closes 1008 DATA-0000", () => {
  const body = new Uint8Array(4000).fill(0x11);
  it.each([
    [
      "IMA ADPCM WAV",
      wavFile({ tag: 0x11, channels: 1, sampleRate: 16_000, bits: 4, body }),
      /IMA ADPCM/,
    ],
    [
      "24-bit WAV",
      wavFile({ tag: 1, channels: 1, sampleRate: 16_000, bits: 24, body }),
      /24-bit integer PCM/,
    ],
    [
      "a 96 kHz WAV",
      wavFile({ tag: 1, channels: 1, sampleRate: 96_000, bits: 16, body }),
      /96000 Hz/,
    ],
    [
      "a WAV whose header passes 64 KiB",
      wavFile({
        tag: 1,
        channels: 1,
        sampleRate: 16_000,
        bits: 16,
        body,
        before: chunk("JUNK", new Uint8Array(70_000)),
      }),
      /65536 bytes/,
    ],
    [
      "a second file after a WAV's data",
      wavFile({
        tag: 1,
        channels: 1,
        sampleRate: 16_000,
        bits: 16,
        body,
        after: wavFile({ tag: 1, channels: 1, sampleRate: 16_000, bits: 16, body }),
      }),
      /new container/,
    ],
    [
      // µ-law: one byte a sample, 4001 of them; RIFF's pad byte comes before the next file.
      "a second file after an odd-sized WAV data chunk (behind its pad byte)",
      wavFile({
        tag: 7,
        channels: 1,
        sampleRate: 8000,
        bits: 8,
        body: concatBytes(new Uint8Array(4001).fill(0x11), new Uint8Array(1)),
        dataSize: 4001,
        after: wavFile({ tag: 1, channels: 1, sampleRate: 16_000, bits: 16, body }),
      }),
      /new container/,
    ],
    ["FLAC", concatBytes(new TextEncoder().encode("fLaC\x00\x00\x00\x22"), body), /FLAC audio/],
    ["MP3 (ID3 tag)", concatBytes(new TextEncoder().encode("ID3\x04\x00"), body), /MP3 audio/],
    [
      "MP4 (Safari's MediaRecorder)",
      concatBytes(new TextEncoder().encode("\x00\x00\x00\x1cftypiso5"), body),
      /MP4\/M4A audio/,
    ],
    [
      "RIFF that is not WAVE",
      new TextEncoder().encode("RIFF\x10\x00\x00\x00AVI LIST"),
      /not WAV audio/,
    ],
    // Ogg and WebM are decoded when they carry Opus (session-opus.test.ts); PCM behind their
    // magic numbers is not a container and is refused naming what the demuxer found.
    ["PCM behind Ogg's magic", concatBytes(new TextEncoder().encode("OggS"), body), /Ogg page/],
  ])("%s", async (_name, stream, message) => {
    const { error, code, reason } = await refused(stream);
    expect(error.code).toBe("UNSUPPORTED_AUDIO");
    expect(error.variant).toBe("DataError");
    expect(String(error.description)).toMatch(message);
    expect(code).toBe(1008);
    expect(reason).toMatch(/^DATA-0000: /);
    expect(reason).toMatch(message);
  });

  it("PCM behind WebM's magic (read as elements to skip) is refused when the stream ends", async () => {
    const stream = concatBytes(new Uint8Array([0x1a, 0x45, 0xdf, 0xa3]), body);
    const { error, code, reason } = await refused(stream, true);
    expect(error.code).toBe("UNSUPPORTED_AUDIO");
    expect(String(error.description)).toMatch(/^WebM stream (truncated|ended before any Opus)/);
    expect(code).toBe(1008);
    expect(reason).toMatch(/^DATA-0000: WebM /);
  });

  it("an Ogg stream that ends inside its first page is refused when the stream ends", async () => {
    const { error, code, reason } = await refused(new TextEncoder().encode("OggS\x00"), true);
    expect(error.code).toBe("UNSUPPORTED_AUDIO");
    expect(String(error.description)).toMatch(/^Ogg stream truncated/);
    expect(code).toBe(1008);
    expect(reason).toMatch(/^DATA-0000: Ogg stream truncated/);
  });
});

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

describe("resume", () => {
  it("is refused 409 NOT_RESUMABLE for a container, naming it", async () => {
    const { pcm } = await wavFixture(CLIP);
    const file = wavFile({ tag: 1, channels: 1, sampleRate: 16_000, bits: 16, body: pcm });
    const client = await TestClient.open(`?${COMMON}&resumable=true`);
    for (const frame of frames(file, 15)) client.sendAudio(frame);
    await client.waitFor((m) => m.type === "Results", "a result");
    const response = await handshake(
      `?session_id=${client.sessionId}&resume_offset=0&finals_received=0`,
    );
    expect(response.status).toBe(409);
    const body = (await response.json()) as { err_code: string; err_msg: string };
    expect(body.err_code).toBe("NOT_RESUMABLE");
    expect(body.err_msg).toMatch(/WAV container, which cannot be resumed/);
    // The session itself goes on.
    const { closed } = await client.finish();
    expect(closed.code).toBe(1000);
  });

  it("acknowledges a raw stream under detection from its first frame", async () => {
    // The ack due on the first frame comes once that frame has been read (raw, not a container).
    const { pcm } = await wavFixture("wcpp_jfk.wav"); // 11 s: 352 000 bytes
    const client = await TestClient.open(`?${COMMON}&resumable=true`);
    for (const at of [0, 32_000, 64_000]) client.sendAudio(pcm.subarray(at, at + 32_000));
    await client.waitFor(
      (m) => m.type === "EarshotAck" && Number(m.audio_bytes) >= 96_000,
      "the ack of 96 000 bytes",
    );
    expect(client.of("EarshotAck").map((m) => m.audio_bytes)).toEqual([32_000, 64_000, 96_000]);
    await client.finish();
  });

  it("is not waited for when a container's connection drops: no acks, the slot freed at once", async () => {
    // A session that can never be resumed must not hold its slot for the resume window (3 s
    // here), nor acknowledge audio its client would then drop instead of sending it again.
    const account = await newAccountWithKey(1);
    const { pcm } = await wavFixture(CLIP);
    const file = wavFile({ tag: 1, channels: 1, sampleRate: 16_000, bits: 16, body: pcm });
    const client = await TestClient.open(`?${COMMON}&resumable=true`, { key: account.key });
    for (const frame of frames(file, 15)) client.sendAudio(frame);
    await client.waitFor((m) => m.type === "Results", "a result");
    client.socket.close(4000, "network lost");
    await client.waitClosed();
    const dropped = Date.now();
    await expectSlotReleased(account, client.sessionId);
    expect(Date.now() - dropped).toBeLessThan(2_000);
    expect(client.of("EarshotSession").length).toBe(1);
    expect(client.of("EarshotAck")).toEqual([]);
  });
});
