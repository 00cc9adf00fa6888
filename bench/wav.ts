/**
 * Reads the eval clips (16-bit PCM WAV) in Node. The parsing is scripts/lib/eval/wav.ts, the one the
 * tests use inside workerd (pure, so Node runs it too); this file only reads the disk.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseWav, pcm16ToFloat, type Wav } from "../scripts/lib/eval/wav.ts";

export interface Clip {
  file: string;
  sampleRate: number;
  /** Mono samples in [-1, 1): PCM16 / 32768, the same conversion the tests use. */
  samples: Float32Array;
}

export async function readClip(evalDir: string, file: string): Promise<Clip> {
  const bytes = await readFile(path.join(evalDir, file));
  let wav: Wav;
  try {
    wav = parseWav(bytes);
  } catch (error) {
    throw new Error(`${file}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  if (wav.channels !== 1) throw new Error(`${file}: expected mono, got ${wav.channels} channels`);
  return { file, sampleRate: wav.sampleRate, samples: pcm16ToFloat(wav.pcm) };
}
