/**
 * Wire audio bytes to float samples in [-1, 1], one WebSocket frame at a time.
 *
 * A client may split its byte stream anywhere, including in the middle of a sample (the protocol
 * only promises an ordered byte stream), so the decoder carries an incomplete trailing sample
 * frame (up to bytesPerFrame − 1 bytes: 1 for linear16 mono, 3 for linear32 mono, 7 for a stereo
 * float WAV) into the next frame instead of dropping it: decoding a stream in any chunking yields
 * the same samples as decoding it whole. Interleaved multi-channel input (WAV only: the `channels`
 * option is 1) is downmixed to mono by averaging the channels of each sample frame.
 */

import type { Encoding } from "../protocol/option-schema";

export type { Encoding };

/**
 * How one sample is stored. The raw encodings are Deepgram's names (developers.deepgram.com/docs/
 * encoding: "linear32: 32-bit, little endian, floating-point PCM"); a WAV body uses the same four.
 */
export type SampleFormat = "linear16" | "linear32" | "mulaw" | "alaw";

export const BYTES_PER_SAMPLE: Record<SampleFormat, number> = {
  linear16: 2,
  linear32: 4,
  mulaw: 1,
  alaw: 1,
};

/** Full scale of a signed 16-bit sample: -32768 maps to -1, 32767 to 32767/32768. */
const PCM16_FULL_SCALE = 32_768;

/**
 * G.711 µ-law code → 16-bit linear sample, for all 256 codes (256 × 2 bytes = 512 bytes, built once
 * per isolate). G.711 transmits the code with every bit inverted; the inverted byte holds a sign
 * bit, a 3-bit segment (exponent) and a 4-bit step within the segment. The magnitude is
 * ((step × 2 + 33) × 2^segment − 33) in G.711's 14-bit units, scaled by 4 to 16 bits, which
 * reaches 8031 × 4 = 32 124 at most.
 */
const MULAW_TO_PCM16: Int16Array = (() => {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) {
    const inverted = ~code & 0xff;
    const segment = (inverted >> 4) & 0x07;
    const step = inverted & 0x0f;
    const magnitude = (((step << 3) + 0x84) << segment) - 0x84;
    table[code] = inverted & 0x80 ? -magnitude : magnitude;
  }
  return table;
})();

/**
 * G.711 A-law code → 16-bit linear sample, for all 256 codes (512 bytes, built once per isolate).
 * A-law transmits the code with its even bits inverted (XOR 0x55); the result holds a sign bit
 * (1 = positive, unlike µ-law), a 3-bit segment and a 4-bit step. In 13-bit units segment 0 is
 * linear (step × 2 + 1) and segment s ≥ 1 is (step × 2 + 33) × 2^(s−1); scaled by 8 to 16 bits,
 * which reaches 4032 × 8 = 32 256 at most.
 */
const ALAW_TO_PCM16: Int16Array = (() => {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) {
    const toggled = code ^ 0x55;
    const segment = (toggled >> 4) & 0x07;
    const step = toggled & 0x0f;
    const magnitude = segment === 0 ? (step << 4) + 8 : ((step << 4) + 0x108) << (segment - 1);
    table[code] = toggled & 0x80 ? magnitude : -magnitude;
  }
  return table;
})();

export class PcmDecoder {
  readonly format: SampleFormat;
  readonly channels: number;
  /** Bytes of one sample frame: one sample of every channel. */
  readonly bytesPerFrame: number;
  /** The start of a sample frame whose remaining bytes have not arrived yet. */
  readonly #carry: Uint8Array;
  #carried = 0;

  constructor(format: SampleFormat, channels = 1) {
    if (!(format in BYTES_PER_SAMPLE)) {
      throw new RangeError(`unsupported encoding ${String(format)}`);
    }
    if (!Number.isInteger(channels) || channels < 1) {
      throw new RangeError(`channels must be a positive integer, got ${channels}`);
    }
    this.format = format;
    this.channels = channels;
    this.bytesPerFrame = BYTES_PER_SAMPLE[format] * channels;
    this.#carry = new Uint8Array(this.bytesPerFrame);
  }

  /** Bytes held back for the next frame (0 … bytesPerFrame − 1). */
  get carriedBytes(): number {
    return this.#carried;
  }

  /** Decodes a frame to mono float samples in [-1, 1]. */
  decode(bytes: Uint8Array): Float32Array {
    const frameBytes = this.bytesPerFrame;
    const available = this.#carried + bytes.length;
    const out = new Float32Array(Math.floor(available / frameBytes));
    let read = 0;
    let write = 0;
    if (this.#carried > 0 && out.length > 0) {
      // Complete the carried frame from this frame's first bytes, then decode it on its own.
      const need = frameBytes - this.#carried;
      this.#carry.set(bytes.subarray(0, need), this.#carried);
      out[write++] = this.#frame(this.#carry, 0);
      read = need;
      this.#carried = 0;
    }
    if (this.channels === 1 && this.format === "linear16") {
      // The common case (every mic pipeline), kept as a tight loop: no per-sample dispatch.
      for (; write < out.length; write++, read += 2) {
        out[write] =
          toSigned16((bytes[read] ?? 0) | ((bytes[read + 1] ?? 0) << 8)) / PCM16_FULL_SCALE;
      }
    } else {
      for (; write < out.length; write++, read += frameBytes) {
        out[write] = this.#frame(bytes, read);
      }
    }
    const rest = bytes.length - read;
    if (rest > 0) {
      this.#carry.set(bytes.subarray(read), this.#carried);
      this.#carried += rest;
    }
    return out;
  }

  /** The mono value of the sample frame at `offset`: the mean of its channels. */
  #frame(bytes: Uint8Array, offset: number): number {
    const size = BYTES_PER_SAMPLE[this.format];
    if (this.channels === 1) return this.#sample(bytes, offset);
    let sum = 0;
    for (let c = 0; c < this.channels; c++) sum += this.#sample(bytes, offset + c * size);
    return sum / this.channels;
  }

  // Byte by byte rather than through typed-array views: a frame's byteOffset may be unaligned
  // after carried bytes, and the wire order is little-endian whatever the host's is.
  #sample(bytes: Uint8Array, at: number): number {
    switch (this.format) {
      case "linear16":
        return toSigned16((bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8)) / PCM16_FULL_SCALE;
      case "mulaw":
        return (MULAW_TO_PCM16[bytes[at] ?? 0] ?? 0) / PCM16_FULL_SCALE;
      case "alaw":
        return (ALAW_TO_PCM16[bytes[at] ?? 0] ?? 0) / PCM16_FULL_SCALE;
      case "linear32":
        return float32Sample(bytes, at);
    }
  }
}

/**
 * A little-endian IEEE-754 float32, clamped to [-1, 1]; NaN becomes 0. Float PCM is nominally in
 * [-1, 1] but nothing stops a sender from exceeding it, and an infinity or NaN would poison the
 * resampler's filter state and every VAD/Whisper window after it.
 */
const FLOAT_SCRATCH = new DataView(new ArrayBuffer(4));
function float32Sample(bytes: Uint8Array, at: number): number {
  for (let i = 0; i < 4; i++) FLOAT_SCRATCH.setUint8(i, bytes[at + i] ?? 0);
  const value = FLOAT_SCRATCH.getFloat32(0, true);
  if (Number.isNaN(value)) return 0;
  return Math.min(1, Math.max(-1, value));
}

/** An unsigned 16-bit value reinterpreted as two's complement. */
function toSigned16(value: number): number {
  return (value << 16) >> 16;
}
