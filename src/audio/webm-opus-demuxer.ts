/**
 * WebM/Matroska in, the Opus packets of its first audio track out, one WebSocket frame at a time,
 * as MediaRecorder (`audio/webm`) writes it: a Segment and Clusters of unknown size (it streams),
 * SimpleBlocks without lacing, and blobs that cut through any element.
 *
 * Written here (~15 element IDs read in one pass; no npm WebM parser was evaluated). The session
 * feeds its packets to opus-decoder.ts (audio-input.ts).
 *
 * The stream is read flat: every element's header is read; the masters that matter (Segment,
 * Tracks, TrackEntry, Cluster, BlockGroup) are entered, their children read in turn (so an
 * unknown size needs no end: the next Cluster simply follows); the leaves that matter are held
 * whole and read; everything else is skipped without being held. Every malformed input throws
 * AudioFormatError naming what was wrong. Just over the house's 300 lines: one parser, its EBML
 * reading and its checks together.
 */
import { AudioFormatError } from "./audio-format";
import { MAX_OPUS_PACKET_BYTES } from "./ogg-opus-demuxer";
import { joinBytes } from "./samples";

/**
 * Largest element held whole: a block is a track number (≤ 8 bytes), a 2-byte timecode, a flags
 * byte and the packet (≤ MAX_OPUS_PACKET_BYTES), so 64 KiB + 11; header elements (CodecPrivate:
 * an OpusHead of 19+ bytes) are far smaller. A larger element that must be held is refused
 * (AudioFormatError); larger elements that are skipped (video frames, attachments) are not held.
 */
export const MAX_WEBM_HELD_ELEMENT_BYTES = MAX_OPUS_PACKET_BYTES + 11;

/** TrackEntries read at most (MediaRecorder writes one or two). Each is kept for the session's
 * life and an empty one is 2 bytes: uncapped, a client's bytes were kept ~40 times over. */
export const MAX_WEBM_TRACKS = 16;

const ID = {
  EBML: 0x1a45dfa3,
  DocType: 0x4282,
  Segment: 0x18538067,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackType: 0x83,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  Audio: 0xe1,
  SamplingFrequency: 0xb5,
  Channels: 0x9f,
  Cluster: 0x1f43b675,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
} as const;

/** Masters whose children are read in turn. EBML's header children are leaves we read too. */
const ENTERED = new Set<number>([
  ID.EBML,
  ID.Segment,
  ID.Tracks,
  ID.TrackEntry,
  ID.Audio,
  ID.Cluster,
  ID.BlockGroup,
]);
/** Leaves read whole. */
const HELD = new Set<number>([
  ID.DocType,
  ID.TrackNumber,
  ID.TrackType,
  ID.CodecID,
  ID.CodecPrivate,
  ID.SamplingFrequency,
  ID.Channels,
  ID.SimpleBlock,
  ID.Block,
]);
/** Masters that may have an unknown size (Matroska: only these two, when live-streamed). */
const MAY_BE_UNKNOWN = new Set<number>([ID.Segment, ID.Cluster]);
const AUDIO_TRACK = 2;

export interface WebmTrack {
  number: number;
  type: number;
  codec: string;
  codecPrivate: Uint8Array | null;
  sampleRate: number | null;
  channels: number | null;
}

export class WebmOpusDemuxer {
  #held: Uint8Array = new Uint8Array(0);
  /** Bytes of a skipped element still to pass over. */
  #skip = 0;
  #headerSeen = false;
  #tracks: WebmTrack[] = [];
  #audio: WebmTrack | null = null;
  /** Stream offset of the first byte in #held (for messages). */
  #offset = 0;

  /** The Opus track, once the first Cluster has started. */
  get track(): WebmTrack | null {
    return this.#audio;
  }

  get heldBytes(): number {
    return this.#held.length;
  }

