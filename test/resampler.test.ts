import { describe, expect, it } from "vitest";
import { HISTORY_SAMPLES, StreamingResampler } from "../src/audio/resampler";
import { seededRandom } from "../tools/eval/random";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { concat } from "./helpers/typed-arrays";

/** Resamples `input` in chunks of the given sizes (the rest in one last chunk), then flushes. */
function resample(
  input: Float32Array,
  inputRate: number,
  outputRate = 16_000,
  chunkSizes: number[] = [],
): Float32Array {
  const resampler = new StreamingResampler(inputRate, outputRate);
  const parts: Float32Array[] = [];
  let at = 0;
  for (const size of chunkSizes) {
    if (at >= input.length) break;
    // slice, not subarray: passthrough returns its input, and the parts must not alias `input`.
    parts.push(resampler.process(input.slice(at, at + size)));
    at += size;
  }
  parts.push(resampler.process(input.slice(at)));
  parts.push(resampler.flush());
  const out = concat(parts, Float32Array);
  expect(resampler.outputSamples).toBe(out.length);
  return out;
}

function sine(rate: number, frequency: number, seconds: number, amplitude = 0.5): Float32Array {
  const x = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < x.length; i++)
    x[i] = amplitude * Math.sin((2 * Math.PI * frequency * i) / rate);
  return x;
}

/** White noise plus a tone, so every frequency and every tap matters. */
function noise(length: number, seed: number): Float32Array {
  const next = seededRandom(seed);
  const x = new Float32Array(length);
  for (let i = 0; i < x.length; i++) x[i] = 0.6 * (next() - 0.5) + 0.3 * Math.sin(i / 7);
  return x;
}

function rms(x: Float32Array, from = 0, to = x.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += (x[i] ?? 0) ** 2;
  return Math.sqrt(sum / (to - from));
}

const db = (ratio: number): number => 20 * Math.log10(ratio);

/** Gain in dB of a one-second tone, from the output's RMS away from the edges (10 % each). */
function toneGainDb(inputRate: number, frequency: number): number {
  const amplitude = 0.5;
  const out = resample(sine(inputRate, frequency, 1, amplitude), inputRate);
  const edge = Math.floor(out.length / 10);
  return db(rms(out, edge, out.length - edge) / (amplitude / Math.SQRT2));
}

/** Frequency from linearly interpolated upward zero crossings, in Hz. */
function zeroCrossingFrequency(x: Float32Array, rate: number, from: number, to: number): number {
  const crossings: number[] = [];
  for (let i = from + 1; i < to; i++) {
    const a = x[i - 1] ?? 0;
    const b = x[i] ?? 0;
    if (a < 0 && b >= 0) crossings.push(i - 1 + a / (a - b));
  }
  const first = crossings[0] ?? 0;
  const last = crossings.at(-1) ?? 0;
  return ((crossings.length - 1) * rate) / (last - first);
}

const bits = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);

const RATES = [
  8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 37_000, 44_100, 47_999, 48_000,
];

