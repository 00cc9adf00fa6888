/**
 * Whisper's log-mel spectrogram (the encoder's `input_features`), for 16 kHz mono float audio.
 *
 * Same definition as openai/whisper `log_mel_spectrogram` and Hugging Face's
 * WhisperFeatureExtractor: 400-sample frames every 160 samples, each centred on its hop with the
 * signal mirror-padded by 200 samples at both ends (torch.stft center=True, pad_mode="reflect",
 * which mirrors without repeating the edge sample), a periodic Hann window, power spectrum,
 * 80 Slaney-style mel filters (librosa.filters.mel defaults), log10 with a 1e-10 floor, everything
 * below (max − 8) raised to it, then (x + 4) / 4.
 *
 * `frames` decides the window: the audio is zero-padded or cut to frames × 160 samples first, as
 * the feature extractor does with 480 000 samples for its 3000 frames, and the clamp uses the
 * maximum over those frames.
 *
 * Runs once per utterance and per interim in the session DO, so it is allocation-light: the plan,
 * window and filters are built once per isolate, the frame buffers are module-level and reused
 * (the function is synchronous, so no two calls can interleave), and frames that lie wholly in the
 * zero padding skip the FFT. Measured cost: the bench's whisper section (`mel_ms_per_audio_s`).
 */
import { createRealFftPlan } from "./fft.ts";

export const WHISPER_SAMPLE_RATE = 16_000;
/** Samples per analysis frame: 25 ms at 16 kHz. */
export const N_FFT = 400;
/** Samples between frames: 10 ms at 16 kHz, so 100 frames per second. */
export const HOP_LENGTH = 160;
export const N_MELS = 80;
/** 30 s × 100 frames/s: the encoder's full window, and the most any encoder accepts. */
export const MAX_FRAMES = 3000;
/** Bins of the one-sided spectrum: N_FFT / 2 + 1. */
const N_BINS = N_FFT / 2 + 1;
/** log10 floor of the mel power (Whisper's clamp(min=1e-10)): −10 before scaling. */
const LOG_FLOOR = -10;
/** Dynamic range kept below the loudest value, in decades of power (80 dB). */
const DYNAMIC_RANGE = 8;
const PAD = N_FFT / 2;

/** One mel filter: weights for spectrum bins first … first + weights.length − 1. */
export interface MelFilter {
  first: number;
  weights: Float64Array;
}

/** Hz → mel on the Slaney scale: linear below 1 kHz (3 mel per 200 Hz), logarithmic above. */
function hzToMel(hz: number): number {
  const linear = hz / (200 / 3);
  if (hz < 1000) return linear;
  return 15 + Math.log(hz / 1000) / (Math.log(6.4) / 27);
}

function melToHz(mel: number): number {
  if (mel < 15) return mel * (200 / 3);
  return 1000 * Math.exp((Math.log(6.4) / 27) * (mel - 15));
}

/**
 * librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, fmin=0, fmax=8000, htk=False,
 * norm="slaney"): triangles between consecutive points of 82 mel-spaced frequencies, each scaled
 * by 2 / (its width in Hz) so every filter has the same area. Kept sparse: a filter covers only
 * the few bins under its triangle (≈ 400 nonzero weights in all instead of 80 × 201).
 */
export function melFilters(): MelFilter[] {
  const nyquist = WHISPER_SAMPLE_RATE / 2;
  const minMel = hzToMel(0);
  const maxMel = hzToMel(nyquist);
  const points: number[] = [];
  for (let i = 0; i < N_MELS + 2; i++) {
    points.push(melToHz(minMel + ((maxMel - minMel) * i) / (N_MELS + 1)));
  }
  const filters: MelFilter[] = [];
  for (let m = 0; m < N_MELS; m++) {
    const left = points[m] as number;
    const centre = points[m + 1] as number;
    const right = points[m + 2] as number;
    const norm = 2 / (right - left);
    const row: number[] = [];
    let first = -1;
    for (let k = 0; k < N_BINS; k++) {
      const hz = (k * nyquist) / (N_BINS - 1);
      const rising = (hz - left) / (centre - left);
      const falling = (right - hz) / (right - centre);
      const weight = Math.max(0, Math.min(rising, falling)) * norm;
      if (weight > 0) {
        if (first < 0) first = k;
        row[k - first] = weight;
      } else if (first >= 0) {
        break;
      }
    }
    filters.push({ first: Math.max(first, 0), weights: Float64Array.from(row) });
  }
  return filters;
}

