/**
 * The eval clips' WAV format (16-bit integer PCM), parsed from bytes. Pure, with no workerd or
 * Node import: tests read the bytes through the FIXTURES binding (fixtures.ts), the browser test,
 * the bench and scripts read them from disk under Node (whose type stripping needs `.ts` in the
 * import path).
 */

export interface Wav {
  sampleRate: number;
  channels: number;
  /** Interleaved PCM16 sample data (the `data` chunk). */
  pcm: Uint8Array;
}

export function parseWav(bytes: Uint8Array): Wav {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error("not a WAV file");
  let offset = 12;
  let format: { sampleRate: number; channels: number } | null = null;
  while (offset + 8 <= bytes.byteLength) {
    const id = tag(offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === "fmt ") {
      const audioFormat = view.getUint16(body, true); // 1: integer PCM
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
      // slice clamps a size that runs past the end (a truncated file) to the bytes there are.
      return { ...format, pcm: bytes.slice(body, body + size) };
    }
    offset = body + size + (size % 2);
  }
  throw new Error("WAV has no data chunk");
}

/** PCM16 little-endian bytes to floats in [-1, 1) (an odd trailing byte is dropped). */
export function pcm16ToFloat(pcm: Uint8Array): Float32Array {
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const out = new Float32Array(pcm.byteLength >> 1);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}
