/**
 * Whisper's vocabulary table outside ORT: the token embedding and the int8 vocabulary projection,
 * computed with a WebAssembly kernel of our own (projection.wasm, assembled by
 * tools/models/projection-kernel.ts) instead of ORT's MatMulInteger, which repacks the whole
 * 20 MB table on every decoder run (docs/decoder-profile.md, "The projection kernel").
 *
 * The prepared decoder (tools/models/decoder-rewrite.ts, `external`) takes each token's table
 * row (`token_rows`, uint8 [batch, tokens, width]) instead of gathering it, and instead of logits
 * returns the hidden state quantized twice as int8x2T does (`logit_rows`, uint8 [batch, 2·rows,
 * width]: each batch's pass-1 rows, then its pass-2 rows), with each pass's zero point
 * (`logit_zeros`, uint8 [2]) and its scale times the table's (`logit_scales`, float [2]). Here:
 *
 *   logit = f32(f32(Σₖ (q₁ₖ − z₁)(Tₖ − z_T)) · s₁) + f32(f32(Σₖ (q₂ₖ − z₂)(Tₖ − z_T)) · s₂)
 *
 * the same integers and the same float32 operations in the same order as the graph's own
 * MatMulInteger → Cast → Mul → Add, so the logits are bit-identical to the previous prepared
 * decoder's (test/projection.test.ts checks it on the real files). Float32 results are taken by
 * rounding JavaScript doubles: exact for the product of two float32s, and for their sum (double
 * has more than 2·24 + 2 bits, so rounding twice cannot differ from rounding once).
 *
 * The kernel also gives each logits row its normalizer, log Σ exp (`logSumExp`, float32-accurate
 * terms: not bit-identical to a float64 sum of Math.exp, within 2·10⁻⁷ of it).
 *
 * The table is held once per isolate, in the kernel's memory: vocab-table.bin (VOCABULARY_TABLE
 * below: its rows in the vocabulary order of vocabulary-order.ts, the English head first, so a
 * head-only projection reads a prefix), minus 128 as int8 (the table's own zero point, 127, is
 * corrected per row, exactly). One instance serves every session of the isolate; a call runs
 * synchronously to its end, so calls never interleave, and each returns fresh arrays.
 */
import type { Tensor } from "onnxruntime-web/wasm";
import { logSumExp } from "./logit-rules.ts";
import { decodeTableHeader, VOCABULARY_TABLE } from "./vocab-table.ts";
import type { VocabularyOrder, VocabularyScope } from "./vocabulary-order.ts";

/** Decoder input: each token's row of the vocabulary table (uint8 [batch, tokens, width]). */
export const TOKEN_ROWS_INPUT = "token_rows";
/** Decoder outputs: the hidden state quantized twice, and each pass's zero point and scale. */
export const LOGIT_ROWS_OUTPUT = "logit_rows";
export const LOGIT_ZEROS_OUTPUT = "logit_zeros";
export const LOGIT_SCALES_OUTPUT = "logit_scales";

/** Row counts the kernel has a function for (projection-kernel.ts KERNEL_ROWS), largest first. */
const KERNEL_ROWS = [6, 4, 2] as const;
/** The kernel's row width (its loop is unrolled for it). */
const KERNEL_WIDTH = 384;
/**
 * Quantized rows one projection takes: 2 per logit row. A beam search's step has 2 per beam (at
 * most MAX_BEAM_SIZE = 5 beams: 10), a prompt run 2 per position asked for (2 positions: 4);
 * 64 leaves room and costs 48 KB of the kernel's memory.
 */
export const MAX_PROJECTED_ROWS = 64;

type KernelFunction = (table: number, tokens: number, act: number, out: number) => void;
/** The kernel's row reductions over `count` float32s (a multiple of 4) from `src`. */
interface RowKernels {
  rowMax: (src: number, count: number) => number;
  expSum: (src: number, count: number, max: number) => number;
}

/** What a decoder run returned for the projection (its three outputs' data). */
export interface QuantizedRows {
  /** uint8 [batch, 2·rows, width]. */
  rows: Uint8Array;
  batch: number;
  /** Logit rows per batch entry (the quantized rows are twice as many). */
  perBatch: number;
  zeros: Uint8Array;
  scales: Float32Array;
}

/** A decoder run's `logit_rows`, `logit_zeros` and `logit_scales`, checked, as `logits` takes them. */
export function quantizedRows(rows: Tensor, zeros: Tensor, scales: Tensor): QuantizedRows {
  const [batch, twice] = rows.dims;
  if (
    !(rows.data instanceof Uint8Array) ||
    !(zeros.data instanceof Uint8Array) ||
    !(scales.data instanceof Float32Array) ||
    rows.dims.length !== 3 ||
    batch === undefined ||
    twice === undefined ||
    twice % 2 !== 0
  ) {
    throw new Error(
      `Whisper decoder's quantized rows have unexpected type or shape ${rows.type} [${rows.dims}]`,
    );
  }
  return { rows: rows.data, batch, perBatch: twice / 2, zeros: zeros.data, scales: scales.data };
}

