/**
 * Audio without speech, generated deterministically (seeded), for the no-speech checks: kinds of
 * sound a microphone hears between turns (hiss, rumble, hum, music). 16 kHz mono floats.
 */
import { seededRandom } from "../../tools/eval/random";

const RATE = 16_000;

function normalise(samples: Float32Array, rms: number): Float32Array {
  let sum = 0;
  for (const s of samples) sum += s * s;
  const scale = rms / Math.sqrt(sum / Math.max(1, samples.length) || 1);
  for (let i = 0; i < samples.length; i++) samples[i] = (samples[i] ?? 0) * scale;
  return samples;
}

/** White noise (fan, hiss). */
export function whiteNoise(seconds: number, rms: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const out = new Float32Array(seconds * RATE);
  for (let i = 0; i < out.length; i++) out[i] = random() * 2 - 1;
  return normalise(out, rms);
}

/** Brown noise (rumble, traffic): integrated white noise with a slow leak. */
export function brownNoise(seconds: number, rms: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const out = new Float32Array(seconds * RATE);
  let level = 0;
  for (let i = 0; i < out.length; i++) {
    level = level * 0.995 + (random() * 2 - 1) * 0.05;
    out[i] = level;
  }
  return normalise(out, rms);
}

/** Mains hum (50 Hz and harmonics) under a little hiss. */
export function hum(seconds: number, rms: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const out = new Float32Array(seconds * RATE);
  for (let i = 0; i < out.length; i++) {
    const t = i / RATE;
    out[i] =
      Math.sin(2 * Math.PI * 50 * t) +
      0.5 * Math.sin(2 * Math.PI * 100 * t) +
      0.3 * Math.sin(2 * Math.PI * 150 * t) +
      0.05 * (random() * 2 - 1);
  }
  return normalise(out, rms);
}

/**
 * A plucked melody: notes of a pentatonic scale, four a second, each a tone with three harmonics
 * and an exponential decay, over a sustained two-note bass.
 */
export function melody(seconds: number, rms: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const out = new Float32Array(seconds * RATE);
  const scale = [0, 2, 4, 7, 9, 12, 14, 16];
  const noteSamples = RATE / 4;
  for (let start = 0; start < out.length; start += noteSamples) {
    const step = scale[Math.floor(random() * scale.length)] ?? 0;
    const frequency = 261.63 * 2 ** (step / 12);
    for (let i = 0; i < noteSamples && start + i < out.length; i++) {
      const t = i / RATE;
      const envelope = Math.exp(-t * 8);
      const tone =
        Math.sin(2 * Math.PI * frequency * t) +
        0.5 * Math.sin(4 * Math.PI * frequency * t) +
        0.25 * Math.sin(6 * Math.PI * frequency * t);
      out[start + i] = (out[start + i] ?? 0) + envelope * tone;
    }
  }
  for (let i = 0; i < out.length; i++) {
    const t = i / RATE;
    out[i] =
      (out[i] ?? 0) + 0.3 * Math.sin(2 * Math.PI * 110 * t) + 0.2 * Math.sin(2 * Math.PI * 165 * t);
  }
  return normalise(out, rms);
}
