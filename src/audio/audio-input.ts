/**
 * The front of the ordered audio buffer: raw client bytes in, 16 kHz floats out, in order.
 * Offsets are byte counts of the client's stream (`bytesReceived`); a partial sample at the end of
 * a frame is carried to the next frame by the decoder, never dropped. The SHA-256 of every byte
 * received (Metadata's `sha256`) is computed as the stream goes, so nothing is kept for it: both
 * describe the bytes the client sent, container headers included.
 *
 * With `detectContainer` (the client named neither `encoding` nor `sample_rate`), the first bytes
 * decide the format (audio-format.ts): a WAV file's header is read and its body decoded at its own
 * rate and channel count; Ogg/Opus and WebM/Opus are demuxed (ogg-opus-demuxer.ts,
 * webm-opus-demuxer.ts) and decoded at 48 kHz (opus-decoder.ts), other codecs in them refused; any
 * other stream is raw linear16 at 16 kHz. With `encoding=ogg-opus` the stream must be Ogg, and is
 * read as under detection. A stream that cannot be decoded throws AudioFormatError once; after it
 * the input only counts and hashes what still arrives.
 *
 * Over the house's 300 lines: the stream's state (sniffing, WAV header, decoding, trailer,
 * Opus, failed) is one machine, and each state's bytes are handled beside the others.
 */

import {
  DEFAULT_ENCODING,
  DEFAULT_SAMPLE_RATE_HZ,
  type StreamEncoding,
} from "../protocol/option-schema";
import { TRANSCRIBER_SAMPLE_RATE } from "../stt/transcriber";
import {
  AudioFloodError,
  AudioFormatError,
  type Detected,
  REFUSED_FORMATS,
  SNIFF_BYTES,
  sniff,
  startsContainer,
} from "./audio-format";
import { OggOpusDemuxer, type OpusHead, parseOpusHead } from "./ogg-opus-demuxer";
import { OPUS_RATE, OpusStreamDecoder } from "./opus-decoder";
import { OpusPacketQueue } from "./opus-packet";
import { BYTES_PER_SAMPLE, PcmDecoder } from "./pcm-decoder";
import { MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, StreamingResampler } from "./resampler";
import { joinBytes, joinSamples } from "./samples";
import { parseWavHeader } from "./wav-header";
import { WebmOpusDemuxer } from "./webm-opus-demuxer";

/** What the input is doing with the stream. */
type State =
  /** Detection on: fewer than SNIFF_BYTES have arrived (held in #held). */
  | { kind: "sniffing" }
  /** A WAV file: its header is held in #held until the data chunk starts. */
  | { kind: "wav-header" }
  /**
   * Decoding samples; `remaining` data bytes (null: to the end of the stream); `pad`: a WAV data
   * chunk of odd size is followed by RIFF's pad byte.
   */
  | { kind: "decoding"; remaining: number | null; pad?: number }
  /**
   * A WAV data chunk of known size ended: what follows is trailing chunks, ignored. `pad`: the
   * chunk's size was odd, and RIFF's pad byte comes first (not part of what `seen` sniffs).
   */
  | { kind: "trailer"; seen: Uint8Array; pad: number }
  /**
   * Ogg/Opus or WebM/Opus: packets demuxed as bytes arrive, queued in `packets` (checked and
   * bounded by their duration) until the decoder (created once the stream's OpusHead is known)
   * decodes them.
   */
  | {
      kind: "opus";
      demuxer: OggOpusDemuxer | WebmOpusDemuxer;
      decoder: OpusStreamDecoder | null;
      packets: OpusPacketQueue;
    }
  /** The stream cannot be decoded (an AudioFormatError was thrown): count and hash only. */
  | { kind: "failed" };

export class AudioInput {
  /** Bytes per second of the negotiated raw format (the default's, 32 000, under detection). */
  readonly bytesPerSecond: number;
  #decoder: PcmDecoder;
  #resampler: StreamingResampler;
  #state: State;
  /** The container detected, or null (raw audio, or not decided yet). */
  #container: Exclude<Detected, "raw"> | null = null;
  /** The only container the stream may be (encoding=ogg-opus), or null. */
  readonly #only: "ogg" | null;
  /** Bytes held while sniffing or reading a WAV header (bounded by MAX_WAV_HEADER_BYTES). */
  #held: Uint8Array = new Uint8Array(0);
  /** Sample frames decoded from a container, at its own rate (for secondsReceived). */
  #containerFrames = 0;
  #bytesReceived = 0;
  #digest = new crypto.DigestStream("SHA-256");
  #writer = this.#digest.getWriter();

