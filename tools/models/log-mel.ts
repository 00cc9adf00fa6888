/**
 * Whisper's log-mel spectrogram, plainly (direct DFT, no FFT), for the comparison tool only:
 * real speech features make the stock-vs-prepared comparison meaningful. The worker uses
 * src/stt/whisper/mel.ts. Definition (openai/whisper log_mel_spectrogram): 400-sample periodic
 * Hann frames every 160 samples, reflect-padded by 200 at both ends, power spectrum, 80 Slaney
 * mel filters (librosa defaults, 0–8 kHz), log10 floored at 1e-10, clamped to (max − 8), then
 * (x + 4) / 4. The last STFT frame is dropped, as Whisper does: frames = samples / 160.
 */
const N_FFT = 400;
const HOP = 160;
const N_MELS = 80;
const SAMPLE_RATE = 16_000;
const BINS = N_FFT / 2 + 1;

const hzToMel = (hz: number) =>
  hz < 1000 ? hz / (200 / 3) : 15 + Math.log(hz / 1000) / (Math.log(6.4) / 27);
const melToHz = (mel: number) =>
  mel < 15 ? mel * (200 / 3) : 1000 * Math.exp((Math.log(6.4) / 27) * (mel - 15));

function melFilters(): Float64Array[] {
  const top = hzToMel(SAMPLE_RATE / 2);
  const points = Array.from({ length: N_MELS + 2 }, (_, i) => melToHz((top * i) / (N_MELS + 1)));
  return Array.from({ length: N_MELS }, (_, m) => {
    const [lo, mid, hi] = [points[m] ?? 0, points[m + 1] ?? 0, points[m + 2] ?? 0];
    const filter = new Float64Array(BINS);
    for (let k = 0; k < BINS; k++) {
      const hz = (k * SAMPLE_RATE) / N_FFT;
      const weight = Math.max(0, Math.min((hz - lo) / (mid - lo), (hi - hz) / (hi - mid)));
      filter[k] = (weight * 2) / (hi - lo);
    }
    return filter;
  });
}

/** [80, frames] row-major, from 16 kHz mono samples zero-padded or cut to frames × 160. */
export function logMel(samples: Float32Array, frames: number): Float32Array {
  const length = frames * HOP;
  const audio = new Float64Array(length + N_FFT);
  for (let i = 0; i < length; i++)
    audio[i + N_FFT / 2] = i < samples.length ? (samples[i] ?? 0) : 0;
  for (let i = 1; i <= N_FFT / 2; i++) {
    audio[N_FFT / 2 - i] = audio[N_FFT / 2 + i] ?? 0;
    audio[N_FFT / 2 + length - 1 + i] = audio[N_FFT / 2 + length - 1 - i] ?? 0;
  }
  const window = Float64Array.from(
    { length: N_FFT },
    (_, n) => 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / N_FFT),
  );
  const cos = new Float64Array(BINS * N_FFT);
  const sin = new Float64Array(BINS * N_FFT);
  for (let k = 0; k < BINS; k++) {
    for (let n = 0; n < N_FFT; n++) {
      cos[k * N_FFT + n] = Math.cos((2 * Math.PI * k * n) / N_FFT);
      sin[k * N_FFT + n] = Math.sin((2 * Math.PI * k * n) / N_FFT);
    }
  }
  const filters = melFilters();
  const out = new Float32Array(N_MELS * frames);
  const frame = new Float64Array(N_FFT);
  const power = new Float64Array(BINS);
  let max = Number.NEGATIVE_INFINITY;
  for (let t = 0; t < frames; t++) {
    for (let n = 0; n < N_FFT; n++) frame[n] = (audio[t * HOP + n] ?? 0) * (window[n] ?? 0);
    for (let k = 0; k < BINS; k++) {
      let re = 0;
      let im = 0;
      for (let n = 0; n < N_FFT; n++) {
        re += (frame[n] ?? 0) * (cos[k * N_FFT + n] ?? 0);
        im -= (frame[n] ?? 0) * (sin[k * N_FFT + n] ?? 0);
      }
      power[k] = re * re + im * im;
    }
    filters.forEach((filter, m) => {
      let sum = 0;
      for (let k = 0; k < BINS; k++) sum += (filter[k] ?? 0) * (power[k] ?? 0);
      const value = Math.log10(Math.max(sum, 1e-10));
      out[m * frames + t] = value;
      max = Math.max(max, value);
    });
  }
  for (let i = 0; i < out.length; i++) out[i] = (Math.max(out[i] ?? 0, max - 8) + 4) / 4;
  return out;
}

/** 16-bit PCM mono WAV → floats in [-1, 1). */
export function wavSamples(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  let offset = 12;
  while (offset + 8 <= bytes.byteLength) {
    const size = view.getUint32(offset + 4, true);
    if (tag(offset) === "data") {
      const out = new Float32Array(size >> 1);
      for (let i = 0; i < out.length; i++) out[i] = view.getInt16(offset + 8 + i * 2, true) / 32768;
      return out;
    }
    offset += 8 + size + (size % 2);
  }
  throw new Error("WAV has no data chunk");
}
