/**
 * The vocabulary projection outside ORT (src/stt/whisper/projection.ts): its WebAssembly kernel
 * (the committed projection.wasm, imported as workerd imports it) against the plain reference
 * (helpers/projection-reference.ts), bit for bit, on random tables and rows at Whisper's width;
 * the token rows it feeds the decoder; and the checks on what it is given. The real files (the
 * prepared decoder with this table) are compared with stock in
 * whisper-session-prepared-vs-stock.test.ts.
 */
import { describe, expect, it } from "vitest";
import { ort } from "../src/runtime/ort";
import { logSumExp } from "../src/stt/whisper/logit-rules";
import {
  MAX_PROJECTED_ROWS,
  quantizedRows,
  VocabularyProjection,
} from "../src/stt/whisper/projection";
import projectionKernel from "../src/stt/whisper/projection.wasm";
import { decodeTableHeader, encodeTableHeader } from "../src/stt/whisper/vocab-table";
import { vocabularyOrder } from "../src/stt/whisper/vocabulary-order";
import { referenceLogits } from "./helpers/projection-reference";

const WIDTH = 384;
const VOCABULARY = 1_000;

/** Deterministic bytes. */
function bytes(length: number, seed: number): Uint8Array {
  let state = seed >>> 0;
  return Uint8Array.from({ length }, () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state >>> 24;
  });
}

/** A head of every third id and a few specials, as vocabulary-order.ts builds them. */
const HEAD = Array.from({ length: VOCABULARY }, (_, id) => id).filter(
  (id) => id % 3 === 0 || id > 990,
);
const ORDER = vocabularyOrder(HEAD, VOCABULARY);

/** A table by id, and vocab-table.bin for it: header, then rows in ORDER. */
function tableFile(byId: Uint8Array, zeroPoint: number): Uint8Array {
  const header = encodeTableHeader({
    vocabulary: VOCABULARY,
    width: WIDTH,
    headSize: ORDER.headSize,
    zeroPoint,
  });
  const file = new Uint8Array(header.length + byId.length);
  file.set(header);
  ORDER.ids.forEach((id, row) => {
    file.set(byId.subarray(id * WIDTH, (id + 1) * WIDTH), header.length + row * WIDTH);
  });
  return file;
}

function quantized(batch: number, perBatch: number, seed: number) {
  return {
    rows: bytes(batch * 2 * perBatch * WIDTH, seed),
    batch,
    perBatch,
    zeros: Uint8Array.of(131, 9),
    scales: Float32Array.of(0.0123, 0.000417),
  };
}

describe("vocabulary projection kernel", () => {
  // A zero point of 128 is what the kernel stores natively; Whisper's table has 127, and 0 is far
  // from both: the per-row correction must make each exact.
  for (const zeroPoint of [127, 128, 0]) {
    it(`gives the reference's logits bit for bit (table zero point ${zeroPoint})`, () => {
      const byId = bytes(VOCABULARY * WIDTH, 7 + zeroPoint);
      const projection = new VocabularyProjection(projectionKernel, tableFile(byId, zeroPoint));
      projection.checkOrder(ORDER);
      // Batches of 1, 3, 4, 5 and 7 logit rows: kernel groups of 2, 6, 6 + 2, 6 + 4, 6 + 6 + 2.
      for (const [batch, perBatch] of [
        [1, 1],
        [3, 1],
        [1, 4],
        [5, 1],
        [1, 7],
      ] as const) {
        const out = quantized(batch, perBatch, batch * 10 + perBatch);
        const expected = referenceLogits(byId, zeroPoint, WIDTH, out);
        const wanted = Array.from(
          { length: batch * perBatch },
          (_, i) => [Math.floor(i / perBatch), i % perBatch] as const,
        );
        const all = projection.logits(ORDER, out, wanted, "all");
        expect(all).toHaveLength(expected.length);
        expect(Math.max(...(expected[0] ?? []).map(Math.abs))).toBeGreaterThan(1);
        all.forEach((row, i) => {
          expect(row).toEqual(expected[i]);
        });
        // The head alone: the same values on the head's ids, −Infinity on the rest.
        const head = projection.logits(ORDER, out, wanted, "head");
        head.forEach((row, i) => {
          const want = Float32Array.from(expected[i] ?? [], (v, id) =>
            (ORDER.columns[id] ?? VOCABULARY) < ORDER.headSize ? v : Number.NEGATIVE_INFINITY,
          );
          expect(row).toEqual(want);
        });
      }
    });
  }

  it("returns the rows asked for, in the order asked", () => {
    const byId = bytes(VOCABULARY * WIDTH, 3);
    const projection = new VocabularyProjection(projectionKernel, tableFile(byId, 127));
    const out = quantized(2, 3, 99);
    const expected = referenceLogits(byId, 127, WIDTH, out);
    const rows = projection.logits(
      ORDER,
      out,
      [
        [1, 2],
        [0, 0],
      ],
      "all",
    );
    expect(rows[0]).toEqual(expected[5]);
    expect(rows[1]).toEqual(expected[0]);
  });

  it("feeds each token's stored row, by id, and refuses ids outside the vocabulary", () => {
    const byId = bytes(VOCABULARY * WIDTH, 5);
    const projection = new VocabularyProjection(projectionKernel, tableFile(byId, 127));
    const rows = projection.tokenRows(ORDER, [999, 0, 2]);
    expect(rows).toEqual(
      Uint8Array.from([
        ...byId.subarray(999 * WIDTH, 1000 * WIDTH),
        ...byId.subarray(0, WIDTH),
        ...byId.subarray(2 * WIDTH, 3 * WIDTH),
      ]),
    );
    expect(() => projection.tokenRows(ORDER, [VOCABULARY])).toThrow(RangeError);
    expect(() => projection.tokenRows(ORDER, [-1])).toThrow(RangeError);
    expect(() => projection.tokenRows(ORDER, [1.5])).toThrow(RangeError);
  });

  it("refuses files and outputs that disagree with it", () => {
    const file = tableFile(bytes(VOCABULARY * WIDTH, 1), 127);
    expect(decodeTableHeader(file)).toEqual({
      vocabulary: VOCABULARY,
      width: WIDTH,
      headSize: ORDER.headSize,
      zeroPoint: 127,
    });
    expect(() => decodeTableHeader(file.subarray(0, file.length - 1))).toThrow(/bytes/);
    const badMagic = file.slice();
    badMagic[0] = 0x58;
    expect(() => decodeTableHeader(badMagic)).toThrow(/ESVT/);
    const projection = new VocabularyProjection(projectionKernel, file);
    expect(() => projection.checkOrder(vocabularyOrder([1, 2], VOCABULARY))).toThrow(/disagree/);
    expect(() => projection.checkOrder(vocabularyOrder(HEAD, VOCABULARY + 1))).toThrow(/disagree/);
    const out = quantized(1, 1, 4);
    expect(() =>
      projection.logits(ORDER, { ...out, rows: out.rows.subarray(1) }, [[0, 0]], "all"),
    ).toThrow(/quantized bytes/);
    expect(() => projection.logits(ORDER, out, [[0, 1]], "all")).toThrow(RangeError);
    // The decoder's outputs as they come: uint8 rows [batch, 2 · rows, width], two zeros, two scales.
    const zeros = new ort.Tensor("uint8", out.zeros, [2]);
    const scales = new ort.Tensor("float32", out.scales, [2]);
    const rows = new ort.Tensor("uint8", out.rows, [1, 2, WIDTH]);
    expect(quantizedRows(rows, zeros, scales)).toEqual({ ...out, rows: out.rows });
    const floatRows = new ort.Tensor("float32", new Float32Array(2 * WIDTH), [1, 2, WIDTH]);
    expect(() => quantizedRows(floatRows, zeros, scales)).toThrow(/unexpected type or shape/);
    const odd = new ort.Tensor("uint8", out.rows.subarray(0, WIDTH), [1, 1, WIDTH]);
    expect(() => quantizedRows(odd, zeros, scales)).toThrow(/unexpected type or shape/);
    const many = quantized(1, MAX_PROJECTED_ROWS, 4);
    const wanted = Array.from({ length: MAX_PROJECTED_ROWS }, (_, i) => [0, i] as const);
    expect(() => projection.logits(ORDER, many, wanted, "all")).toThrow(/at most/);
  });
});