  constructor(
    readonly encoding: StreamEncoding,
    readonly sampleRate: number,
    readonly detectContainer = false,
  ) {
    this.#only = encoding === "ogg-opus" ? "ogg" : null;
    // Ogg Opus names its own rate: its queue cap is the default format's, as under detection.
    const pcm = encoding === "ogg-opus" ? DEFAULT_ENCODING : encoding;
    const rate = encoding === "ogg-opus" ? DEFAULT_SAMPLE_RATE_HZ : sampleRate;
    this.bytesPerSecond = rate * BYTES_PER_SAMPLE[pcm];
    this.#decoder = new PcmDecoder(pcm);
    this.#resampler = new StreamingResampler(rate, TRANSCRIBER_SAMPLE_RATE);
    this.#state =
      detectContainer || this.#only !== null
        ? { kind: "sniffing" }
        : { kind: "decoding", remaining: null };
  }

  /** Bytes of client audio accepted so far: the offset of the next byte. */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** The container the stream turned out to be, or null (raw, or not known yet). */
  get container(): Exclude<Detected, "raw"> | null {
    return this.#container;
  }

  /** Whether the format is settled (always, without detection). */
  get formatKnown(): boolean {
    return this.#state.kind !== "sniffing" && this.#state.kind !== "wav-header";
  }