describe("StreamingResampler", () => {
  it("is bit-exact under any chunking, for many rates", () => {
    const next = seededRandom(42);
    const pairs: [number, number][] = [...RATES.map((r): [number, number] => [r, 16_000])];
    pairs.push([16_000, 48_000], [8_000, 44_100], [48_000, 8_000]);
    for (const [inputRate, outputRate] of pairs) {
      const input = noise(Math.round(inputRate * 0.3) + 7, inputRate);
      const whole = resample(input, inputRate, outputRate);
      expect(whole.length).toBeGreaterThan(0);
      for (let trial = 0; trial < 4; trial++) {
        // Sizes from 0 (an empty frame) up to a few hundred samples, some of them single samples.
        const sizes = Array.from({ length: 400 }, () =>
          next() < 0.2 ? Math.floor(next() * 3) : Math.floor(next() * 700),
        );
        const chunked = resample(input, inputRate, outputRate, sizes);
        expect(chunked.length, `${inputRate} → ${outputRate}`).toBe(whole.length);
        expect(bits(chunked), `${inputRate} → ${outputRate}`).toEqual(bits(whole));
      }
    }
  });

  it("emits ⌊N × out / in⌋ samples in total, and never more before flush", () => {
    for (const inputRate of RATES) {
      for (const n of [0, 1, 2, 3, 5, 100, 441, 1000, 4410, 44_101, 48_001]) {
        const resampler = new StreamingResampler(inputRate);
        const early = resampler.process(new Float32Array(n).fill(0.25));
        expect(early.length).toBeLessThanOrEqual(Math.floor((n * 16_000) / inputRate));
        resampler.flush();
        expect(resampler.outputSamples, `${n} samples at ${inputRate}`).toBe(
          Math.floor((n * 16_000) / inputRate),
        );
      }
    }
  });

  it("keeps a bounded history after a 20-s chunk (one Opus frame may decode to that)", () => {
    for (const inputRate of [48_000, 47_999, 8_000]) {
      const input = noise(20 * inputRate, inputRate);
      const resampler = new StreamingResampler(inputRate);
      const whole = concat(
        [resampler.process(input), resampler.process(input.slice(0, 960))],
        Float32Array,
      );
      // A slice plus the kernel's taps, not the chunk.
      expect(resampler.historyCapacity, `${inputRate}`).toBe(HISTORY_SAMPLES);
      const small = resample(
        concat([input, input.slice(0, 960)], Float32Array),
        inputRate,
        16_000,
        [...Array.from({ length: Math.ceil(input.length / 960) }, () => 960), 960],
      );
      expect(bits(whole), `${inputRate}`).toEqual(bits(small.subarray(0, whole.length)));
    }
  });

  it("holds back only a few milliseconds (the kernel's half-width)", () => {
    for (const inputRate of RATES) {
      const resampler = new StreamingResampler(inputRate);
      const out = resampler.process(new Float32Array(inputRate)); // one second
      // 16 periods of the lower rate: 1 ms at 16 kHz, 2 ms when upsampling from 8 kHz, + 1 sample.
      expect(16_000 - out.length, `${inputRate}`).toBeLessThanOrEqual(33);
    }
  });

  it("passes equal rates through untouched and without copying", () => {
    const resampler = new StreamingResampler(16_000);
    const input = noise(321, 1);
    expect(resampler.process(input)).toBe(input);
    expect(resampler.flush().length).toBe(0);
    expect(resampler.outputSamples).toBe(321);
  });

  it("keeps a constant signal exactly constant", () => {
    for (const inputRate of RATES) {
      const out = resample(new Float32Array(inputRate).fill(0.5), inputRate);
      // Away from the zero-padded edges every phase's taps sum to one.
      let worst = 0;
      for (let i = 100; i < out.length - 100; i++)
        worst = Math.max(worst, Math.abs((out[i] ?? 0) - 0.5));
      expect(worst, `${inputRate}`).toBeLessThan(1e-6);
    }
  });

  it("turns a 440 Hz sine at 44.1, 48 and 8 kHz into a 440 Hz sine at 16 kHz, in phase", () => {
    for (const inputRate of [44_100, 48_000, 8_000, 47_999, 11_025]) {
      const out = resample(sine(inputRate, 440, 1), inputRate);
      const from = 800;
      const to = out.length - 800;
      const frequency = zeroCrossingFrequency(out, 16_000, from, to);
      expect(Math.abs(frequency - 440), `${inputRate}: ${frequency} Hz`).toBeLessThan(0.01);
      // Output sample k is at time k / 16 000 s: compare with the ideal sine sample by sample.
      const ideal = sine(16_000, 440, out.length / 16_000);
      const error = new Float32Array(to - from).map(
        (_, i) => (out[from + i] ?? 0) - (ideal[from + i] ?? 0),
      );
      const snr = db(rms(ideal, from, to) / rms(error));
      expect(snr, `${inputRate}`).toBeGreaterThan(60);
    }
  });

  it("passes 7 kHz from 48 kHz and attenuates 10 kHz by at least 40 dB", () => {
    for (const inputRate of [48_000, 44_100, 47_999]) {
      expect(toneGainDb(inputRate, 7_000), `${inputRate}`).toBeGreaterThan(-0.5);
      expect(toneGainDb(inputRate, 10_000), `${inputRate}`).toBeLessThan(-40);
    }
  });

  it("has a flat passband and a stop band of at least 78 dB above 9.3 kHz", () => {
    const report: string[] = [];
    for (const inputRate of [48_000, 44_100, 47_999, 22_050]) {
      let worstPass = 0;
      for (let f = 100; f <= 6_500; f += 400)
        worstPass = Math.min(worstPass, toneGainDb(inputRate, f));
      let worstStop = -Infinity;
      let worstAt = 0;
      for (let f = 9_300; f < inputRate / 2; f += 271) {
        const gain = toneGainDb(inputRate, f);
        if (gain > worstStop) [worstStop, worstAt] = [gain, f];
      }
      report.push(
        `${inputRate}: pass ≥ ${worstPass.toFixed(3)} dB, stop ≤ ${worstStop.toFixed(1)} dB @ ${worstAt} Hz`,
      );
      expect(worstPass, `${inputRate}`).toBeGreaterThan(-0.05);
      expect(worstStop, `${inputRate}`).toBeLessThan(-78);
    }
    console.info(`resampler response: ${report.join("; ")}`);
  });

  it("adds no images when upsampling 8 kHz", () => {
    // A 3 kHz tone at 8 kHz has its first image at 5 kHz; the output must be the pure tone.
    const out = resample(sine(8_000, 3_000, 1), 8_000);
    const ideal = sine(16_000, 3_000, out.length / 16_000);
    const from = 800;
    const to = out.length - 800;
    const error = new Float32Array(to - from).map(
      (_, i) => (out[from + i] ?? 0) - (ideal[from + i] ?? 0),
    );
    expect(db(rms(ideal, from, to) / rms(error))).toBeGreaterThan(60);
  });

  it("brings wcpp_jfk.wav back from 48 kHz close to the original (SNR > 30 dB)", async () => {
    const wav = await wavFixture("wcpp_jfk.wav");
    expect(wav.sampleRate).toBe(16_000);
    const original = pcm16ToFloat(wav.pcm);
    const next = seededRandom(9);
    const sizes = Array.from({ length: 5_000 }, () => 1 + Math.floor(next() * 1_000));
    const up = resample(original, 16_000, 48_000, sizes);
    expect(up.length).toBe(original.length * 3);
    const back = resample(up, 48_000, 16_000, sizes);
    expect(back.length).toBe(original.length);
    const edge = 1_600; // 0.1 s
    const error = new Float32Array(original.length - 2 * edge).map(
      (_, i) => (back[edge + i] ?? 0) - (original[edge + i] ?? 0),
    );
    const snr = db(rms(original, edge, original.length - edge) / rms(error));
    console.info(`wcpp_jfk 16 → 48 → 16 kHz: SNR ${snr.toFixed(1)} dB`);
    expect(snr).toBeGreaterThan(30);
  });

  it("refuses rates outside 8000..48000 and non-integers, and process after flush", () => {
    expect(() => new StreamingResampler(7_999)).toThrow(RangeError);
    expect(() => new StreamingResampler(48_001)).toThrow(RangeError);
    expect(() => new StreamingResampler(44_100.5)).toThrow(RangeError);
    expect(() => new StreamingResampler(44_100, 0)).toThrow(RangeError);
    const resampler = new StreamingResampler(44_100);
    resampler.flush();
    expect(() => resampler.process(new Float32Array(10))).toThrow();
  });
});
