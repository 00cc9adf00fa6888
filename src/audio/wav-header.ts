/**
 * A WAV (RIFF/WAVE) header read from the start of a stream, incrementally: the caller hands the
 * bytes it holds so far and gets "need more", the format and where the sample data starts, or an
 * AudioFormatError saying why the file cannot be decoded.
 *
 * Written here rather than taken from npm: the header is a few fixed fields, and the parsers on
 * npm read a whole file into memory, where a live stream's data chunk never ends.
 */
import { AudioFormatError } from "./audio-format";
import type { SampleFormat } from "./pcm-decoder";

/**
 * Most header bytes held before the sample data starts: 64 KiB. ffmpeg and SoX write 44–80 bytes;
 * metadata chunks before `data` (LIST/INFO, Broadcast WAV's 602-byte `bext`, iXML) are a few KB.
 * 64 KiB is a quarter of one legal frame (MAX_FRAME_BYTES), so holding it costs nothing a frame
 * could not. At the cap: AudioFormatError (close 1008 DATA-0000) — a header that long is not a
 * stream Earshot can start transcribing.
 */
export const MAX_WAV_HEADER_BYTES = 64 * 1024;

/** Most interleaved channels accepted (7.1 surround); all are averaged into one. */
export const MAX_WAV_CHANNELS = 8;

export interface WavFormat {
  sampleFormat: SampleFormat;
  channels: number;
  sampleRate: number;
  /** Offset of the first sample byte in the stream. */
  dataOffset: number;
  /**
   * Bytes of sample data, or null when the header does not know (0 or 0xFFFFFFFF, as a writer
   * streaming to a pipe leaves it): then the data runs to the end of the stream.
   */
  dataBytes: number | null;
}

/** WAVE format tags (RFC 2361) that are named in refusals. */
const TAG_NAMES: Record<number, string> = {
  2: "Microsoft ADPCM",
  17: "IMA ADPCM",
  49: "GSM 6.10",
  85: "MP3",
  353: "WMA",
  5648: "AAC",
};

const PCM = 0x0001;
const IEEE_FLOAT = 0x0003;
const ALAW = 0x0006;
const MULAW = 0x0007;
const EXTENSIBLE = 0xfffe;

const FOURCC = (bytes: Uint8Array, at: number): string =>
  String.fromCharCode(...bytes.subarray(at, at + 4));

/**
 * Parses the header in `bytes` (the stream from its first byte). Returns null when more bytes are
 * needed. Rates outside minRate..maxRate (the resampler's range) are refused.
 */
export function parseWavHeader(
  bytes: Uint8Array,
  minRate: number,
  maxRate: number,
): WavFormat | null {
  if (bytes.length < 12) return null;
  if (FOURCC(bytes, 8) !== "WAVE") {
    throw new AudioFormatError(
      `a RIFF file of type "${printable(FOURCC(bytes, 8))}" is not WAV audio`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format: Omit<WavFormat, "dataOffset" | "dataBytes"> | null = null;
  let at = 12;
  for (;;) {
    if (at + 8 > bytes.length) return needMore(bytes);
    const id = FOURCC(bytes, at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === "data") {
      if (format === null) throw new AudioFormatError("WAV data chunk before its fmt chunk");
      const unknown = size === 0 || size === 0xffffffff;
      return { ...format, dataOffset: body, dataBytes: unknown ? null : size };
    }
    // Any other chunk must be held whole before the data can start.
    if (body + size > MAX_WAV_HEADER_BYTES) {
      throw new AudioFormatError(
        `WAV header chunk "${printable(id)}" runs past ${MAX_WAV_HEADER_BYTES} bytes before the audio data`,
      );
    }
    if (body + size > bytes.length) return null;
    if (id === "fmt ") format = parseFmt(view, body, size, minRate, maxRate);
    at = body + size + (size % 2); // chunks are padded to an even length
  }
}

function needMore(bytes: Uint8Array): null {
  if (bytes.length >= MAX_WAV_HEADER_BYTES) {
    throw new AudioFormatError(`no WAV data chunk in the first ${MAX_WAV_HEADER_BYTES} bytes`);
  }
  return null;
}

function parseFmt(
  view: DataView,
  at: number,
  size: number,
  minRate: number,
  maxRate: number,
): Omit<WavFormat, "dataOffset" | "dataBytes"> {
  if (size < 16) throw new AudioFormatError(`WAV fmt chunk of ${size} bytes is too short`);
  let tag = view.getUint16(at, true);
  const channels = view.getUint16(at + 2, true);
  const sampleRate = view.getUint32(at + 4, true);
  const blockAlign = view.getUint16(at + 12, true);
  const bits = view.getUint16(at + 14, true);
  if (tag === EXTENSIBLE) {
    // WAVE_FORMAT_EXTENSIBLE: the real tag is the first 2 bytes of the SubFormat GUID at +24.
    if (size < 40) throw new AudioFormatError("WAV extensible fmt chunk is too short");
    tag = view.getUint16(at + 24, true);
  }
  const sampleFormat = sampleFormatOf(tag, bits);
  if (channels < 1 || channels > MAX_WAV_CHANNELS) {
    throw new AudioFormatError(`WAV with ${channels} channels: 1 to ${MAX_WAV_CHANNELS} supported`);
  }
  if (sampleRate < minRate || sampleRate > maxRate) {
    throw new AudioFormatError(
      `WAV sample rate ${sampleRate} Hz is outside ${minRate}..${maxRate} Hz`,
    );
  }
  if (blockAlign !== channels * (bits / 8)) {
    throw new AudioFormatError(
      `WAV block align ${blockAlign} does not match ${channels} channels of ${bits} bits`,
    );
  }
  return { sampleFormat, channels, sampleRate };
}

function sampleFormatOf(tag: number, bits: number): SampleFormat {
  if (tag === PCM && bits === 16) return "linear16";
  if (tag === IEEE_FLOAT && bits === 32) return "linear32";
  if (tag === ALAW && bits === 8) return "alaw";
  if (tag === MULAW && bits === 8) return "mulaw";
  const name =
    tag === PCM
      ? `${bits}-bit integer PCM`
      : tag === IEEE_FLOAT
        ? `${bits}-bit float PCM`
        : (TAG_NAMES[tag] ?? `format tag 0x${tag.toString(16).padStart(4, "0")}`);
  throw new AudioFormatError(
    `WAV with ${name} is not supported: send 16-bit PCM, 32-bit float, A-law or µ-law WAV`,
  );
}

/** A four-character code for a message: non-printable bytes shown as "?". */
function printable(code: string): string {
  return code.replace(/[^\x20-\x7e]/g, "?");
}
