/**
 * Ogg (RFC 3533) pages in, Opus packets (RFC 7845) out, one WebSocket frame at a time: a frame
 * may end anywhere, inside a page header or a packet, so bytes are held until a page is whole.
 *
 * Written here rather than taken from npm: the maintained Ogg parser checked, codec-parser 2.5.0
 * (what ogg-opus-decoder uses), is LGPL-3.0-or-later, whose terms would follow it into the
 * bundled Worker, and reads no WebM, which needs a parser of its own anyway; a wider search of
 * npm was not done. A page is a 27-byte header, a lacing table and a CRC: ~150 lines with checks.
 *
 * The session feeds its packets to opus-decoder.ts (audio-input.ts). Every malformed input
 * throws AudioFormatError naming what was wrong.
 */
import { AudioFormatError } from "./audio-format";
import { joinBytes } from "./samples";

/**
 * Largest legal Ogg page: 27-byte header + 255 lacing values + 255 segments × 255 bytes =
 * 65 307 bytes. Bytes are held only until the page they belong to is whole, so the demuxer
 * holds at most one page less a byte, plus the frame being read.
 */
export const MAX_OGG_PAGE_BYTES = 27 + 255 + 255 * 255;

/**
 * Largest Opus packet accepted, assembled across pages: 64 KiB. RFC 6716 §3.2.5 allows 120 ms of
 * frames of at most 1 275 bytes: 48 frames of 2.5 ms × 1 275 = 61 200 bytes plus a few bytes of
 * framing. A longer packet is not Opus: AudioFormatError. (OpusTags, which may carry cover art,
 * is skipped without being held.)
 */
export const MAX_OPUS_PACKET_BYTES = 64 * 1024;

export interface OpusHead {
  channels: number;
  /** Samples at 48 kHz to drop from the decoder's output start (RFC 7845 §4.2). */
  preSkip: number;
  /** The original input rate (informational; Opus always decodes at 8–48 kHz as asked). */
  inputRate: number;
  mappingFamily: number;
}

const CONTINUED = 0x01;
const BOS = 0x02;
const EOS = 0x04;

/** CRC-32 of Ogg: polynomial 0x04C11DB7, no reflection, initial 0, no final XOR. */
const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

export function oggCrc(page: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < page.length; i++) {
    // The CRC field itself (bytes 22..25) counts as zeros.
    const byte = i >= 22 && i < 26 ? 0 : (page[i] ?? 0);
    crc = ((crc << 8) ^ (CRC_TABLE[((crc >>> 24) ^ byte) & 0xff] ?? 0)) >>> 0;
  }
  return crc;
}

export class OggOpusDemuxer {
  #held: Uint8Array = new Uint8Array(0);
  #serial: number | null = null;
  #nextSequence = 0;
  #ended = false;
  #head: OpusHead | null = null;
  /** Packets completed so far (0: OpusHead, 1: OpusTags, then audio). */
  #packets = 0;
  /** The packet being assembled across segments and pages. */
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  /** Bytes of the stream consumed by whole pages (for messages). */
  #offset = 0;

  get head(): OpusHead | null {
    return this.#head;
  }

  /** Bytes held while waiting for the rest of a page. */
  get heldBytes(): number {
    return this.#held.length;
  }

