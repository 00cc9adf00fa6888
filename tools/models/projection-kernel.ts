/**
 * The vocabulary projection's WebAssembly kernel, assembled here byte by byte (no toolchain):
 * `node tools/models/projection-kernel.ts --write` writes src/stt/whisper/projection.wasm, which
 * is committed (workerd imports it as a compiled module and never compiles bytes at run time;
 * `npm run check` runs `--check`, which fails if the committed file is not what this assembles).
 *
 * What it computes, for R activation rows a (i16, the quantized hidden state minus its zero
 * point) and every token n of an int8 table T (a token's WIDTH bytes contiguous, minus the
 * table's zero point):
 *
 *   out[n·R + r] = Σₖ T[n·WIDTH + k] · a[r·WIDTH + k]        (int32, exact)
 *
 * the same integers as ONNX MatMulInteger with both zero points, without its packing of the
 * 20 MB table on every run: docs/decoder-profile.md ("The projection kernel"). Each 16 table
 * bytes are widened to two i16x8 and multiplied into R accumulators with i32x4.dot_i16x8_s
 * (|T| ≤ 128 and |a| ≤ 255, so a pair's sum is at most 65 280: no overflow anywhere).
 *
 * Exports `memory` (grown by the caller) and `project2`, `project4`, `project6`
 * (table, tokens, activations, out): one per row count a run needs (a cache step has two rows per
 * token, the quantized hidden state and its quantization error; beams and prompts more). And, for
 * the logits those give, a row's normalizer in two parts: `rowMax` (src, count) and `expSum`
 * (src, count, max) = Σ exp(v − max), float32-accurate terms (below), so that
 * log Σ exp = max + log(expSum): projection.ts `logSumExp`.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  F32,
  F64,
  funcBody,
  funcType,
  I32,
  name,
  op,
  section,
  u32,
  V128,
  vector,
} from "./wasm-assembler.ts";

/** Whisper tiny's d_model: bytes per table row. A multiple of 16. */
const KERNEL_WIDTH = 384;
/** Row counts with a function each: `project${R}` (src/stt/whisper/projection.ts uses them). */
const KERNEL_ROWS = [2, 4, 6] as const;

const KERNEL_PATH = path.resolve(import.meta.dirname, "../../src/stt/whisper/projection.wasm");

/** The body of `project${rows}`: params 0–3 (table, tokens, act, out), then its locals. */
function projectBody(rows: number): number[] {
  const [table, tokens, act, out] = [0, 1, 2, 3];
  const [p, end, o] = [4, 5, 6];
  const [v, lo, hi] = [7, 8, 9];
  const acc = (r: number) => 10 + r;
  const body: number[] = [];
  for (let r = 0; r < rows; r++) body.push(...op.v128Zero, ...op.set(acc(r)));
  for (let chunk = 0; chunk < KERNEL_WIDTH / 16; chunk++) {
    body.push(...op.get(p), ...op.v128Load(chunk * 16), ...op.set(v));
    body.push(...op.get(v), ...op.extendLowS, ...op.set(lo));
    body.push(...op.get(v), ...op.extendHighS, ...op.set(hi));
    for (let r = 0; r < rows; r++) {
      const base = (r * KERNEL_WIDTH + chunk * 16) * 2;
      // acc += dot(low 8 table bytes, activations k…k+7) + dot(high 8, k+8…k+15)
      body.push(...op.get(acc(r)));
      body.push(...op.get(lo), ...op.get(act), ...op.v128Load(base), ...op.dot, ...op.i32x4Add);
      body.push(...op.get(hi), ...op.get(act), ...op.v128Load(base + 16), ...op.dot);
      body.push(...op.i32x4Add, ...op.set(acc(r)));
    }
  }
  for (let r = 0; r < rows; r++) {
    body.push(...op.get(o));
    for (let lane = 0; lane < 4; lane++) {
      body.push(...op.get(acc(r)), ...op.lane(lane));
      if (lane > 0) body.push(...op.i32Add);
    }
    body.push(...op.i32Store(r * 4));
  }
  // Next token: its table row, and the next R outputs.
  body.push(...op.get(o), ...op.i32Const(rows * 4), ...op.i32Add, ...op.set(o));
  const loop = countedLoop([p, end], [table, tokens, KERNEL_WIDTH], KERNEL_WIDTH, body);
  // Locals: p, end, o (i32), then v, lo, hi and one accumulator per row (v128).
  return funcBody([...op.get(out), ...op.set(o), ...loop, ...op.end], [3, I32], [3 + rows, V128]);
}

