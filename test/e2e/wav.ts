/**
 * Just enough WAV for the browser test: write a clip (read with tools/eval/wav.ts) back with
 * silence appended (Chromium's fake microphone loops its file; the silence separates the passes).
 */
import type { Wav } from "../../tools/eval/wav";

/** Seconds of audio in a clip. */
export function wavSeconds(wav: Wav): number {
  return wav.pcm.byteLength / (2 * wav.channels * wav.sampleRate);
}

/** A canonical 44-byte-header WAV of `wav` followed by `silenceSeconds` of zeros. */
export function withTrailingSilence(wav: Wav, silenceSeconds: number): Uint8Array {
  const frameBytes = 2 * wav.channels;
  const silenceBytes = Math.round(silenceSeconds * wav.sampleRate) * frameBytes;
  const dataBytes = wav.pcm.byteLength + silenceBytes;
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
  out.set(wav.pcm, 44); // the silence after it is already zeros
  return out;
}
