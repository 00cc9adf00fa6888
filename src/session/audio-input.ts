/**
 * The front of the ordered audio buffer: raw client bytes in, 16 kHz floats out, in order.
 * Offsets are byte counts of the client's stream (`bytesReceived`); an odd trailing byte of a
 * linear16 frame is carried to the next frame by the decoder, never dropped. The SHA-256 of every
 * byte received (Metadata's `sha256`) is computed as the stream goes, so nothing is kept for it.
 */
import type { Encoding } from "../protocol/options";
import { TRANSCRIBER_SAMPLE_RATE } from "../stt/transcriber";
import { BYTES_PER_SAMPLE, PcmDecoder } from "./pcm-decoder";
import { StreamingResampler } from "./resampler";

export class AudioInput {
  readonly bytesPerSecond: number;
  #decoder: PcmDecoder;
  #resampler: StreamingResampler;
  #bytesReceived = 0;
  #digest = new crypto.DigestStream("SHA-256");
  #writer = this.#digest.getWriter();

  constructor(
    readonly encoding: Encoding,
    readonly sampleRate: number,
  ) {
    this.bytesPerSecond = sampleRate * BYTES_PER_SAMPLE[encoding];
    this.#decoder = new PcmDecoder(encoding);
    this.#resampler = new StreamingResampler(sampleRate, TRANSCRIBER_SAMPLE_RATE);
  }

  /** Bytes of client audio accepted so far: the offset of the next byte. */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** Seconds of client audio received. */
  get secondsReceived(): number {
    return this.#bytesReceived / this.bytesPerSecond;
  }

  /** Accepts the next frame; returns its 16 kHz samples (possibly none yet). */
  async append(bytes: Uint8Array): Promise<Float32Array> {
    this.#bytesReceived += bytes.byteLength;
    // DigestStream consumes the chunk asynchronously: give it a copy we never touch again.
    await this.#writer.write(bytes.slice());
    return this.#resampler.process(this.#decoder.decode(bytes));
  }

  /** End of stream: the samples the resampler still holds. */
  finish(): Float32Array {
    return this.#resampler.flush();
  }

  /** SHA-256 (hex) of every byte received; ends the digest, so call once, at the end. */
  async sha256(): Promise<string> {
    await this.#writer.close();
    const digest = new Uint8Array(await this.#digest.digest);
    return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
}