/** Periodic Hann window (torch.hann_window(400), periodic=True): 0.5 − 0.5 cos(2πn / 400). */
function hannWindow(): Float64Array {
  const window = new Float64Array(N_FFT);
  for (let n = 0; n < N_FFT; n++) window[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / N_FFT);
  return window;
}

/** The filters packed for the hot loop: filter m's weights are weights[offset[m] … offset[m+1]). */
interface PackedFilters {
  first: Int32Array;
  offset: Int32Array;
  weights: Float64Array;
}

function packFilters(filters: MelFilter[]): PackedFilters {
  const first = new Int32Array(filters.length);
  const offset = new Int32Array(filters.length + 1);
  filters.forEach((filter, m) => {
    first[m] = filter.first;
    offset[m + 1] = (offset[m] as number) + filter.weights.length;
  });
  const weights = new Float64Array(offset[filters.length] as number);
  filters.forEach((filter, m) => {
    weights.set(filter.weights, offset[m]);
  });
  return { first, offset, weights };
}

interface Plan {
  fft: ReturnType<typeof createRealFftPlan>;
  window: Float64Array;
  filters: PackedFilters;
  frame: Float64Array;
  power: Float64Array;
}

let plan: Plan | undefined;

function getPlan(): Plan {
  plan ??= {
    fft: createRealFftPlan(N_FFT),
    window: hannWindow(),
    filters: packFilters(melFilters()),
    frame: new Float64Array(N_FFT),
    power: new Float64Array(N_BINS),
  };
  return plan;
}

/** Frames for a number of samples at 100 frames/s, rounded up: ⌈samples / 160⌉. */
export function framesForSamples(samples: number): number {
  return Math.ceil(samples / HOP_LENGTH);
}

/**
 * Log-mel features of `audio` (16 kHz, [-1, 1]) as a [N_MELS, frames] row-major array: value
 * (mel m, frame t) at m × frames + t, the layout of `input_features` [1, 80, frames].
 * `out`, if given, must hold N_MELS × frames values and is returned.
 */
export function logMelSpectrogram(
  audio: Float32Array,
  frames: number,
  out: Float32Array = new Float32Array(N_MELS * frames),
): Float32Array {
  if (!Number.isInteger(frames) || frames <= 0) {
    throw new RangeError(`frames must be a positive integer, got ${frames}`);
  }
  if (out.length !== N_MELS * frames) {
    throw new RangeError(`out must hold ${N_MELS * frames} values, got ${out.length}`);
  }
  const { fft, window, filters, frame, power } = getPlan();
  // The signal is `audio` zero-padded or cut to `length` samples, then mirrored at both ends.
  const length = frames * HOP_LENGTH;
  const audible = Math.min(audio.length, length);
  let max = LOG_FLOOR;
  for (let t = 0; t < frames; t++) {
    const start = t * HOP_LENGTH - PAD;
    if (start >= audible && start + N_FFT <= length) {
      // Wholly inside the zero padding (and not reaching the mirror at the end): silence.
      for (let m = 0; m < N_MELS; m++) out[m * frames + t] = LOG_FLOOR;
      continue;
    }
    if (start >= 0 && start + N_FFT <= audible) {
      for (let n = 0; n < N_FFT; n++)
        frame[n] = (audio[start + n] as number) * (window[n] as number);
    } else {
      for (let n = 0; n < N_FFT; n++) {
        let at = start + n;
        if (at < 0) at = -at;
        if (at >= length) at = 2 * (length - 1) - at;
        const sample = at >= 0 && at < audible ? (audio[at] as number) : 0;
        frame[n] = sample * (window[n] as number);
      }
    }
    fft.power(frame, power);
    for (let m = 0; m < N_MELS; m++) {
      const first = filters.first[m] as number;
      const from = filters.offset[m] as number;
      const to = filters.offset[m + 1] as number;
      let energy = 0;
      for (let w = from; w < to; w++) {
        energy += (filters.weights[w] as number) * (power[first + w - from] as number);
      }
      const value = energy > 1e-10 ? Math.log10(energy) : LOG_FLOOR;
      if (value > max) max = value;
      out[m * frames + t] = value;
    }
  }
  const floor = max - DYNAMIC_RANGE;
  for (let i = 0; i < out.length; i++) {
    const value = out[i] as number;
    out[i] = (Math.max(value, floor) + 4) / 4;
  }
  return out;
}
