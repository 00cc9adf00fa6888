/**
 * int8x2T logits from a decoder's quantized rows (the prepared decoder's `logit_rows`,
 * `logit_zeros`, `logit_scales`), computed the plain way: one multiply-add at a time, no kernel,
 * no SIMD, every id in id order. The reference src/stt/whisper/projection.ts's kernel and the
 * external decoder rewrite are both checked against, bit for bit.
 */
export interface QuantizedOutput {
  /** uint8 [batch, 2·perBatch, width]: each batch's pass-1 rows, then its pass-2 rows. */
  rows: Uint8Array;
  batch: number;
  perBatch: number;
  zeros: ArrayLike<number>;
  scales: ArrayLike<number>;
}

/** [batch · perBatch] rows of `vocabulary` logits; `table` is uint8 [vocabulary, width] by id. */
export function referenceLogits(
  table: Uint8Array,
  tableZero: number,
  width: number,
  out: QuantizedOutput,
): Float32Array[] {
  const vocabulary = table.length / width;
  const result: Float32Array[] = [];
  const [z1, z2] = [Number(out.zeros[0]), Number(out.zeros[1])];
  const [s1, s2] = [Number(out.scales[0]), Number(out.scales[1])];
  for (let b = 0; b < out.batch; b++) {
    for (let r = 0; r < out.perBatch; r++) {
      const first = (b * 2 * out.perBatch + r) * width;
      const second = (b * 2 * out.perBatch + out.perBatch + r) * width;
      const logits = new Float32Array(vocabulary);
      for (let v = 0; v < vocabulary; v++) {
        let i1 = 0;
        let i2 = 0;
        for (let k = 0; k < width; k++) {
          const t = (table[v * width + k] as number) - tableZero;
          i1 += ((out.rows[first + k] as number) - z1) * t;
          i2 += ((out.rows[second + k] as number) - z2) * t;
        }
        // MatMulInteger → Cast → Mul by the pass's scales → Add, each rounded to float32.
        logits[v] = Math.fround(Math.fround(i1) * s1) + Math.fround(Math.fround(i2) * s2);
      }
      result.push(logits);
    }
  }
  return result;
}
