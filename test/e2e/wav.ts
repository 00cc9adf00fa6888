/**
 * Just enough WAV for the browser test: read a 16-bit PCM clip and write it back with silence
 * appended (Chromium's fake microphone loops its file, so the silence separates the passes).
 */

export interface Pcm16Wav {
  sampleRate: number;
  channels: number;
  /** Interleaved little-endian 16-bit samples (the `data` chunk). */
  data: Uint8Array;
}

export function readPcm16Wav(bytes: Uint8Array): Pcm16Wav {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error("not a RIFF/WAVE file");
  let offset = 12;
  let format: { sampleRate: number; channels: number } | null = null;
  while (offset + 8 <= bytes.byteLength) {
    const id = tag(offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === "fmt ") {
      const audioFormat = view.getUint16(body, true);
      const bits = view.getUint16(body + 14, true);
      if (audioFormat !== 1 || bits !== 16) {
        throw new Error(`expected 16-bit PCM, got format ${audioFormat} with ${bits} bits`);
      }
      format = {
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
      };
    } else if (id === "data") {
      if (format === null) throw new Error("WAV data chunk before its fmt chunk");
      return { ...format, data: bytes.slice(body, body + size) };
    }
    offset = body + size + (size % 2);
  }
  throw new Error("WAV has no data chunk");
}

/** Seconds of audio in a clip. */
export function wavSeconds(wav: Pcm16Wav): number {
  return wav.data.byteLength / (2 * wav.channels * wav.sampleRate);
}

/** A canonical 44-byte-header WAV of `wav` followed by `silenceSeconds` of zeros. */
export function withTrailingSilence(wav: Pcm16Wav, silenceSeconds: number): Uint8Array {
  const frameBytes = 2 * wav.channels;
  const silenceBytes = Math.round(silenceSeconds * wav.sampleRate) * frameBytes;
  const dataBytes = wav.data.byteLength + silenceBytes;
  const out = new Uint8Array(44 + dataBytes);
  const view = new DataView(out.buffer);
  const ascii = (at: number, text: string) => {
    for (let i = 0; i < text.length; i++) out[at + i] = text.charCodeAt(i);
  };
  ascii(0, "RIFF");
  view.setUint32(4, 36 + dataBytes, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, wav.channels, true);
  view.setUint32(24, wav.sampleRate, true);
  view.setUint32(28, wav.sampleRate * frameBytes, true); // byte rate
  view.setUint16(32, frameBytes, true); // block align
  view.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  view.setUint32(40, dataBytes, true);
  out.set(wav.data, 44); // the silence after it is already zeros
  return out;
}
