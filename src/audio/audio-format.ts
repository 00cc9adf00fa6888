/**
 * What the first bytes of a stream say it is, when the client named no `encoding` and no
 * `sample_rate` (Deepgram: "If containerized audio packets are sent to the streaming service,
 * [encoding] should not be used"). The decision is made once, on the stream's first 4 bytes:
 *
 * - `RIFF` → a WAV file (its header gives rate, channels and sample format; wav-header.ts);
 * - `RF64` → a 64-bit WAV: recognised, refused;
 * - `OggS` → an Ogg stream (Opus from MediaRecorder / opusenc);
 * - 1A 45 DF A3 (the EBML magic) → WebM / Matroska (MediaRecorder's `audio/webm`);
 * - anything else → raw linear16 at 16 kHz, Earshot's default before containers existed.
 *
 * Raw PCM that happens to begin with one of these 4-byte patterns (a chance of about 4 in 2^32
 * for noise; silence never does) would be misread: a client that sends raw audio should name its
 * `encoding` and `sample_rate`, which turns detection off.
 */

/** Audio the session cannot decode as sent: the client is told why and the session closes. */
export class AudioFormatError extends Error {
  override name = "AudioFormatError";
}

/**
 * More audio arrived at once than a session queues (a flood, not bad data): the session closes as
 * for any flood (1008 BUF-0000) rather than with DATA-0000.
 */
export class AudioFloodError extends Error {
  override name = "AudioFloodError";
}

export type Detected = "wav" | "rf64" | "ogg" | "webm" | "raw";

/** Bytes the decision needs; a shorter stream (or first frames) waits for more. */
export const SNIFF_BYTES = 4;

const MAGIC: readonly [Detected, readonly number[]][] = [
  ["wav", [0x52, 0x49, 0x46, 0x46]], // "RIFF"
  ["rf64", [0x52, 0x46, 0x36, 0x34]], // "RF64"
  ["ogg", [0x4f, 0x67, 0x67, 0x53]], // "OggS"
  ["webm", [0x1a, 0x45, 0xdf, 0xa3]], // EBML header element ID
];

/** The format the stream's first bytes announce, or null while fewer than SNIFF_BYTES arrived. */
export function sniff(prefix: Uint8Array): Detected | null {
  if (prefix.length < SNIFF_BYTES) return null;
  for (const [kind, magic] of MAGIC) {
    if (magic.every((byte, i) => prefix[i] === byte)) return kind;
  }
  return "raw";
}

/** Whether bytes met after a container ended start another container (a format change). */
export function startsContainer(prefix: Uint8Array): boolean {
  const kind = sniff(prefix);
  return kind !== null && kind !== "raw";
}