export class VocabularyProjection {
  readonly vocabulary: number;
  readonly width: number;
  readonly headSize: number;
  private readonly zeroPoint: number;
  private readonly memory: WebAssembly.Memory;
  private readonly kernels: Map<number, KernelFunction>;
  private readonly actOffset: number;
  private readonly outOffset: number;
  private readonly rowKernels: RowKernels;

  /** `file` is vocab-table.bin, `module` projection.wasm; the file's bytes are copied, not kept. */
  constructor(module: WebAssembly.Module, file: Uint8Array) {
    const header = decodeTableHeader(file);
    if (header.width !== KERNEL_WIDTH) {
      throw new Error(
        `vocabulary table rows are ${header.width} wide, the kernel's ${KERNEL_WIDTH}`,
      );
    }
    if (!(header.zeroPoint >= 0 && header.zeroPoint <= 255)) {
      throw new Error(`vocabulary table zero point ${header.zeroPoint} is not a uint8`);
    }
    this.zeroPoint = header.zeroPoint;
    this.vocabulary = header.vocabulary;
    this.width = header.width;
    this.headSize = header.headSize;
    const tableBytes = header.vocabulary * header.width;
    this.actOffset = align(tableBytes);
    this.outOffset = align(this.actOffset + MAX_PROJECTED_ROWS * header.width * 2);
    const end = this.outOffset + header.vocabulary * KERNEL_ROWS[0] * 4;
    const instance = new WebAssembly.Instance(module, {});
    const { memory } = instance.exports;
    if (!(memory instanceof WebAssembly.Memory)) throw new Error("projection kernel has no memory");
    memory.grow(Math.ceil(end / 65536) - memory.buffer.byteLength / 65536);
    this.memory = memory;
    this.kernels = new Map(
      KERNEL_ROWS.map((rows) => {
        const fn = instance.exports[`project${rows}`];
        if (typeof fn !== "function") throw new Error(`projection kernel has no project${rows}`);
        return [rows, fn as KernelFunction];
      }),
    );
    const { rowMax, expSum } = instance.exports;
    if (typeof rowMax !== "function" || typeof expSum !== "function") {
      throw new Error("projection kernel has no rowMax or expSum");
    }
    this.rowKernels = { rowMax, expSum } as RowKernels;
    const table = new Uint8Array(memory.buffer, 0, tableBytes);
    table.set(file.subarray(VOCABULARY_TABLE.headerBytes));
    // uint8 T → int8 T − 128 (flipping the top bit is exactly that), whatever the table's own zero
    // point z_T: Σ a(T − z_T) = Σ a(T − 128) + (128 − z_T)·Σ a, corrected per row in `logits`.
    // Four bytes at a time (the table starts the memory and its rows are 384 bytes: aligned, and
    // a whole number of words): ~5 ms for 20 MB where a byte loop took ~35.
    const words = new Uint32Array(memory.buffer, 0, tableBytes / 4);
    for (let i = 0; i < words.length; i++) words[i] = (words[i] as number) ^ 0x80808080;
  }

  /** Bytes of the kernel's memory: the table, the activations and the products (~21 MB). */
  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /**
   * Throws unless the table's rows are in `order` (vocab.json's, vocabulary-order.ts): the same
   * number of ids and the same head. The order itself is derived from the pinned vocab.json on
   * both sides (prepare.ts wrote the rows in it).
   */
  checkOrder(order: VocabularyOrder): void {
    if (this.vocabulary !== order.ids.length || this.headSize !== order.headSize) {
      throw new Error(
        `vocabulary table has ${this.vocabulary} rows with a head of ${this.headSize}, ` +
          `vocab.json's order ${order.ids.length} with ${order.headSize}: the files disagree`,
      );
    }
  }

