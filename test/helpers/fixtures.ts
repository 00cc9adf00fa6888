import { env } from "cloudflare:workers";
import { type ManifestRow, parseManifest } from "../../tools/eval/manifest";
import { parseWav, type Wav } from "../../tools/eval/wav";

// Re-exported: the tests import everything clip-related from here.
export type { ManifestRow } from "../../tools/eval/manifest";
export { parseWav, pcm16ToFloat, type Wav } from "../../tools/eval/wav";

/**
 * A file from ../shared/eval, fetched through the FIXTURES binding (see vitest.config.ts): a plain
 * name is in eval/dev, "short/<file>" and "multilingual/<file>" in those sets.
 */
export async function fixture(name: string): Promise<Uint8Array> {
  const response = await (env as unknown as { FIXTURES: Fetcher }).FIXTURES.fetch(
    `http://fixtures/${name}`,
  );
  if (!response.ok)
    throw new Error(`fixture ${name}: HTTP ${response.status} ${await response.text()}`);
  return new Uint8Array(await response.arrayBuffer());
}

export async function wavFixture(name: string): Promise<Wav> {
  return parseWav(await fixture(name));
}

export type EvalSet = "dev" | "short" | "multilingual";

/**
 * The rows of ../shared/eval/<set>/manifest.tsv, one per clip; `file` is what `fixture` takes
 * ("short/psx_cards_001.wav" outside dev).
 */
export async function manifest(set: EvalSet = "dev"): Promise<ManifestRow[]> {
  const prefix = set === "dev" ? "" : `${set}/`;
  const rows = parseManifest(new TextDecoder().decode(await fixture(`${prefix}manifest.tsv`)));
  return rows.map((row) => ({ ...row, file: `${prefix}${row.file}` }));
}

/**
 * Dev clip `clip` (its id, no extension) as Ogg/Opus encoded by `opusenc` on the Node side (the
 * OPUS_FIXTURES binding, test/setup/opus-fixtures.ts: mono, 24 kbit/s, 20-ms frames).
 */
export async function oggOpusFixture(clip: string): Promise<Uint8Array> {
  const binding = (env as unknown as { OPUS_FIXTURES: Fetcher }).OPUS_FIXTURES;
  const response = await binding.fetch(`http://opus/${clip}.opus`);
  if (!response.ok) throw new Error(await response.text());
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * The dev no-speech clip Silero scores as speech: music whose 15 speech frames in 32 open an
 * utterance at most stream offsets (at 400 ms of minimum speech, 7 of 8 offsets; at 250, 8 of 8).
 * The VAD only proposes: SpeechStarted may come, as Deepgram's VAD events do on sounds like
 * speech; Whisper's evidence gives it no words (src/stt/whisper/speech-evidence.ts,
 * test/whisper-session-accuracy.test.ts, test/whisper-session-stream-start.test.ts). The noise
 * and silence clips open nothing.
 */
export const SILERO_HEARS_SPEECH_IN: ReadonlySet<string> = new Set([
  "ns_librosa_vibeace_10_25s.wav",
]);
