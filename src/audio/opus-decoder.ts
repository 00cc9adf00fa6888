/**
 * Opus packets in (from the Ogg or WebM demuxer), mono 48 kHz floats out: libopus through the
 * `opus-decoder` package, one decoder (and its own small wasm instance and heap) per session.
 *
 * workerd never compiles WebAssembly from bytes, and the package would compile its embedded wasm
 * string at run time. Instead tools/models/opus-wasm.ts extracts that wasm at build time to
 * src/generated/opus.wasm, which wrangler's CompiledWasm rule imports here as an already compiled
 * `WebAssembly.Module` (shared by every session in the isolate); the package reads it from the
 * static `OpusDecoder.module` and then only instantiates it.
 *
 * Decoding is at 48 kHz, Opus's own rate; the session's resampler takes it to 16 kHz like any
 * other source rate. Stereo is averaged to mono. The OpusHead's pre-skip (encoder delay) is
 * dropped by the package.
 */
import { OpusDecoder } from "opus-decoder";
import opusWasm from "../generated/opus.wasm";
import { AudioFormatError } from "./audio-format";
import type { OpusHead } from "./ogg-opus-demuxer";

/** Opus always decodes at 48 kHz here. */
export const OPUS_RATE = 48_000;

/**
 * Largest packet the decoder takes, per channel: 3 840 bytes, the package's input buffer (sized
 * for 256 kbit/s per channel over Opus's longest packet, 120 ms; libopus encoders stay under it:
 * 510 kbit/s stereo). A larger one would not fit the buffer (a RangeError, not a decode error):
 * it is refused as undecodable before it is copied.
 */
export const MAX_PACKET_BYTES_PER_CHANNEL = 3_840;

/** What the package reads and does not declare in its types. */
interface OpusDecoderStatics {
  module?: WebAssembly.Module;
}
(OpusDecoder as unknown as OpusDecoderStatics).module = opusWasm;

/** The package's decoder state that these numbers come from (not in its types). */
interface DecoderInternals {
  _common?: { wasm?: { HEAP?: ArrayBuffer } };
}

/**
 * The decoders alive in this isolate (created, not yet freed), so their heaps count in what the
 * isolate reports it carries (GET /admin/isolate). Sessions free theirs when they end.
 */
const live = new Set<OpusStreamDecoder>();

/** Opus decoders alive in this isolate and their wasm heaps' total bytes. */
export function opusDecoderMemory(): { decoders: number; heapBytes: number } {
  let heapBytes = 0;
  for (const decoder of live) heapBytes += decoder.heapBytes;
  return { decoders: live.size, heapBytes };
}

export class OpusStreamDecoder {
  #decoder: OpusDecoder<48000>;
  #channels: number;

  private constructor(decoder: OpusDecoder<48000>, channels: number) {
    this.#decoder = decoder;
    this.#channels = channels;
  }

  /** A decoder for the stream the head describes, ready to decode (its wasm instantiated). */
  static async create(head: OpusHead): Promise<OpusStreamDecoder> {
    if (head.channels < 1 || head.channels > 2) {
      throw new AudioFormatError(
        `Opus with ${head.channels} channels is not supported; send mono or stereo`,
      );
    }
    const decoder = new OpusDecoder({
      sampleRate: OPUS_RATE,
      channels: head.channels,
      preSkip: head.preSkip,
    });
    await decoder.ready;
    const created = new OpusStreamDecoder(decoder, head.channels);
    live.add(created);
    return created;
  }

  /** Bytes of this decoder's wasm heap (its memory, which is per session). */
  get heapBytes(): number {
    return (this.#decoder as unknown as DecoderInternals)._common?.wasm?.HEAP?.byteLength ?? 0;
  }

  /** The packets' audio, mono at 48 kHz, in order. Throws AudioFormatError on a corrupt packet. */
  decode(packets: readonly Uint8Array[]): Float32Array {
    if (packets.length === 0) return EMPTY;
    const maxBytes = MAX_PACKET_BYTES_PER_CHANNEL * this.#channels;
    const large = packets.find((packet) => packet.byteLength > maxBytes);
    if (large !== undefined) {
      throw new AudioFormatError(
        `Opus packet of ${large.byteLength} bytes is over ${maxBytes} (${MAX_PACKET_BYTES_PER_CHANNEL} per channel): not what an encoder writes`,
      );
    }
    const out = this.#decoder.decodeFrames([...packets]);
    const first = out.errors[0];
    if (first !== undefined) {
      throw new AudioFormatError(`Opus packet could not be decoded: ${first.message}`);
    }
    const left = out.channelData[0];
    if (left === undefined || out.samplesDecoded === 0) return EMPTY;
    const right = this.#channels === 2 ? out.channelData[1] : undefined;
    if (right === undefined) return left.subarray(0, out.samplesDecoded);
    const mono = new Float32Array(out.samplesDecoded);
    for (let i = 0; i < mono.length; i++) mono[i] = ((left[i] ?? 0) + (right[i] ?? 0)) / 2;
    return mono;
  }

  /**
   * Frees the decoder's state inside its wasm heap (the heap itself goes with the instance) and
   * stops counting it. Idempotent.
   */
  free(): void {
    if (!live.delete(this)) return;
    this.#decoder.free();
  }
}

const EMPTY = new Float32Array(0);
