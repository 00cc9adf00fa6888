import { describe, expect, it } from "vitest";
import { HOP_LENGTH, logMelSpectrogram, melFilters, N_FFT, N_MELS } from "../src/stt/whisper/mel";
import reference from "./data/whisper-mel-jfk.json";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";

/*
 * Two independent checks of src/stt/whisper/mel.ts on a real clip (wcpp_jfk.wav, 11 s):
 * 1. test/data/whisper-mel-jfk.json holds values computed by transformers.js' own
 *    WhisperFeatureExtractor (@huggingface/transformers 4.3.1, run in Node by
 *    tools/eval/whisper-mel-reference.ts): its own STFT, mel filterbank and log scaling.
 * 2. A float64 direct DFT here (no FFT, the mirrored signal built explicitly) checks the FFT,
 *    windowing and padding; it shares only the mel filterbank with the code under test.
 */

/** Agreement required with the reference: features are O(1), float32 has ~1e-7 resolution. */
const TOLERANCE = 1e-4;

function minOf(values: Float32Array): number {
  let min = Number.POSITIVE_INFINITY;
  for (const value of values) min = Math.min(min, value);
  return min;
}

async function jfk(): Promise<Float32Array> {
  return pcm16ToFloat((await wavFixture(reference.clip)).pcm);
}

describe("Whisper log-mel spectrogram", () => {
  it("matches transformers.js' WhisperFeatureExtractor within 1e-4", async () => {
    const audio = await jfk();
    expect(audio.length).toBe(reference.samples);
    let compared = 0;
    let worst = 0;
    for (const window of reference.windows) {
      const features = logMelSpectrogram(audio.subarray(window.offset), window.frames);
      expect(features.length).toBe(N_MELS * window.frames);
      window.select.forEach((t, i) => {
        const expected = window.values[i] ?? [];
        expect(expected.length).toBe(N_MELS);
        expected.forEach((value, m) => {
          const actual = features[m * window.frames + t] ?? Number.NaN;
          worst = Math.max(worst, Math.abs(actual - value));
          compared++;
        });
      });
    }
    expect(compared).toBe(30 * N_MELS);
    expect(worst).toBeLessThan(TOLERANCE);
  });

  it("matches a float64 direct DFT of the mirrored, windowed frames", async () => {
    const audio = (await jfk()).subarray(40_000, 40_000 + 300 * HOP_LENGTH);
    const frames = 300;
    const features = logMelSpectrogram(audio, frames);
    // torch.stft(center=True, pad_mode="reflect"): mirror 200 samples at each end, edge excluded.
    const pad = N_FFT / 2;
    const padded = new Float64Array(audio.length + 2 * pad);
    for (let i = 0; i < padded.length; i++) {
      let at = i - pad;
      if (at < 0) at = -at;
      if (at >= audio.length) at = 2 * (audio.length - 1) - at;
      padded[i] = audio[at] ?? Number.NaN;
    }
    const filters = melFilters();
    // The clamp floor is (global max − 8); read it back from the features' minimum.
    const floor = minOf(features);
    let checked = 0;
    for (const t of [0, 1, 2, 77, 150, 298, 299]) {
      const power = new Float64Array(N_FFT / 2 + 1);
      for (let k = 0; k <= N_FFT / 2; k++) {
        let re = 0;
        let im = 0;
        for (let n = 0; n < N_FFT; n++) {
          const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / N_FFT);
          const x = (padded[t * HOP_LENGTH + n] ?? Number.NaN) * w;
          re += x * Math.cos((2 * Math.PI * k * n) / N_FFT);
          im -= x * Math.sin((2 * Math.PI * k * n) / N_FFT);
        }
        power[k] = re * re + im * im;
      }
      filters.forEach(({ first, weights }, m) => {
        let energy = 0;
        weights.forEach((weight, j) => {
          energy += weight * (power[first + j] ?? Number.NaN);
        });
        const expected = Math.max((Math.log10(Math.max(energy, 1e-10)) + 4) / 4, floor);
        expect(Math.abs((features[m * frames + t] ?? Number.NaN) - expected)).toBeLessThan(1e-5);
        checked++;
      });
    }
    expect(checked).toBe(7 * N_MELS);
  });

  it("pads short audio with silence and writes into a caller's buffer", async () => {
    const audio = (await jfk()).subarray(0, 16_000);
    const out = new Float32Array(N_MELS * 200).fill(Number.NaN);
    expect(logMelSpectrogram(audio, 200, out)).toBe(out);
    expect(out.every(Number.isFinite)).toBe(true);
    // Frames 102 onwards see only zero padding: every bin is at the floor (the minimum).
    const floor = minOf(out);
    for (let m = 0; m < N_MELS; m++) expect(out[m * 200 + 150]).toBe(floor);
    // The same first 100 frames as the 3000-frame window up to the clamp floor, which depends
    // on the window's maximum: compare only where both are above their floors.
    const full = logMelSpectrogram(audio, 3000);
    const fullFloor = minOf(full);
    let same = 0;
    for (let m = 0; m < N_MELS; m++) {
      for (let t = 0; t < 100; t++) {
        const a = out[m * 200 + t] ?? Number.NaN;
        const b = full[m * 3000 + t] ?? Number.NaN;
        if (a > floor && b > fullFloor) {
          expect(a).toBeCloseTo(b, 6);
          same++;
        }
      }
    }
    expect(same).toBeGreaterThan(1000);
  });

  it("refuses a frame count it cannot produce", () => {
    const audio = new Float32Array(1600);
    expect(() => logMelSpectrogram(audio, 0)).toThrow(RangeError);
    expect(() => logMelSpectrogram(audio, 10.5)).toThrow(RangeError);
    expect(() => logMelSpectrogram(audio, 10, new Float32Array(10))).toThrow(RangeError);
  });
});
