/**
 * Power spectrum of a real frame by FFT, for Whisper's 400-point frames.
 *
 * 400 is not a power of two, so this is a mixed-radix Stockham FFT (radices 4, 2 and 5 written
 * out, any other prime by a direct DFT) on the frame packed as 200 complex numbers (even samples real, odd samples
 * imaginary), then one pass that separates the two interleaved half-spectra: a real FFT. Stockham
 * ordering needs no bit reversal and ping-pongs between two buffers that live in the plan, so a
 * call allocates nothing. All arithmetic is float64: JS numbers are doubles anyway, and it keeps
 * quiet bins (60 dB below a frame's peak) accurate after the log.
 */

/** A precomputed real FFT of one size; `power` reuses its buffers, so a plan is not reentrant. */
export interface RealFftPlan {
  /** Frame length in samples (even). */
  readonly size: number;
  /** Writes |X[k]|² for k = 0 … size/2 into `out` (size/2 + 1 values) from `frame` (size). */
  power(frame: Float64Array, out: Float64Array): void;
}

interface Stage {
  radix: number;
  /** Butterflies per stride group: the sub-transform length divided by the radix. */
  m: number;
  /** Stride between butterfly inputs of consecutive sub-transforms (product of earlier radices). */
  stride: number;
  /** w^(q k) for butterfly q < m and output k < radix, at [q × radix + k]. */
  twRe: Float64Array;
  twIm: Float64Array;
}

/** Radices tried in order; 4 first because a radix-4 butterfly needs no multiplications. */
const PREFERRED_RADICES = [4, 2, 5, 3];

function factorize(n: number): number[] {
  const radices: number[] = [];
  let rest = n;
  for (const radix of PREFERRED_RADICES) {
    while (rest % radix === 0) {
      radices.push(radix);
      rest /= radix;
    }
  }
  for (let p = 7; rest > 1; p += 2) {
    while (rest % p === 0) {
      radices.push(p);
      rest /= p;
    }
  }
  return radices;
}

/** Ping-pong buffers of the complex transform: the input goes into re0/im0. */
interface Work {
  re0: Float64Array;
  im0: Float64Array;
  re1: Float64Array;
  im1: Float64Array;
  /** Scratch for the generic radix butterfly. */
  gRe: Float64Array;
  gIm: Float64Array;
}

export function createRealFftPlan(size: number): RealFftPlan {
  if (!Number.isInteger(size) || size < 4 || size % 2 !== 0) {
    throw new RangeError(`real FFT size must be an even integer >= 4, got ${size}`);
  }
  const half = size / 2;
  const stages: Stage[] = [];
  let length = half;
  let stride = 1;
  for (const radix of factorize(half)) {
    const m = length / radix;
    const twRe = new Float64Array(m * radix);
    const twIm = new Float64Array(m * radix);
    for (let q = 0; q < m; q++) {
      for (let k = 0; k < radix; k++) {
        const angle = (-2 * Math.PI * q * k) / length;
        twRe[q * radix + k] = Math.cos(angle);
        twIm[q * radix + k] = Math.sin(angle);
      }
    }
    stages.push({ radix, m, stride, twRe, twIm });
    length = m;
    stride *= radix;
  }
  // exp(-2πi k / size) for k ≤ half: the twiddles that split the packed spectrum.
  const splitRe = new Float64Array(half + 1);
  const splitIm = new Float64Array(half + 1);
  for (let k = 0; k <= half; k++) {
    splitRe[k] = Math.cos((2 * Math.PI * k) / size);
    splitIm[k] = -Math.sin((2 * Math.PI * k) / size);
  }
  const maxRadix = Math.max(1, ...stages.map((s) => s.radix));
  const work: Work = {
    re0: new Float64Array(half),
    im0: new Float64Array(half),
    re1: new Float64Array(half),
    im1: new Float64Array(half),
    gRe: new Float64Array(maxRadix),
    gIm: new Float64Array(maxRadix),
  };

  function power(frame: Float64Array, out: Float64Array): void {
    if (frame.length < size || out.length < half + 1) {
      throw new RangeError(`FFT buffers too small: frame ${frame.length}, out ${out.length}`);
    }
    const { re0, im0, re1, im1 } = work;
    for (let n = 0; n < half; n++) {
      re0[n] = frame[2 * n] as number;
      im0[n] = frame[2 * n + 1] as number;
    }
    let inFirst = true;
    for (const stage of stages) {
      if (inFirst) runStage(stage, re0, im0, re1, im1, work);
      else runStage(stage, re1, im1, re0, im0, work);
      inFirst = !inFirst;
    }
    const zRe = inFirst ? re0 : re1;
    const zIm = inFirst ? im0 : im1;
    // X[k] = E[k] + W^k O[k], with E = (Z[k] + conj Z[−k]) / 2 and O = (Z[k] − conj Z[−k]) / 2i.
    for (let k = 0; k <= half; k++) {
      const i = k === half ? 0 : k;
      const j = k === 0 ? 0 : half - k;
      const zr = zRe[i] as number;
      const zi = zIm[i] as number;
      const cr = zRe[j] as number;
      const ci = -(zIm[j] as number);
      const er = (zr + cr) / 2;
      const ei = (zi + ci) / 2;
      // d / 2i with d = Z[k] − conj Z[−k]: (d.im − i d.re) / 2
      const or = (zi - ci) / 2;
      const oi = -(zr - cr) / 2;
      const wr = splitRe[k] as number;
      const wi = splitIm[k] as number;
      const xr = er + wr * or - wi * oi;
      const xi = ei + wr * oi + wi * or;
      out[k] = xr * xr + xi * xi;
    }
  }

  return { size, power };
}

