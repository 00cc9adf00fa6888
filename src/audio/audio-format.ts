/**
 * What the first bytes of a stream say it is, when the client named no `encoding` and no
 * `sample_rate` (Deepgram: "If containerized audio packets are sent to the streaming service,
 * [encoding] should not be used"). The decision is made once, on the stream's first 4 bytes (8
 * when those could be an MP4 box size):
 *
 * - `RIFF` → a WAV file (its header gives rate, channels and sample format; wav-header.ts);
 * - `RF64` → a 64-bit WAV: recognised, refused;
 * - `OggS` → an Ogg stream (Opus from MediaRecorder / opusenc);
 * - 1A 45 DF A3 (the EBML magic) → WebM / Matroska (MediaRecorder's `audio/webm`);
 * - `fLaC`, `ID3` + version 2–4 (an MP3's tag), and an MP4 file type box (`ftyp` at bytes 4–7,
 *   after a box size of 00 00 00 08–FF: what Safari's MediaRecorder writes) → recognised,
 *   refused with a clear reason (decoding them is not built), instead of read as PCM noise;
 * - anything else → raw linear16 at 16 kHz, Earshot's default before containers existed.
 *
 * Raw PCM that happens to begin with one of these patterns (a chance of about 10 in 2^32 for
 * noise; silence never does) would be misread: a client that sends raw audio should name its
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

export type Detected = "wav" | "rf64" | "ogg" | "webm" | "flac" | "mp3" | "mp4" | "raw";

/** Bytes the decision needs; a shorter stream (or first frames) waits for more. */
export const SNIFF_BYTES = 4;

const MAGIC: readonly [Detected, readonly number[]][] = [
  ["wav", [0x52, 0x49, 0x46, 0x46]], // "RIFF"
  ["rf64", [0x52, 0x46, 0x36, 0x34]], // "RF64"
  ["ogg", [0x4f, 0x67, 0x67, 0x53]], // "OggS"
  ["webm", [0x1a, 0x45, 0xdf, 0xa3]], // EBML header element ID
  ["flac", [0x66, 0x4c, 0x61, 0x43]], // "fLaC"
  ...[2, 3, 4].map((version): [Detected, number[]] => ["mp3", [0x49, 0x44, 0x33, version]]), // "ID3"
];

/** An MP4 box size (00 00 00 08–FF) may start a file type box: bytes 4–7 are then "ftyp". */
const FTYP = [0x66, 0x74, 0x79, 0x70];

/**
 * The format the stream's first bytes announce, or null while they cannot tell yet: fewer than
 * SNIFF_BYTES, or the first four could be an MP4 box size and the next four have not arrived.
 */
export function sniff(prefix: Uint8Array): Detected | null {
  if (prefix.length < SNIFF_BYTES) return null;
  for (const [kind, magic] of MAGIC) {
    if (magic.every((byte, i) => prefix[i] === byte)) return kind;
  }
  if (prefix[0] === 0 && prefix[1] === 0 && prefix[2] === 0 && (prefix[3] ?? 0) >= 8) {
    if (prefix.length < 8) return null;
    if (FTYP.every((byte, i) => prefix[4 + i] === byte)) return "mp4";
  }
  return "raw";
}

/** Formats recognised and refused, with what to send instead (the client's Error says it). */
export const REFUSED_FORMATS: Readonly<Partial<Record<Detected, string>>> = {
  rf64: "RF64 (64-bit WAV) audio is not supported: send a RIFF WAV file",
  flac: "FLAC audio is not supported: send WAV, Ogg or WebM with Opus, or raw PCM",
  mp3: "MP3 audio is not supported: send WAV, Ogg or WebM with Opus, or raw PCM",
  mp4: "MP4/M4A audio (Safari's MediaRecorder) is not supported: send WAV, Ogg or WebM with Opus, or raw PCM (e.g. from an AudioWorklet)",
};

/**
 * Whether bytes met after a WAV's data ended start another container (a format change). Only the
 * four containers read: an ID3 tag after a WAV's data is metadata some writers append.
 */
export function startsContainer(prefix: Uint8Array): boolean {
  const kind = sniff(prefix);
  return kind === "wav" || kind === "rf64" || kind === "ogg" || kind === "webm";
}
