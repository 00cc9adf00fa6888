/**
 * Where in the clip a browser recording starts. Chromium's fake microphone starts its file when
 * the page opens the microphone, and the page starts MediaRecorder only once its socket is open
 * (as Deepgram's example does), so the recording misses the clip's first ~0.2 s — how much
 * depends on the handshake. That matters for the comparison with `linear16`: the server's
 * endpointing falls on different frames when the audio is shifted, and Whisper tiny then merges
 * or splits JFK's phrases differently (measured: the clip sent as linear16 without its first
 * 100 ms or 230 ms loses "ask not", at WER 0.091 instead of 0.045). So the reference sent as
 * `linear16` is the clip from the sample where the recording starts: the same audio, differing
 * only in how it was carried.
 *
 * Decoded here in Node with the session's own demuxers and the same `opus-decoder` package (not
 * its workerd build): only to find the offset, which is checked by the correlation it reaches.
 */
import { OpusDecoder } from "opus-decoder";
import { OggOpusDemuxer, type OpusHead, parseOpusHead } from "../../src/audio/ogg-opus-demuxer";
import { WebmOpusDemuxer } from "../../src/audio/webm-opus-demuxer";

const OPUS_RATE = 48_000;
const CLIP_RATE = 16_000;
/** 48 kHz → 16 kHz by averaging each 3 samples: crude, but enough to line up speech. */
const DECIMATION = OPUS_RATE / CLIP_RATE;
/** The recording may start up to 2 s into the clip (a handshake takes ~0.2 s). */
const MAX_OFFSET_SAMPLES = 2 * CLIP_RATE;
/** Coarse search on 10 ms energy envelopes, then sample by sample ± one envelope step around it. */
const ENVELOPE_SAMPLES = 160;
/** Correlation window: 4 s of the recording from 0.5 s in (past the encoder's start-up). */
const WINDOW_FROM = 0.5 * CLIP_RATE;
const WINDOW_SAMPLES = 4 * CLIP_RATE;

/** A WebM/Opus or Ogg/Opus recording decoded to mono at 16 kHz (pre-skip dropped). */
export async function decodeRecording(bytes: Uint8Array): Promise<Float32Array> {
  let packets: Uint8Array[];
  let head: OpusHead;
  if (bytes[0] === 0x4f) {
    const demuxer = new OggOpusDemuxer();
    packets = demuxer.push(bytes);
    demuxer.end();
    if (demuxer.head === null) throw new Error("no OpusHead in the Ogg recording");
    head = demuxer.head;
  } else {
    const demuxer = new WebmOpusDemuxer();
    packets = demuxer.push(bytes);
    const codecPrivate = demuxer.track?.codecPrivate;
    if (codecPrivate == null) throw new Error("no OpusHead (CodecPrivate) in the WebM recording");
    head = parseOpusHead(codecPrivate);
  }
  const decoder = new OpusDecoder({
    sampleRate: OPUS_RATE,
    channels: head.channels,
    preSkip: head.preSkip,
  });
  await decoder.ready;
  try {
    const out = decoder.decodeFrames(packets);
    const left = out.channelData[0] ?? new Float32Array(0);
    const mono = new Float32Array(Math.floor(out.samplesDecoded / DECIMATION));
    for (let i = 0; i < mono.length; i++) {
      let sum = 0;
      for (let k = 0; k < DECIMATION; k++) sum += left[i * DECIMATION + k] ?? 0;
      mono[i] = sum / DECIMATION;
    }
    return mono;
  } finally {
    decoder.free();
  }
}

function envelope(samples: Float32Array): Float32Array {
  const out = new Float32Array(Math.floor(samples.length / ENVELOPE_SAMPLES));
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    for (let k = 0; k < ENVELOPE_SAMPLES; k++) sum += (samples[i * ENVELOPE_SAMPLES + k] ?? 0) ** 2;
    out[i] = Math.sqrt(sum / ENVELOPE_SAMPLES);
  }
  return out;
}

/** Normalised correlation of recording[from, from+n) with clip[from+offset, …). */
function correlation(
  clip: Float32Array,
  recording: Float32Array,
  offset: number,
  from: number,
  n: number,
): number {
  let dot = 0;
  let clipEnergy = 0;
  let recordingEnergy = 0;
  for (let i = from; i < from + n; i++) {
    const a = clip[i + offset] ?? 0;
    const b = recording[i] ?? 0;
    dot += a * b;
    clipEnergy += a * a;
    recordingEnergy += b * b;
  }
  return dot / Math.sqrt(clipEnergy * recordingEnergy || 1);
}

/**
 * The clip sample (16 kHz) at which `recording` starts, and the normalised correlation reached
 * there (1 = the same waveform; lossy Opus of speech reaches ~0.95).
 */
export function findOffset(
  clip: Float32Array,
  recording: Float32Array,
): { offset: number; correlation: number } {
  const clipEnvelope = envelope(clip);
  const recordingEnvelope = envelope(recording);
  const from = WINDOW_FROM / ENVELOPE_SAMPLES;
  const n = WINDOW_SAMPLES / ENVELOPE_SAMPLES;
  let coarse = 0;
  let best = -Infinity;
  for (let step = 0; step <= MAX_OFFSET_SAMPLES / ENVELOPE_SAMPLES; step++) {
    const c = correlation(clipEnvelope, recordingEnvelope, step, from, n);
    if (c > best) [best, coarse] = [c, step * ENVELOPE_SAMPLES];
  }
  let offset = coarse;
  best = -Infinity;
  const lowest = Math.max(0, coarse - ENVELOPE_SAMPLES);
  for (let at = lowest; at <= coarse + ENVELOPE_SAMPLES; at++) {
    const c = correlation(clip, recording, at, WINDOW_FROM, WINDOW_SAMPLES);
    if (c > best) [best, offset] = [c, at];
  }
  return { offset, correlation: best };
}