// Radix-5 constants: cos and sin of 2π/5 and 4π/5.
const C1 = Math.cos((2 * Math.PI) / 5);
const C2 = Math.cos((4 * Math.PI) / 5);
const S1 = Math.sin((2 * Math.PI) / 5);
const S2 = Math.sin((4 * Math.PI) / 5);

/**
 * One Stockham decimation-in-frequency stage: for each butterfly q < m and each of the `stride`
 * interleaved sub-transforms s, read inputs x[s + stride (q + m j)], j < radix, and write
 * y[s + stride (radix q + k)] = w^(q k) Σ_j x_j ω^(j k), where w is the sub-transform's root of
 * unity and ω = exp(−2πi / radix).
 */
function runStage(
  stage: Stage,
  xRe: Float64Array,
  xIm: Float64Array,
  yRe: Float64Array,
  yIm: Float64Array,
  work: Work,
): void {
  const { radix, m, stride, twRe, twIm } = stage;
  const span = stride * m;
  for (let q = 0; q < m; q++) {
    const tw = q * radix;
    for (let s = 0; s < stride; s++) {
      const src = s + stride * q;
      const dst = s + stride * radix * q;
      if (radix === 2) {
        const ar = xRe[src] as number;
        const ai = xIm[src] as number;
        const br = xRe[src + span] as number;
        const bi = xIm[src + span] as number;
        yRe[dst] = ar + br;
        yIm[dst] = ai + bi;
        twiddle(yRe, yIm, dst + stride, ar - br, ai - bi, twRe[tw + 1], twIm[tw + 1]);
      } else if (radix === 4) {
        const x0r = xRe[src] as number;
        const x0i = xIm[src] as number;
        const x1r = xRe[src + span] as number;
        const x1i = xIm[src + span] as number;
        const x2r = xRe[src + 2 * span] as number;
        const x2i = xIm[src + 2 * span] as number;
        const x3r = xRe[src + 3 * span] as number;
        const x3i = xIm[src + 3 * span] as number;
        const s02r = x0r + x2r;
        const s02i = x0i + x2i;
        const d02r = x0r - x2r;
        const d02i = x0i - x2i;
        const s13r = x1r + x3r;
        const s13i = x1i + x3i;
        // −i (x1 − x3)
        const m13r = x1i - x3i;
        const m13i = x3r - x1r;
        yRe[dst] = s02r + s13r;
        yIm[dst] = s02i + s13i;
        twiddle(yRe, yIm, dst + stride, d02r + m13r, d02i + m13i, twRe[tw + 1], twIm[tw + 1]);
        twiddle(yRe, yIm, dst + 2 * stride, s02r - s13r, s02i - s13i, twRe[tw + 2], twIm[tw + 2]);
        twiddle(yRe, yIm, dst + 3 * stride, d02r - m13r, d02i - m13i, twRe[tw + 3], twIm[tw + 3]);
      } else if (radix === 5) {
        const x0r = xRe[src] as number;
        const x0i = xIm[src] as number;
        const x1r = xRe[src + span] as number;
        const x1i = xIm[src + span] as number;
        const x2r = xRe[src + 2 * span] as number;
        const x2i = xIm[src + 2 * span] as number;
        const x3r = xRe[src + 3 * span] as number;
        const x3i = xIm[src + 3 * span] as number;
        const x4r = xRe[src + 4 * span] as number;
        const x4i = xIm[src + 4 * span] as number;
        const a1r = x1r + x4r;
        const a1i = x1i + x4i;
        const b1r = x1r - x4r;
        const b1i = x1i - x4i;
        const a2r = x2r + x3r;
        const a2i = x2i + x3i;
        const b2r = x2r - x3r;
        const b2i = x2i - x3i;
        // Outputs 1/4 and 2/3 share a real part and differ by the sign of an imaginary term.
        const p1r = x0r + C1 * a1r + C2 * a2r;
        const p1i = x0i + C1 * a1i + C2 * a2i;
        const p2r = x0r + C2 * a1r + C1 * a2r;
        const p2i = x0i + C2 * a1i + C1 * a2i;
        const q1r = S1 * b1r + S2 * b2r;
        const q1i = S1 * b1i + S2 * b2i;
        const q2r = S2 * b1r - S1 * b2r;
        const q2i = S2 * b1i - S1 * b2i;
        yRe[dst] = x0r + a1r + a2r;
        yIm[dst] = x0i + a1i + a2i;
        // p − i q = (p.re + q.im) + i (p.im − q.re)
        twiddle(yRe, yIm, dst + stride, p1r + q1i, p1i - q1r, twRe[tw + 1], twIm[tw + 1]);
        twiddle(yRe, yIm, dst + 2 * stride, p2r + q2i, p2i - q2r, twRe[tw + 2], twIm[tw + 2]);
        twiddle(yRe, yIm, dst + 3 * stride, p2r - q2i, p2i + q2r, twRe[tw + 3], twIm[tw + 3]);
        twiddle(yRe, yIm, dst + 4 * stride, p1r - q1i, p1i + q1r, twRe[tw + 4], twIm[tw + 4]);
      } else {
        genericButterfly(radix, xRe, xIm, src, span, work);
        for (let k = 0; k < radix; k++) {
          twiddle(
            yRe,
            yIm,
            dst + k * stride,
            work.gRe[k] as number,
            work.gIm[k] as number,
            twRe[tw + k],
            twIm[tw + k],
          );
        }
      }
    }
  }
}

/** y[at] = (re + i im) × (wr + i wi). */
function twiddle(
  yRe: Float64Array,
  yIm: Float64Array,
  at: number,
  re: number,
  im: number,
  wr: number | undefined,
  wi: number | undefined,
): void {
  const cr = wr ?? 1;
  const ci = wi ?? 0;
  yRe[at] = re * cr - im * ci;
  yIm[at] = re * ci + im * cr;
}

/** A direct radix-point DFT of x[src + j × span], j < radix, into work.gRe/gIm. */
function genericButterfly(
  radix: number,
  xRe: Float64Array,
  xIm: Float64Array,
  src: number,
  span: number,
  work: Work,
): void {
  for (let k = 0; k < radix; k++) {
    let sr = 0;
    let si = 0;
    for (let j = 0; j < radix; j++) {
      const angle = (-2 * Math.PI * ((j * k) % radix)) / radix;
      const cr = Math.cos(angle);
      const ci = Math.sin(angle);
      const vr = xRe[src + j * span] as number;
      const vi = xIm[src + j * span] as number;
      sr += vr * cr - vi * ci;
      si += vr * ci + vi * cr;
    }
    work.gRe[k] = sr;
    work.gIm[k] = si;
  }
}