  /** Takes the next bytes; returns the Opus packets of the audio track that they complete. */
  push(bytes: Uint8Array): Uint8Array[] {
    let input = bytes;
    if (this.#skip > 0) {
      const n = Math.min(this.#skip, input.length);
      this.#skip -= n;
      this.#offset += n;
      input = input.subarray(n);
    }
    let buffer = joinBytes(this.#held, input);
    const packets: Uint8Array[] = [];
    for (;;) {
      const header = readHeader(buffer);
      if (header === null) break;
      const { id, size, length } = header;
      if (!this.#headerSeen && id !== ID.EBML) {
        throw new AudioFormatError("WebM stream does not start with an EBML header");
      }
      if (id === ID.EBML && this.#headerSeen) {
        throw new AudioFormatError(
          "a new WebM stream started mid-stream (the recorder restarted?); open one session per recording",
        );
      }
      if (ENTERED.has(id)) {
        if (size === null && !MAY_BE_UNKNOWN.has(id)) {
          throw new AudioFormatError(`WebM element 0x${id.toString(16)} has an unknown size`);
        }
        if (id === ID.EBML) this.#headerSeen = true;
        if (id === ID.TrackEntry && this.#tracks.length === MAX_WEBM_TRACKS) {
          throw new AudioFormatError(`WebM stream declares more than ${MAX_WEBM_TRACKS} tracks`);
        }
        if (id === ID.TrackEntry) this.#tracks.push(newTrack());
        if (id === ID.Cluster) this.#chooseTrack();
        buffer = this.#consume(buffer, length);
        continue;
      }
      if (size === null) {
        throw new AudioFormatError(`WebM element 0x${id.toString(16)} has an unknown size`);
      }
      const track = this.#blockTrack(id, buffer, length);
      if (!HELD.has(id) || track === "other") {
        // Skipped: pass over what is here, remember the rest.
        const available = buffer.length - length;
        if (size > available) {
          this.#skip = size - available;
          this.#offset += buffer.length;
          buffer = new Uint8Array(0);
          break;
        }
        buffer = this.#consume(buffer, length + size);
        continue;
      }
      if (size > MAX_WEBM_HELD_ELEMENT_BYTES) {
        if (track === "unread") break; // it may be another track's: wait for its track number
        throw new AudioFormatError(
          `WebM element 0x${id.toString(16)} of ${size} bytes at byte ${this.#offset} is over ${MAX_WEBM_HELD_ELEMENT_BYTES}`,
        );
      }
      if (buffer.length < length + size) break;
      this.#leaf(id, buffer.subarray(length, length + size), packets);
      buffer = this.#consume(buffer, length + size);
    }
    this.#held = buffer.slice();
    return packets;
  }

  /**
   * For a block (once the audio track is known), whose track it is, read from its track number
   * (the body's first bytes, at most 8) before the body is held: another track's frame (video)
   * may be far larger than MAX_WEBM_HELD_ELEMENT_BYTES and is skipped, never held. "unread": its
   * track number has not arrived yet. Null for any other element.
   */
  #blockTrack(
    id: number,
    buffer: Uint8Array,
    headerLength: number,
  ): "audio" | "other" | "unread" | null {
    if ((id !== ID.SimpleBlock && id !== ID.Block) || this.#audio === null) return null;
    const track = readVint(buffer, headerLength, false);
    if (track === null) return "unread";
    return track.value === this.#audio.number ? "audio" : "other";
  }

  /** End of stream: an element cut short is a truncated file. */
  end(): void {
    if (this.#held.length > 0 || this.#skip > 0) {
      throw new AudioFormatError("WebM stream truncated inside an element");
    }
  }

  #consume(buffer: Uint8Array, n: number): Uint8Array {
    this.#offset += n;
    return buffer.subarray(n);
  }

  #leaf(id: number, body: Uint8Array, packets: Uint8Array[]): void {
    const track = this.#tracks.at(-1);
    switch (id) {
      case ID.DocType: {
        const docType = ascii(body);
        if (docType !== "webm" && docType !== "matroska") {
          throw new AudioFormatError(`EBML document type "${docType}" is not WebM or Matroska`);
        }
        return;
      }
      case ID.SimpleBlock:
      case ID.Block: {
        const packet = this.#block(body, id === ID.SimpleBlock);
        if (packet !== null) packets.push(packet);
        return;
      }
    }
    if (track === undefined) return; // a track field outside a TrackEntry: not ours
    if (id === ID.TrackNumber) track.number = uint(body);
    else if (id === ID.TrackType) track.type = uint(body);
    else if (id === ID.CodecID) track.codec = ascii(body);
    else if (id === ID.CodecPrivate) track.codecPrivate = body.slice();
    else if (id === ID.Channels) track.channels = uint(body);
    else if (id === ID.SamplingFrequency) track.sampleRate = float(body);
  }