describe("logits row normalizer (log Σ exp in the kernel)", () => {
  const projection = new VocabularyProjection(
    projectionKernel,
    tableFile(bytes(VOCABULARY * WIDTH, 3), 127),
  );
  /** Deterministic logits in [low, low + spread). */
  function logits(length: number, seed: number, low = -15, spread = 40): Float32Array {
    const raw = bytes(length * 2, seed);
    return Float32Array.from({ length }, (_, i) => {
      const unit = ((raw[2 * i] as number) * 256 + (raw[2 * i + 1] as number)) / 65_536;
      return low + spread * unit;
    });
  }

  /** Within 2·10⁻⁷ (each term float32-accurate) of logit-rules.ts's float64 sum; −∞ exactly where that is. */
  function expectNormalizer(row: Float32Array): void {
    const expected = logSumExp(row);
    const got = projection.logSumExp(row);
    if (!Number.isFinite(expected)) expect(got).toBe(expected);
    else expect(Math.abs(got - expected)).toBeLessThan(2e-7);
  }

  it("agrees with the float64 sum within 2·10⁻⁷, whatever the row's length and masks", () => {
    // Lengths that are and are not a multiple of the kernel's four lanes, the whole vocabulary.
    for (const [length, seed] of [
      [VOCABULARY, 1],
      [VOCABULARY - 3, 2],
      [5, 3],
      [1, 4],
    ] as const) {
      const row = logits(length, seed);
      expectNormalizer(row);
      // A decode's masks: a head kept (−∞ past it); a NaN (a broken model) is not hidden.
      const masked = row.slice();
      masked.fill(Number.NEGATIVE_INFINITY, Math.ceil(length / 2));
      expectNormalizer(masked);
      masked[length - 1] = Number.NaN;
      expectNormalizer(masked);
    }
    // Terms far below the largest (beyond float32's exp range, where the kernel leaves them out)
    // and a spread as wide as a timestamp-forced row's.
    expectNormalizer(logits(VOCABULARY, 5, -300, 330));
  });

  it("is exact where the sum is one term, and −∞ for a row with nothing to sum", () => {
    const one = new Float32Array(9).fill(Number.NEGATIVE_INFINITY);
    one[6] = 12.5;
    expect(projection.logSumExp(one)).toBe(12.5);
    expect(projection.logSumExp(new Float32Array(8).fill(Number.NEGATIVE_INFINITY))).toBe(
      Number.NEGATIVE_INFINITY,
    );
    expect(() => projection.logSumExp(new Float32Array(VOCABULARY + 1))).toThrow(RangeError);
  });

  it("leaves the next projection's logits bit for bit (it borrows the products' buffer)", () => {
    const out = quantized(1, 1, 8);
    const before = projection.logits(ORDER, out, [[0, 0]], "all")[0] as Float32Array;
    projection.logSumExp(logits(VOCABULARY, 9));
    const after = projection.logits(ORDER, out, [[0, 0]], "all")[0] as Float32Array;
    expect(after).toEqual(before);
  });
});
