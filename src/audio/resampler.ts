/**
 * Streaming band-limited resampling (to 16 kHz for Silero and Whisper) of one session's audio.
 *
 * Method: a Kaiser-windowed sinc interpolator whose cutoff sits at the Nyquist frequency of the
 * lower of the two rates, so that downsampling (48 kHz → 16 kHz) removes everything the output
 * cannot represent instead of folding it back as aliases, and upsampling (8 kHz → 16 kHz) adds
 * no images above the input's band. Output sample k sits at input time t_k = k × in / out
 * (input samples; output sample 0 is aligned with input sample 0, no delay), and is
 *
 *     y[k] = Σ_j x[n + j] × h(j − f),   n = ⌊t_k⌋, f = t_k − n,   j = −J+1 … J
 *
 * where h is the windowed sinc, 2J taps wide. The ratio out/in is reduced to L/M, so f is always
 * p / L for an integer phase p. When L × 2J is small (every common rate: 44100 → 160 phases,
 * 22050 → 320, 11025 → 640, 8000 → 2, 48000 → 1), the taps of every phase are precomputed (a
 * polyphase table); otherwise (rates such as 47999, where L = 16000) h is read from a finely
 * sampled copy of the kernel with linear interpolation between its points.
 *
 * Each output depends only on its phase (an integer) and on input samples, never on where chunks
 * began, so any chunking of an input yields bit-identical output. Samples before the stream
 * starts and after it ends (at `flush`) are zeros.
 *
 * Output length: after `flush`, exactly ⌊N × out / in⌋ samples for N input samples, i.e. output
 * sample k exists when the interval it stands for, [t_k, t_{k+1}), lies within the input.
 *
 * Measured (node 22, one-second tones, RMS of the output away from its edges; the test checks the
 * same way): 48000 → 16000 uses 2J = 96 taps per output (44100: 90, 8000 → 16000: 32). Passband
 * flat within 0.01 dB to 6.5 kHz, -0.06 dB at 7 kHz, -1.2 dB at 7.5 kHz; -17.7 dB at 8.5 kHz,
 * -43 dB at 9 kHz, and a stop band of at least 80.0 dB from 9.3 kHz to 24 kHz (worst tone
 * 9337 Hz). Cost in workerd (vitest, on a loaded 2-core machine), per 20 ms frame of 48 kHz
 * audio: 0.08–0.14 ms through the polyphase table, 0.2–0.4 ms through fractional-position
 * evaluation (47999 Hz).
 */

import { evaluateAt, type Kernel, kernelFor } from "./resampler-kernel";

/**
 * Input history, in floats: a chunk is resampled in slices of at most MAX_SLICE_SAMPLES, and
 * between slices the resampler keeps at most 2J samples (J ≤ 96, at 48 → 8 kHz; 48 at the
 * session's 16 kHz output), so MAX_SLICE_SAMPLES + 256 always fits (17 KiB a session). Without the
 * slices the history grew to the largest chunk seen and stayed: one Opus frame may decode to 20 s
 * (960 000 samples at 48 kHz), 3.7 MiB kept for the session's life.
 */
export const MAX_SLICE_SAMPLES = 4096;
export const HISTORY_SAMPLES = MAX_SLICE_SAMPLES + 256;

export const DEFAULT_OUTPUT_RATE = 16_000;
/** Rates this resampler accepts (the protocol's `sample_rate` range), in Hz. */
export const MIN_SAMPLE_RATE = 8_000;
export const MAX_SAMPLE_RATE = 48_000;

export class StreamingResampler {
  readonly inputRate: number;
  readonly outputRate: number;
  readonly #kernel: Kernel | null;
  /** Input history: absolute input index of `#history[0]`, and how many samples it holds. */
  #history: Float32Array;
  #historyStart: number;
  #historyLength: number;
  /** Input samples received so far. */
  #received = 0;
  /** Next output k, as n = ⌊k M / L⌋ and phase p = k M mod L (integers: exact for any length). */
  #n = 0;
  #phase = 0;
  #emitted = 0;
  #flushed = false;

  constructor(inputRate: number, outputRate: number = DEFAULT_OUTPUT_RATE) {
    for (const rate of [inputRate, outputRate]) {
      if (!Number.isInteger(rate) || rate < MIN_SAMPLE_RATE || rate > MAX_SAMPLE_RATE) {
        throw new RangeError(
          `sample rate must be an integer in ${MIN_SAMPLE_RATE}..${MAX_SAMPLE_RATE}, got ${rate}`,
        );
      }
    }
    this.inputRate = inputRate;
    this.outputRate = outputRate;
    this.#kernel = inputRate === outputRate ? null : kernelFor(inputRate, outputRate);
    const J = this.#kernel?.J ?? 0;
    // The J − 1 zeros before the stream starts, which output 0's left taps read.
    this.#history = new Float32Array(HISTORY_SAMPLES);
    this.#historyStart = -(J - 1);
    this.#historyLength = Math.max(0, J - 1);
  }