  /** At the first Cluster: the first audio track must be Opus. */
  #chooseTrack(): void {
    if (this.#audio !== null) return;
    const audio = this.#tracks.find((t) => t.type === AUDIO_TRACK);
    if (audio === undefined) throw new AudioFormatError("WebM stream has no audio track");
    if (audio.codec !== "A_OPUS") {
      const name = audio.codec === "A_VORBIS" ? "Vorbis" : `codec ${audio.codec || "(none)"}`;
      throw new AudioFormatError(`WebM audio track carries ${name}; only Opus is supported`);
    }
    this.#audio = audio;
  }

  #block(body: Uint8Array, simple: boolean): Uint8Array | null {
    if (this.#audio === null) throw new AudioFormatError("WebM block before the first Cluster");
    const track = readVint(body, 0, false);
    if (track === null || track.value === null) throw new AudioFormatError("WebM block is corrupt");
    if (track.value !== this.#audio.number) return null; // another track (video)
    const flags = body[track.length + 2];
    if (flags === undefined) throw new AudioFormatError("WebM block is too short");
    if (flags & 0x06) {
      throw new AudioFormatError(
        `WebM ${simple ? "SimpleBlock" : "Block"} uses lacing, which Earshot does not read (MediaRecorder never writes it)`,
      );
    }
    return body.slice(track.length + 3);
  }
}

function newTrack(): WebmTrack {
  return { number: 0, type: 0, codec: "", codecPrivate: null, sampleRate: null, channels: null };
}

interface Header {
  id: number;
  /** null: unknown size (all value bits set). */
  size: number | null;
  /** Bytes of ID and size together. */
  length: number;
}

/** An element header at the start of `buffer`, or null until it is all there. */
function readHeader(buffer: Uint8Array): Header | null {
  const id = readVint(buffer, 0, true);
  if (id === null) return null;
  if (id.length > 4) throw new AudioFormatError("WebM stream corrupt: an element ID over 4 bytes");
  const size = readVint(buffer, id.length, false);
  if (size === null) return null;
  return { id: id.value ?? 0, size: size.value, length: id.length + size.length };
}

/**
 * An EBML variable-length integer at `at`: its length is 1 + the leading zero bits of its first
 * byte. IDs keep the marker bit; sizes drop it, and all ones means "unknown". Null until whole.
 */
function readVint(
  buffer: Uint8Array,
  at: number,
  keepMarker: boolean,
): { value: number | null; length: number } | null {
  const first = buffer[at];
  if (first === undefined) return null;
  if (first === 0) throw new AudioFormatError("WebM stream corrupt: an invalid EBML number");
  const length = Math.clz32(first) - 23;
  if (buffer.length < at + length) return null;
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const byte = buffer[at + i] ?? 0;
    value = value * 256 + byte;
    allOnes &&= byte === 0xff;
  }
  if (!keepMarker && allOnes) return { value: null, length };
  if (value > Number.MAX_SAFE_INTEGER) throw new AudioFormatError("WebM element size is too large");
  return { value, length };
}

function uint(body: Uint8Array): number {
  let value = 0;
  for (const byte of body) value = value * 256 + byte;
  return value;
}

function float(body: Uint8Array): number {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (body.length === 4) return view.getFloat32(0);
  if (body.length === 8) return view.getFloat64(0);
  throw new AudioFormatError(`WebM float of ${body.length} bytes`);
}

function ascii(body: Uint8Array): string {
  // Matroska strings may be zero-padded.
  let end = body.length;
  while (end > 0 && body[end - 1] === 0) end--;
  return String.fromCharCode(...body.subarray(0, end));
}
