/**
 * Reads the eval clips (16-bit PCM WAV) in Node. test/helpers/fixtures.ts does the same inside
 * workerd, where it reads through a service binding; this one reads the disk.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";

export interface Clip {
  file: string;
  sampleRate: number;
  /** Mono samples in [-1, 1): PCM16 / 32768, the same conversion the tests use. */
  samples: Float32Array;
}

export async function readClip(evalDir: string, file: string): Promise<Clip> {
  const bytes = await readFile(path.join(evalDir, file));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => bytes.toString("latin1", at, at + 4);
  if (tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error(`${file}: not a WAV file`);
  let sampleRate = 0;
  let channels = 0;
  let offset = 12;
  while (offset + 8 <= bytes.byteLength) {
    const id = tag(offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === "fmt ") {
      channels = view.getUint16(body + 2, true);
      sampleRate = view.getUint32(body + 4, true);
      const bits = view.getUint16(body + 14, true);
      if (bits !== 16) throw new Error(`${file}: expected 16-bit PCM, got ${bits}`);
    } else if (id === "data") {
      if (channels !== 1) throw new Error(`${file}: expected mono, got ${channels} channels`);
      const count = Math.floor(Math.min(size, bytes.byteLength - body) / 2);
      const samples = new Float32Array(count);
      for (let i = 0; i < count; i++) samples[i] = view.getInt16(body + i * 2, true) / 32768;
      return { file, sampleRate, samples };
    }
    offset = body + size + (size % 2);
  }
  throw new Error(`${file}: WAV has no data chunk`);
}