/**
 * A loop over `count` items of `bytes` bytes from address `start`: local `end` is where they end,
 * local `p` walks them, `step` bytes after each `body`.
 */
function countedLoop(
  [p, end]: [number, number],
  [start, count, bytes]: [number, number, number],
  step: number,
  body: number[],
): number[] {
  // p = start; end = start + count · bytes
  const code = [...op.get(start), ...op.set(p), ...op.get(start), ...op.get(count)];
  code.push(...op.i32Const(bytes), ...op.i32Mul, ...op.i32Add, ...op.set(end));
  // block { loop { if p ≥ end: leave the block; body; p += step; repeat } }
  code.push(...op.block, ...op.loop, ...op.get(p), ...op.get(end), ...op.i32GeU, ...op.brIf(1));
  code.push(...body, ...op.get(p), ...op.i32Const(step), ...op.i32Add, ...op.set(p));
  code.push(...op.br(0), ...op.end, ...op.end);
  return code;
}

/** Lanes 2–3 of a vector moved to 0–1 (bytes 8–15, then 0–7). */
const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];
/** Lanes 1, 0, 3, 2. */
const SWAP_PAIRS = [4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11];

/** `rowMax(src, count)`: the largest of `count` (a multiple of 4) float32s, −∞ if none is larger. */
function rowMaxBody(): number[] {
  const [src, count, p, end, max] = [0, 1, 2, 3, 4];
  const step = [...op.get(max), ...op.get(p), ...op.v128Load(0), ...op.f32x4Pmax, ...op.set(max)];
  const code = [...op.f32x4Const(Number.NEGATIVE_INFINITY), ...op.set(max)];
  code.push(...countedLoop([p, end], [src, count, 4], 16, step));
  for (const lanes of [HIGH_HALF, SWAP_PAIRS]) {
    code.push(...op.get(max), ...op.get(max), ...op.get(max), ...op.shuffle(lanes));
    code.push(...op.f32x4Pmax, ...op.set(max));
  }
  code.push(...op.get(max), ...op.f32x4ExtractLane(0), ...op.end);
  return funcBody(code, [2, I32], [1, V128]);
}

/**
 * exp in float32 for x in [EXP_MIN_X, 0]: x = k·ln 2 + r with k = nearest(x·log₂e) and |r| ≤ ½ ln 2
 * (ln 2 in two parts, Cody–Waite, so k·LN2_HI is exact), eʳ by its Taylor series to r⁷ (the
 * next term is below 6·10⁻⁹ of it), times 2ᵏ built in the exponent bits. Within 1.1·10⁻⁷ of
 * Math.exp (relative) over the range.
 */
const LN2_HI = 0.693359375;
const LN2_LO = -2.1219444e-4;
const TAYLOR = [1, 1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040];
/** Below this, eˣ is left out of the sum (< 1.7·10⁻³⁸; 2ᵏ would leave float32's normal range). */
const EXP_MIN_X = -87;

/**
 * `expSum(src, count, max)`: Σ exp(v − max) over `count` (a multiple of 4) float32s v ≤ max, each
 * term in float32 (above), summed in float64 in two lanes; −∞ values add nothing, a NaN makes
 * the sum NaN.
 */