  /** Takes the next bytes of the stream; returns the audio packets completed by them. */
  push(bytes: Uint8Array): Uint8Array[] {
    let buffer = joinBytes(this.#held, bytes);
    const packets: Uint8Array[] = [];
    for (;;) {
      const size = pageSize(buffer);
      if (size === null || size > buffer.length) break;
      this.#page(buffer.subarray(0, size), packets);
      this.#offset += size;
      buffer = buffer.subarray(size);
    }
    // A copy, so the caller's frame is not kept alive (nor changed under us).
    this.#held = buffer.slice();
    return packets;
  }

  /** End of stream: a page or packet cut short is a truncated file. */
  end(): void {
    if (this.#held.length > 0) {
      throw new AudioFormatError(
        `Ogg stream truncated: ${this.#held.length} bytes of an unfinished page at the end`,
      );
    }
    if (this.#partBytes > 0) throw new AudioFormatError("Ogg stream truncated inside a packet");
  }

  #page(page: Uint8Array, packets: Uint8Array[]): void {
    const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
    const flags = page[5] ?? 0;
    const serial = view.getUint32(14, true);
    const sequence = view.getUint32(18, true);
    if (view.getUint32(22, true) !== oggCrc(page)) {
      throw new AudioFormatError(`Ogg page at byte ${this.#offset} is corrupt (CRC mismatch)`);
    }
    if (this.#ended) {
      throw new AudioFormatError(
        "a new Ogg stream started after the first ended; open one session per stream",
      );
    }
    if (this.#serial === null) {
      if (!(flags & BOS)) throw new AudioFormatError("Ogg stream does not start with a first page");
      this.#serial = serial;
    } else if (serial !== this.#serial) {
      throw new AudioFormatError(
        "Ogg stream with more than one logical stream (multiplexed or chained) is not supported",
      );
    }
    if (sequence !== this.#nextSequence) {
      throw new AudioFormatError(
        `Ogg page ${sequence} arrived where page ${this.#nextSequence} was due (lost or reordered)`,
      );
    }
    this.#nextSequence = sequence + 1;
    if (Boolean(flags & CONTINUED) !== this.#partBytes > 0 && this.#packets > 0) {
      throw new AudioFormatError(`Ogg page ${sequence} breaks packet continuity`);
    }
    const segments = page[26] ?? 0;
    let at = 27 + segments;
    for (let i = 0; i < segments; i++) {
      const lacing = page[27 + i] ?? 0;
      this.#addPart(page.subarray(at, at + lacing));
      at += lacing;
      if (lacing < 255) this.#completePacket(packets);
    }
    if (flags & EOS) this.#ended = true;
  }

  #addPart(part: Uint8Array): void {
    // OpusTags (packet 1) is skipped as it streams past: it may carry megabytes of cover art.
    this.#partBytes += part.length;
    if (this.#packets === 1) return;
    if (this.#partBytes > MAX_OPUS_PACKET_BYTES) {
      throw new AudioFormatError(
        `Ogg packet over ${MAX_OPUS_PACKET_BYTES} bytes: not an Opus packet (RFC 6716 caps them near 61 KB)`,
      );
    }
    // A copy: a view would keep the client's whole frame (up to 256 KiB) alive for a few bytes,
    // and a packet spanning many frames would keep them all.
    this.#parts.push(part.slice());
  }

  #completePacket(packets: Uint8Array[]): void {
    // The parts are copies already (#addPart): the packet is the demuxer's own, whatever joins it.
    const packet = joinBytes(...this.#parts);
    this.#parts = [];
    this.#partBytes = 0;
    const index = this.#packets++;
    if (index === 0) this.#head = parseOpusHead(packet);
    else if (index === 1) return;
    else packets.push(packet);
  }
}

/** The whole page's size once its header and lacing table are held, else null. */
function pageSize(buffer: Uint8Array): number | null {
  if (buffer.length < 4) return null;
  if (buffer[0] !== 0x4f || buffer[1] !== 0x67 || buffer[2] !== 0x67 || buffer[3] !== 0x53) {
    throw new AudioFormatError("Ogg stream corrupt: a page does not start with OggS");
  }
  if (buffer.length < 27) return null;
  if (buffer[4] !== 0) throw new AudioFormatError(`Ogg page version ${buffer[4]} is unknown`);
  const segments = buffer[26] ?? 0;
  if (buffer.length < 27 + segments) return null;
  let body = 0;
  for (let i = 0; i < segments; i++) body += buffer[27 + i] ?? 0;
  return 27 + segments + body;
}

export function parseOpusHead(packet: Uint8Array): OpusHead {
  const magic = String.fromCharCode(...packet.subarray(0, 8));
  if (magic !== "OpusHead") {
    const codec = packet.subarray(1, 7).every((b, i) => b === "vorbis".charCodeAt(i))
      ? "Vorbis"
      : magic.startsWith("\x7fFLAC")
        ? "FLAC"
        : magic.startsWith("Speex")
          ? "Speex"
          : "an unknown codec";
    throw new AudioFormatError(`Ogg stream carries ${codec}; only Opus is supported`);
  }
  if (packet.length < 19) throw new AudioFormatError("OpusHead is too short");
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const version = packet[8] ?? 0;
  if (version >> 4 !== 0) throw new AudioFormatError(`OpusHead version ${version} is unknown`);
  const head: OpusHead = {
    channels: packet[9] ?? 0,
    preSkip: view.getUint16(10, true),
    inputRate: view.getUint32(12, true),
    mappingFamily: packet[18] ?? 0,
  };
  if (head.channels < 1) throw new AudioFormatError("OpusHead declares no channels");
  if (head.mappingFamily !== 0 && head.mappingFamily !== 1) {
    throw new AudioFormatError(
      `Opus channel mapping family ${head.mappingFamily} is not supported`,
    );
  }
  return head;
}