  /** Output samples produced so far (for offsets). */
  get outputSamples(): number {
    return this.#emitted;
  }

  /** Floats allocated for input history: what the resampler keeps between chunks. */
  get historyCapacity(): number {
    return this.#history.length;
  }

  /**
   * Resamples the next chunk. With equal rates the input array itself is returned (no copy):
   * callers must not modify it afterwards.
   */
  process(input: Float32Array): Float32Array {
    if (this.#flushed) throw new Error("StreamingResampler.process called after flush");
    const kernel = this.#kernel;
    if (kernel === null) {
      this.#received += input.length;
      this.#emitted += input.length;
      return input;
    }
    if (input.length <= MAX_SLICE_SAMPLES) return this.#resample(kernel, input);
    // Any chunking gives the same output (module comment), so slices change nothing but memory.
    const most = floorDiv((this.#received + input.length) * kernel.L, kernel.M) - this.#emitted;
    const out = new Float32Array(most);
    let length = 0;
    for (let at = 0; at < input.length; at += MAX_SLICE_SAMPLES) {
      const part = this.#resample(kernel, input.subarray(at, at + MAX_SLICE_SAMPLES));
      out.set(part, length);
      length += part.length;
    }
    return out.subarray(0, length);
  }

  #resample(kernel: Kernel, input: Float32Array): Float32Array {
    this.#received += input.length;
    this.#append(input);
    // Outputs whose last tap, input n + J, has arrived: n + J ≤ received − 1, i.e.
    // k M / L < received − J; never more than the final length rule allows.
    const ready = Math.max(0, ceilDiv((this.#received - kernel.J) * kernel.L, kernel.M));
    const allowed = floorDiv(this.#received * kernel.L, kernel.M);
    return this.#emit(kernel, Math.min(ready, allowed) - this.#emitted);
  }

  /** End of stream: emits the samples still held back, reading zeros past the input's end. */
  flush(): Float32Array {
    if (this.#flushed) return new Float32Array(0);
    this.#flushed = true;
    const kernel = this.#kernel;
    if (kernel === null) return new Float32Array(0);
    this.#append(new Float32Array(kernel.J + 1));
    return this.#emit(kernel, floorDiv(this.#received * kernel.L, kernel.M) - this.#emitted);
  }

  /** Appends input, first dropping history that no future output reads (before n − J + 1). */
  #append(input: Float32Array): void {
    const J = this.#kernel?.J ?? 0;
    const drop = Math.max(0, Math.min(this.#historyLength, this.#n - J + 1 - this.#historyStart));
    const keep = this.#historyLength - drop;
    let target = this.#history;
    if (keep + input.length > target.length) {
      target = new Float32Array(Math.max(2 * target.length, keep + input.length));
    }
    if (target === this.#history) target.copyWithin(0, drop, this.#historyLength);
    else target.set(this.#history.subarray(drop, this.#historyLength));
    target.set(input, keep);
    this.#history = target;
    this.#historyStart += drop;
    this.#historyLength = keep + input.length;
  }

  #emit(kernel: Kernel, count: number): Float32Array {
    const out = new Float32Array(Math.max(0, count));
    const { L, M, J, taps, polyphase, fine, slope } = kernel;
    const history = this.#history;
    const nStep = Math.floor(M / L);
    const phaseStep = M % L;
    let n = this.#n;
    let phase = this.#phase;
    for (let k = 0; k < out.length; k++) {
      const first = n - J + 1 - this.#historyStart;
      let acc = 0;
      if (polyphase !== null) {
        const row = phase * taps;
        for (let i = 0; i < taps; i++) acc += (history[first + i] ?? 0) * (polyphase[row + i] ?? 0);
      } else if (fine !== null && slope !== null) {
        acc = evaluateAt(history, first, J, phase / L, fine, slope);
      }
      out[k] = acc;
      n += nStep;
      phase += phaseStep;
      if (phase >= L) {
        phase -= L;
        n += 1;
      }
    }
    this.#n = n;
    this.#phase = phase;
    this.#emitted += out.length;
    return out;
  }
}

/**
 * ⌊a / b⌋ for integers, b > 0, a possibly negative, exact while |a| < 2^53 (a day of 48 kHz
 * input × L ≤ 16 000 is 6.6e13): the remainder is exact, and so is dividing a multiple.
 */
function floorDiv(a: number, b: number): number {
  return (a - (((a % b) + b) % b)) / b;
}

function ceilDiv(a: number, b: number): number {
  return -floorDiv(-a, b);
}
