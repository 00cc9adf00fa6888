/**
 * The eval clips in Node: 16-bit PCM WAV files, 16 kHz mono, indexed by manifest.tsv (parsed by
 * tools/eval/, as the tests do); checks the one format every bench part assumes.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { type ManifestRow, parseManifest } from "../../eval/manifest.ts";
import { parseWav, pcm16ToFloat, type Wav } from "../../eval/wav.ts";

export const SAMPLE_RATE = 16_000;

/** Seconds of audio in PCM16 bytes at 16 kHz. */
export const pcmSeconds = (pcm: Uint8Array): number => pcm.byteLength / 2 / SAMPLE_RATE;

/** The PCM16 LE samples of a 16 kHz mono WAV file. */
async function readPcm(file: string): Promise<Uint8Array> {
  const name = path.basename(file);
  let wav: Wav;
  try {
    wav = parseWav(await readFile(file));
  } catch (error) {
    throw new Error(`${name}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  if (wav.channels !== 1 || wav.sampleRate !== SAMPLE_RATE) {
    throw new Error(`${name}: need 16 kHz mono, got ${wav.sampleRate} Hz × ${wav.channels}`);
  }
  return wav.pcm;
}

export interface Clip {
  file: string;
  /** Mono samples in [-1, 1): PCM16 / 32768, the same conversion the tests use. */
  samples: Float32Array;
}

export async function readClip(evalDir: string, file: string): Promise<Clip> {
  return { file, samples: pcm16ToFloat(await readPcm(path.join(evalDir, file))) };
}

export interface EvalClip {
  row: ManifestRow;
  pcm: Uint8Array;
}

/** Every clip of the eval set, in manifest order. */
export async function loadClips(evalDir: string): Promise<EvalClip[]> {
  const rows = parseManifest(await readFile(path.join(evalDir, "manifest.tsv"), "utf8"));
  return Promise.all(
    rows.map(async (row) => ({ row, pcm: await readPcm(path.join(evalDir, row.file)) })),
  );
}