  /** Seconds of client audio received. */
  get secondsReceived(): number {
    if (this.#container === "wav" || this.#container === "ogg" || this.#container === "webm")
      return this.#containerFrames / this.#resampler.inputRate;
    return this.#bytesReceived / this.bytesPerSecond;
  }

  /**
   * Accepts the next frame; returns its 16 kHz samples (possibly none yet). Throws
   * AudioFormatError once if the stream cannot be decoded.
   */
  async append(bytes: Uint8Array): Promise<Float32Array> {
    this.#bytesReceived += bytes.byteLength;
    // DigestStream consumes the chunk asynchronously: give it a copy we never touch again.
    await this.#writer.write(bytes.slice());
    try {
      let samples = this.#decode(bytes);
      if (this.#state.kind === "opus") samples = await this.#decodeOpus(this.#state);
      return this.#resampler.process(samples);
    } catch (error) {
      if (error instanceof AudioFormatError || error instanceof AudioFloodError) {
        this.close();
        this.#state = { kind: "failed" };
        this.#held = new Uint8Array(0);
      }
      throw error;
    }
  }

  /**
   * End of stream: the samples the resampler still holds. An Ogg or WebM stream that ended before
   * any Opus audio was decoded throws AudioFormatError (its bytes were never audio: say why); one
   * that decoded audio and was merely cut short at the end keeps what it had.
   */
  finish(): Float32Array {
    const state = this.#state;
    if (state.kind === "opus" && state.decoder === null) {
      this.#state = { kind: "failed" };
      state.demuxer.end(); // names the truncation, if that is what it was
      const what = this.#container === "ogg" ? "Ogg" : "WebM";
      throw new AudioFormatError(`${what} stream ended before any Opus audio`);
    }
    if (this.#state.kind === "sniffing" && this.#held.length > 0) {
      if (this.#only !== null) {
        this.#state = { kind: "failed" };
        throw new AudioFormatError("encoding=ogg-opus, but the stream ended before an Ogg page");
      }
      // A stream shorter than SNIFF_BYTES is raw: decode what there is.
      const held = this.#held;
      this.#held = new Uint8Array(0);
      this.#state = { kind: "decoding", remaining: null };
      return joinSamples(
        this.#resampler.process(this.#decoder.decode(held)),
        this.#resampler.flush(),
      );
    }
    return this.#resampler.flush();
  }

  /**
   * Frees what decoding holds outside the JS heap (an Opus decoder's wasm instance). Called once
   * the stream is done with, at the session's end or when it fails; idempotent.
   */
  close(): void {
    if (this.#state.kind === "opus") this.#state.decoder?.free();
  }

  /** SHA-256 (hex) of every byte received; ends the digest, so call once, at the end. */
  async sha256(): Promise<string> {
    await this.#writer.close();
    const digest = new Uint8Array(await this.#digest.digest);
    return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** The frame's samples at the source rate, mono. */
  #decode(bytes: Uint8Array): Float32Array {
    const state = this.#state;
    switch (state.kind) {
      case "failed":
        return EMPTY;
      case "decoding":
        return this.#decodeBody(state, bytes);
      case "opus":
        state.packets.add(state.demuxer.push(bytes));
        return EMPTY;
      case "trailer":
        return this.#trailer(state, bytes);
      case "sniffing":
      case "wav-header":
        return this.#readHeader(bytes);
    }
  }

  #readHeader(bytes: Uint8Array): Float32Array {
    const held = joinBytes(this.#held, bytes);
    if (this.#state.kind === "sniffing") {
      const kind = sniff(held);
      if (kind === null) {
        this.#held = held; // < SNIFF_BYTES, or an MP4 box size before its type
        return EMPTY;
      }
      if (this.#only !== null && kind !== this.#only) {
        const what = kind === "raw" ? "no container" : kind.toUpperCase();
        throw new AudioFormatError(`encoding=ogg-opus, but the stream is not Ogg (${what})`);
      }
      if (kind === "raw") {
        this.#held = new Uint8Array(0);
        this.#state = { kind: "decoding", remaining: null };
        return this.#decoder.decode(held);
      }
      this.#container = kind;
      if (kind === "ogg" || kind === "webm") {
        this.#held = new Uint8Array(0);
        const demuxer = kind === "ogg" ? new OggOpusDemuxer() : new WebmOpusDemuxer();
        this.#resampler = new StreamingResampler(OPUS_RATE, TRANSCRIBER_SAMPLE_RATE);
        const packets = new OpusPacketQueue();
        this.#state = { kind: "opus", demuxer, decoder: null, packets };
        packets.add(demuxer.push(held));
        return EMPTY;
      }
      const refused = REFUSED_FORMATS[kind];
      if (refused !== undefined) throw new AudioFormatError(refused);
      this.#state = { kind: "wav-header" };
    }
    const wav = parseWavHeader(held, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE);
    if (wav === null) {
      this.#held = held;
      return EMPTY;
    }
    this.#held = new Uint8Array(0);
    this.#decoder = new PcmDecoder(wav.sampleFormat, wav.channels);
    this.#resampler = new StreamingResampler(wav.sampleRate, TRANSCRIBER_SAMPLE_RATE);
    const pad = (wav.dataBytes ?? 0) % 2;
    const state: State = { kind: "decoding", remaining: wav.dataBytes, pad };
    this.#state = state;
    return this.#decodeBody(state, held.subarray(wav.dataOffset));
  }

  /** Decodes the queued Opus packets (creating the decoder once the OpusHead is known). */
  async #decodeOpus(state: Extract<State, { kind: "opus" }>): Promise<Float32Array> {
    if (state.packets.empty) return EMPTY;
    if (state.decoder === null) {
      const head = opusHead(state.demuxer);
      if (head === null) return EMPTY; // WebM blocks cannot precede their track; kept anyway
      state.decoder = await OpusStreamDecoder.create(head);
    }
    const samples = state.decoder.decode(state.packets.take());
    this.#containerFrames += samples.length;
    return samples;
  }

  #decodeBody(
    state: { kind: "decoding"; remaining: number | null; pad?: number },
    bytes: Uint8Array,
  ): Float32Array {
    let body = bytes;
    let after: Uint8Array | null = null;
    if (state.remaining !== null) {
      if (bytes.length >= state.remaining) {
        body = bytes.subarray(0, state.remaining);
        after = bytes.subarray(state.remaining);
      }
      state.remaining -= body.length;
    }
    const samples = this.#decoder.decode(body);
    if (this.#container !== null) this.#containerFrames += samples.length;
    if (after !== null) {
      const trailer: State = { kind: "trailer", seen: new Uint8Array(0), pad: state.pad ?? 0 };
      this.#state = trailer;
      this.#trailer(trailer, after);
    }
    return samples;
  }

  /**
   * Bytes after a WAV data chunk of known size: trailing chunks (LIST, id3) are ignored, but a new
   * container starting there (a second file sent on the same socket) is a format change, refused
   * rather than read as the first file's metadata.
   */
  #trailer(
    state: { kind: "trailer"; seen: Uint8Array; pad: number },
    bytes: Uint8Array,
  ): Float32Array {
    const skip = Math.min(state.pad, bytes.length);
    state.pad -= skip;
    const rest = bytes.subarray(skip);
    if (state.seen.length < SNIFF_BYTES && rest.length > 0) {
      state.seen = joinBytes(state.seen, rest.subarray(0, SNIFF_BYTES - state.seen.length));
      if (startsContainer(state.seen)) {
        throw new AudioFormatError(
          "a new container started after the WAV data ended; open one session per file",
        );
      }
    }
    return EMPTY;
  }
}

const EMPTY = new Float32Array(0);

/** The stream's OpusHead: Ogg's first packet, or WebM's CodecPrivate (null until known). */
function opusHead(demuxer: OggOpusDemuxer | WebmOpusDemuxer): OpusHead | null {
  if (demuxer instanceof OggOpusDemuxer) return demuxer.head;
  const track = demuxer.track;
  if (track === null) return null;
  if (track.codecPrivate !== null) return parseOpusHead(track.codecPrivate);
  // Matroska allows Opus without CodecPrivate only in theory; assume its declared channels.
  return { channels: track.channels ?? 1, preSkip: 0, inputRate: OPUS_RATE, mappingFamily: 0 };
}
