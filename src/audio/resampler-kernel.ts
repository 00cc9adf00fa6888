/**
 * The resampler's filter: a Kaiser-windowed sinc whose cutoff sits at the Nyquist frequency of
 * the lower rate, built once per rate pair and shared read-only by every session of the isolate
 * (resampler.ts explains the method and its measured response). Either a polyphase table (every
 * phase's taps precomputed) or, for rate pairs with too many phases, a finely sampled copy of the
 * kernel read with linear interpolation (`evaluateAt`).
 */

/**
 * Half-width of the kernel in periods of the lower rate (zero crossings of the sinc on each
 * side). Sets the transition band, measured at 7–9.3 kHz when the lower rate is 16 kHz; twice
 * as many would halve it at twice the cost, for content (7–9 kHz) that speech models barely use.
 */
const HALF_WIDTH_ZERO_CROSSINGS = 16;
/** Kaiser β for ≈ 80 dB side lobes: 0.1102 × (80 − 8.7) ≈ 7.86 (Kaiser's formula). */
const KAISER_BETA = 7.86;
/**
 * Largest precomputed polyphase table: 32 768 coefficients × 8 bytes = 256 KiB per rate pair
 * (float64: measured ~25 % faster than float32 in V8). The largest common case,
 * 11025 → 16000, needs 640 phases × 32 taps = 20 480 (160 KiB).
 */
const MAX_POLYPHASE_COEFFICIENTS = 32_768;
/**
 * Points per input sample in the kernel copy used by fractional-position evaluation. Linear
 * interpolation between points 1/512 apart errs by about (π/512)² / 8 ≈ 5e-6 of the kernel's
 * peak (-106 dB), below the window's own side lobes. Size: 2 tables × (J × 512 + 1) × 4 bytes,
 * 192 KiB for J = 48 (47999 → 16000).
 */
const KERNEL_POINTS_PER_SAMPLE = 512;
/**
 * Kernels are shared read-only by every session of an isolate with the same rates; at most 8,
 * so at most 8 × 256 KiB = 2 MiB of tables per isolate.
 */
const MAX_CACHED_KERNELS = 8;

/** Taps for one rate pair; immutable once built, never holds per-session state. */
export interface Kernel {
  /** Reduced ratio out/in = L/M. */
  L: number;
  M: number;
  /** Taps per output: 2J, covering input samples n − J + 1 … n + J. */
  J: number;
  taps: number;
  /** L × taps coefficients (row p = phase p / L), each row summing to 1; or null. */
  polyphase: Float64Array | null;
  /**
   * Without a polyphase table: h(τ) at τ = i / KERNEL_POINTS_PER_SAMPLE for i = 0 … J × points,
   * and the slope to the next point (fine[i + 1] − fine[i]) for linear interpolation.
   */
  fine: Float32Array | null;
  slope: Float32Array | null;
}

const kernels = new Map<string, Kernel>();

export function kernelFor(inputRate: number, outputRate: number): Kernel {
  const key = `${inputRate}:${outputRate}`;
  let kernel = kernels.get(key);
  if (kernel === undefined) {
    kernel = buildKernel(inputRate, outputRate);
    if (kernels.size >= MAX_CACHED_KERNELS) {
      // Evict the oldest entry; sessions that hold it keep their reference.
      const oldest = kernels.keys().next();
      if (!oldest.done) kernels.delete(oldest.value);
    }
    kernels.set(key, kernel);
  }
  return kernel;
}

function buildKernel(inputRate: number, outputRate: number): Kernel {
  const divisor = gcd(inputRate, outputRate);
  const L = outputRate / divisor;
  const M = inputRate / divisor;
  // Cutoff as a fraction of the input's Nyquist frequency: 1 when upsampling.
  const scale = Math.min(1, outputRate / inputRate);
  // Half-width in input samples.
  const width = HALF_WIDTH_ZERO_CROSSINGS / scale;
  const J = Math.ceil(width);
  const taps = 2 * J;
  const i0Beta = besselI0(KAISER_BETA);
  const h = (tau: number): number => {
    const r = Math.abs(tau) / width;
    if (r >= 1) return 0;
    const window = besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / i0Beta;
    const x = scale * tau;
    const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    return scale * sinc * window;
  };

  if (L * taps <= MAX_POLYPHASE_COEFFICIENTS) {
    const polyphase = new Float64Array(L * taps);
    const row = new Float64Array(taps);
    for (let p = 0; p < L; p++) {
      const frac = p / L;
      let sum = 0;
      for (let i = 0; i < taps; i++) {
        row[i] = h(i - J + 1 - frac);
        sum += row[i] ?? 0;
      }
      // Unit gain at DC in every phase, so a constant input stays flat.
      for (let i = 0; i < taps; i++) polyphase[p * taps + i] = (row[i] ?? 0) / sum;
    }
    return { L, M, J, taps, polyphase, fine: null, slope: null };
  }
  const points = J * KERNEL_POINTS_PER_SAMPLE + 1;
  const fine = new Float32Array(points);
  const slope = new Float32Array(points);
  for (let i = 0; i < points; i++) fine[i] = h(i / KERNEL_POINTS_PER_SAMPLE);
  for (let i = 0; i < points; i++)
    slope[i] = h((i + 1) / KERNEL_POINTS_PER_SAMPLE) - (fine[i] ?? 0);
  return { L, M, J, taps, polyphase: null, fine, slope };
}

/**
 * One output by fractional-position evaluation, at fraction `frac` past input `first + J − 1`.
 * Tap i < J sits at |τ| = (J − 1 − i) + frac, tap i ≥ J at (i − J) + (1 − frac): on each side
 * consecutive taps are exactly KERNEL_POINTS_PER_SAMPLE points apart, so one interpolation
 * weight serves a whole side. Normalised by the taps' sum (unit gain at DC), as the table rows.
 */
export function evaluateAt(
  history: Float32Array,
  first: number,
  J: number,
  frac: number,
  fine: Float32Array,
  slope: Float32Array,
): number {
  const step = KERNEL_POINTS_PER_SAMPLE;
  let acc = 0;
  let sum = 0;
  const leftAt = frac * step;
  const leftBase = Math.floor(leftAt);
  const leftWeight = leftAt - leftBase;
  for (let i = 0; i < J; i++) {
    const point = leftBase + (J - 1 - i) * step;
    const c = (fine[point] ?? 0) + leftWeight * (slope[point] ?? 0);
    acc += (history[first + i] ?? 0) * c;
    sum += c;
  }
  const rightAt = (1 - frac) * step;
  const rightBase = Math.floor(rightAt);
  const rightWeight = rightAt - rightBase;
  for (let i = J; i < 2 * J; i++) {
    const point = rightBase + (i - J) * step;
    const c = (fine[point] ?? 0) + rightWeight * (slope[point] ?? 0);
    acc += (history[first + i] ?? 0) * c;
    sum += c;
  }
  return acc / sum;
}

function gcd(a: number, b: number): number {
  let x = a;
  let y = b;
  while (y !== 0) [x, y] = [y, x % y];
  return x;
}

/** Modified Bessel function of the first kind, order 0 (power series; converges for all x). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const quarterSquare = (x * x) / 4;
  for (let k = 1; term > sum * 1e-17; k++) {
    term *= quarterSquare / (k * k);
    sum += term;
  }
  return sum;
}