function expSumBody(): number[] {
  const [src, count, max, p, end, m, sum, x, k, r, e] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  /** The value on the stack minus k·c. */
  const minusK = (c: number) => [...op.get(k), ...op.f32x4Const(c), ...op.f32x4Mul, ...op.f32x4Sub];
  const body: number[] = [];
  // x = v − max; k = nearest(x·log₂e); r = (x − k·LN2_HI) − k·LN2_LO
  body.push(...op.get(p), ...op.v128Load(0), ...op.get(m), ...op.f32x4Sub, ...op.set(x));
  body.push(...op.get(x), ...op.f32x4Const(Math.LOG2E), ...op.f32x4Mul, ...op.f32x4Nearest);
  body.push(...op.set(k), ...op.get(x), ...minusK(LN2_HI), ...minusK(LN2_LO), ...op.set(r));
  // eʳ by Horner, from the r⁷ term down
  body.push(...op.f32x4Const(TAYLOR[7] as number));
  for (let power = 6; power >= 0; power--) {
    body.push(...op.get(r), ...op.f32x4Mul, ...op.f32x4Const(TAYLOR[power] as number));
    body.push(...op.f32x4Add);
  }
  // × 2ᵏ: (k + 127) << 23 is 2ᵏ's float32 bits for k in [−126, 0]
  body.push(...op.get(k), ...op.i32x4TruncSatF32x4S, ...op.i32x4Const(127), ...op.i32x4Add);
  body.push(...op.i32Const(23), ...op.i32x4Shl, ...op.f32x4Mul);
  // zero where x < EXP_MIN_X (−∞ included, whose polynomial above is NaN); a NaN value stays
  // NaN and makes the sum NaN, as a float64 sum of Math.exp would
  body.push(...op.get(x), ...op.f32x4Const(EXP_MIN_X), ...op.f32x4Lt, ...op.v128AndNot);
  body.push(...op.set(e));
  // sum += e's lanes 0–1, then lanes 2–3, as float64
  body.push(...op.get(sum), ...op.get(e), ...op.f64x2PromoteLow, ...op.f64x2Add);
  body.push(...op.get(e), ...op.get(e), ...op.shuffle(HIGH_HALF), ...op.f64x2PromoteLow);
  body.push(...op.f64x2Add, ...op.set(sum));

  const code = [...op.get(max), ...op.f32x4Splat, ...op.set(m), ...op.v128Zero, ...op.set(sum)];
  code.push(...countedLoop([p, end], [src, count, 4], 16, body));
  code.push(...op.get(sum), ...op.f64x2ExtractLane(0), ...op.get(sum), ...op.f64x2ExtractLane(1));
  code.push(...op.f64Add, ...op.end);
  return funcBody(code, [2, I32], [6, V128]);
}

/** The kernel module's bytes: deterministic, a pure function of this file. */
export function projectionKernel(): Uint8Array {
  const types = [
    funcType([I32, I32, I32, I32], []),
    funcType([I32, I32], [F32]),
    funcType([I32, I32, F32], [F64]),
  ];
  const functions = [
    ...KERNEL_ROWS.map((rows) => ({ name: `project${rows}`, type: 0, body: projectBody(rows) })),
    { name: "rowMax", type: 1, body: rowMaxBody() },
    { name: "expSum", type: 2, body: expSumBody() },
  ];
  const exports = [
    [...name("memory"), 0x02, ...u32(0)],
    ...functions.map((f, i) => [...name(f.name), 0x00, ...u32(i)]),
  ];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector(types)),
    ...section(3, vector(functions.map((f) => u32(f.type)))),
    // One memory, 1 page to start; the caller grows it to the table's size.
    ...section(5, vector([[0x00, ...u32(1)]])),
    ...section(7, vector(exports)),
    ...section(10, vector(functions.map((f) => f.body))),
  ]);
}

if (import.meta.main) {
  const bytes = projectionKernel();
  if (process.argv.includes("--write")) {
    writeFileSync(KERNEL_PATH, bytes);
    console.log(`wrote ${KERNEL_PATH}`);
  } else if (process.argv.includes("--check")) {
    // `npm run check`: the committed kernel is what this file assembles.
    const committed = existsSync(KERNEL_PATH) ? readFileSync(KERNEL_PATH) : new Uint8Array(0);
    if (Buffer.compare(committed, bytes) !== 0) {
      console.error(
        `${path.relative(process.cwd(), KERNEL_PATH)} is not what tools/models/projection-kernel.ts ` +
          "assembles: run it with --write and commit the result",
      );
      process.exit(1);
    }
  } else {
    console.error("usage: node tools/models/projection-kernel.ts --write | --check");
    process.exit(2);
  }
}