  /** The table rows of `ids` (token ids), as the decoder's `token_rows` takes them (uint8). */
  tokenRows(order: VocabularyOrder, ids: readonly number[]): Uint8Array {
    const { width } = this;
    const table = new Uint8Array(this.memory.buffer, 0, this.vocabulary * width);
    const out = new Uint8Array(ids.length * width);
    ids.forEach((id, i) => {
      const row = Number.isInteger(id) ? order.columns[id] : undefined;
      if (row === undefined) {
        throw new RangeError(`token id ${id} is outside the vocabulary of ${this.vocabulary}`);
      }
      out.set(table.subarray(row * width, (row + 1) * width), i * width);
    });
    for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) ^ 0x80;
    return out;
  }

  /**
   * Logits of `wanted` rows ([batch index, row within it]) of a decoder run's quantized output,
   * each in token-id order: every id with scope "all", the English head only with "head" (the
   * rest −Infinity: never picked, no mass).
   */
  logits(
    order: VocabularyOrder,
    quantized: QuantizedRows,
    wanted: readonly (readonly [number, number])[],
    scope: VocabularyScope,
  ): Float32Array[] {
    const { width } = this;
    const { rows, batch, perBatch, zeros, scales } = quantized;
    if (rows.length !== batch * 2 * perBatch * width || zeros.length !== 2 || scales.length !== 2) {
      throw new Error(
        `decoder returned ${rows.length} quantized bytes with ${zeros.length} zero points and ` +
          `${scales.length} scales, expected ${batch} × 2 × ${perBatch} × ${width}, 2 and 2`,
      );
    }
    if (wanted.length * 2 > MAX_PROJECTED_ROWS) {
      throw new RangeError(
        `${wanted.length} logit rows asked of one projection, at most ${MAX_PROJECTED_ROWS / 2}`,
      );
    }
    const tokens = scope === "all" ? this.vocabulary : this.headSize;
    // Activations, as the kernel takes them: pass 1 and pass 2 of each wanted row, side by side,
    // as i16 minus their pass's zero point; and each one's correction for the table's zero point.
    const act = new Int16Array(this.memory.buffer, this.actOffset, wanted.length * 2 * width);
    const corrections = new Float64Array(wanted.length * 2);
    const shift = 128 - this.zeroPoint;
    wanted.forEach(([b, r], i) => {
      if (!(b >= 0 && b < batch && r >= 0 && r < perBatch)) {
        throw new RangeError(`logit row [${b}, ${r}] is outside [${batch}, ${perBatch}]`);
      }
      for (let pass = 0; pass < 2; pass++) {
        const from = ((b * 2 + pass) * perBatch + r) * width;
        const zero = zeros[pass] as number;
        const to = (i * 2 + pass) * width;
        let sum = 0;
        for (let k = 0; k < width; k++) {
          const a = (rows[from + k] as number) - zero;
          act[to + k] = a;
          sum += a;
        }
        corrections[i * 2 + pass] = shift * sum;
      }
    });
    const [s1, s2] = [scales[0] as number, scales[1] as number];
    const ids = order.ids;
    const result: Float32Array[] = [];
    let done = 0;
    while (done < wanted.length * 2) {
      const remaining = wanted.length * 2 - done;
      const group = KERNEL_ROWS.find((n) => n <= remaining) ?? 2;
      const kernel = this.kernels.get(group) as KernelFunction;
      kernel(0, tokens, this.actOffset + done * width * 2, this.outOffset);
      const out = new Int32Array(this.memory.buffer, this.outOffset, tokens * group);
      for (let pair = 0; pair < group; pair += 2) {
        const logits = new Float32Array(this.vocabulary);
        if (tokens < this.vocabulary) logits.fill(Number.NEGATIVE_INFINITY);
        const c1 = corrections[done + pair] as number;
        const c2 = corrections[done + pair + 1] as number;
        for (let c = 0; c < tokens; c++) {
          const first = Math.fround(((out[c * group + pair] as number) + c1) * s1);
          const second = Math.fround(((out[c * group + pair + 1] as number) + c2) * s2);
          logits[ids[c] as number] = first + second;
        }
        result.push(logits);
      }
      done += group;
    }
    return result;
  }

  /**
   * log Σ exp(row) (−∞ if every value is −∞): a logits row's normalizer, in the kernel (SIMD,
   * ~0.1 ms for 51 865 logits against ~0.6 in JavaScript). Each exp is float32-accurate
   * (projection-kernel.ts `expSum`), so the result is within ~10⁻⁷ of the float64 sum —
   * below the logits' own float32 rounding. A NaN in the row makes it NaN, as in logit-rules.ts
   * `logSumExp`. The row is copied into the products' buffer, free between projections.
   */
  logSumExp(row: Float32Array): number {
    const count = Math.ceil(row.length / 4) * 4;
    if (row.length > this.vocabulary) {
      throw new RangeError(`logits row of ${row.length} values, vocabulary is ${this.vocabulary}`);
    }
    const scratch = new Float32Array(this.memory.buffer, this.outOffset, count);
    scratch.set(row);
    scratch.fill(Number.NEGATIVE_INFINITY, row.length);
    const max = this.rowKernels.rowMax(this.outOffset, count);
    if (max === Number.NEGATIVE_INFINITY) return max;
    return max + Math.log(this.rowKernels.expSum(this.outOffset, count, max));
  }
}

/**
 * log Σ exp of a logits row, for decodes: in the kernel when the decoder has one (the prepared
 * files), else in JavaScript (logit-rules.ts; the stock files, in tests and comparisons).
 */
export function logNormalizer(
  projection: VocabularyProjection | undefined,
): (row: Float32Array) => number {
  return projection ? (row) => projection.logSumExp(row) : (row) => logSumExp(row);
}

function align(offset: number): number {
  return Math.ceil(offset / 16) * 16;
}
