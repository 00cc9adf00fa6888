/**
 * How much audio an Opus packet holds, read from its first bytes without decoding it (RFC 6716
 * §3.1–3.2): the TOC byte's configuration gives the frame duration, its last two bits how many
 * frames the packet carries (one, two, or a count byte for code 3). The session checks this before
 * decoding (audio-input.ts), because libopus decodes what a packet declares, not what it carries:
 * an empty packet is a lost one, concealed with 120 ms of audio, and a 2-byte code-3 packet of
 * zero-length frames is 120 ms as well. Without the check a few kilobytes of Ogg or WebM decoded
 * to minutes of audio at once and over 100 MB of floats — the whole isolate's memory.
 */
import { MAX_QUEUED_AUDIO_SECONDS } from "../session/caps";
import { AudioFloodError, AudioFormatError } from "./audio-format";

/** Packet durations are counted at Opus's own rate. */
const RATE = 48_000;

/**
 * Opus audio waiting to be decoded, at most: MAX_QUEUED_AUDIO_SECONDS (20 s), what a session lets
 * any client queue. Packets are decoded at each frame once the decoder exists, so this bounds the
 * audio one frame may carry (PCM's bound is its bytes: a 256-KiB frame is at most 8.2 s of 16-kHz
 * linear16), and what waits for a decoder. Opus packs up to 120 ms into two bytes, so the byte
 * caps alone let 3 KB decode to 300 s (115 MB of floats). At the cap: AudioFloodError (closed
 * 1008 BUF-0000, as any flood); nothing of the frame is decoded.
 */
export const MAX_QUEUED_SAMPLES = MAX_QUEUED_AUDIO_SECONDS * RATE;

/** 120 ms at 48 kHz: the most one packet may hold (RFC 6716 §3.2.5, R5). */
export const MAX_PACKET_SAMPLES = 5_760;

/** Frame duration in 48 kHz samples for each of the 32 TOC configurations (RFC 6716 table 2). */
const FRAME_SAMPLES: readonly number[] = [
  // SILK-only, NB / MB / WB: 10, 20, 40, 60 ms
  ...[0, 1, 2].flatMap(() => [480, 960, 1920, 2880]),
  // Hybrid, SWB / FB: 10, 20 ms
  ...[0, 1].flatMap(() => [480, 960]),
  // CELT-only, NB / WB / SWB / FB: 2.5, 5, 10, 20 ms
  ...[0, 1, 2, 3].flatMap(() => [120, 240, 480, 960]),
];

/**
 * The packet's duration in 48 kHz samples. Throws AudioFormatError for what RFC 6716 §3.4 says is
 * not a packet: an empty one (R1), a code-3 packet without its count byte (R6) or declaring no
 * frames or more than 120 ms (R5). What else may be malformed inside is left to libopus.
 */
export function opusPacketSamples(packet: Uint8Array): number {
  const toc = packet[0];
  if (toc === undefined) {
    throw new AudioFormatError("empty Opus packet: RFC 6716 requires at least one byte (its TOC)");
  }
  const frame = FRAME_SAMPLES[toc >> 3] ?? 0;
  const code = toc & 0x03;
  if (code === 0) return frame;
  if (code < 3) return 2 * frame;
  const count = packet[1];
  if (count === undefined) throw new AudioFormatError("Opus code-3 packet without its frame count");
  const frames = count & 0x3f;
  if (frames === 0 || frames * frame > MAX_PACKET_SAMPLES) {
    throw new AudioFormatError(
      `Opus packet declares ${frames} frames of ${frame / 48} ms: RFC 6716 allows 1 to 120 ms`,
    );
  }
  return frames * frame;
}

/** Demuxed packets waiting for the decoder, each checked and timed as it comes. */
export class OpusPacketQueue {
  #packets: Uint8Array[] = [];
  #samples = 0;

  get empty(): boolean {
    return this.#packets.length === 0;
  }

  /** Queues packets in order; throws as `opusPacketSamples` does, or AudioFloodError past the cap. */
  add(packets: readonly Uint8Array[]): void {
    for (const packet of packets) {
      this.#samples += opusPacketSamples(packet);
      this.#packets.push(packet);
    }
    if (this.#samples > MAX_QUEUED_SAMPLES) {
      throw new AudioFloodError(
        `${(this.#samples / RATE).toFixed(1)} s of Opus audio arrived at once, more than ` +
          `${MAX_QUEUED_AUDIO_SECONDS} s; send Opus in frames of less audio (20-250 ms is usual)`,
      );
    }
  }

  /** Every queued packet, in order; the queue is empty after. */
  take(): Uint8Array[] {
    const packets = this.#packets;
    this.#packets = [];
    this.#samples = 0;
    return packets;
  }
}
