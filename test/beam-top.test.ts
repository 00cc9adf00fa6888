/**
 * Beam search's candidate pick (`topBiased`, src/stt/whisper/beam-search.ts): the best ids by
 * biased logit, checked against the plain definition — every id sorted by biased value, the lower
 * id first among equals, −∞ left out — on vocabulary-sized rows with many ties.
 */
import { describe, expect, it } from "vitest";
import { topBiased } from "../src/stt/whisper/beam-search";

/** The definition, the slow way. */
function reference(logits: Float32Array, count: number, bonus: number, boosted?: Set<number>) {
  const biased = (id: number) => (logits[id] as number) + (boosted?.has(id) ? bonus : 0);
  return Array.from(logits.keys())
    .filter((id) => biased(id) !== Number.NEGATIVE_INFINITY)
    .sort((a, b) => biased(b) - biased(a) || a - b)
    .slice(0, count);
}

/** Deterministic pseudo-random numbers in [0, 1) (a linear congruential generator). */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe("topBiased", () => {
  it("picks what sorting every id would, ties to the lower id, never −∞", () => {
    const next = random(7);
    for (let trial = 0; trial < 20; trial++) {
      const logits = new Float32Array(51_865);
      // Few distinct values, so ties are everywhere, including at the cut.
      for (let id = 0; id < logits.length; id++) logits[id] = Math.floor(next() * 40) / 4;
      // Rules suppress most of the vocabulary at some steps.
      const masked = trial % 3 === 0 ? 0.999 : 0.3;
      for (let id = 0; id < logits.length; id++) {
        if (next() < masked) logits[id] = Number.NEGATIVE_INFINITY;
      }
      const boosted = new Set(Array.from({ length: trial % 4 }, () => Math.floor(next() * 51_865)));
      const count = 2 + (trial % 4);
      const bonus = trial % 2 === 0 ? 2.5 : 0.25;
      expect(topBiased(logits, count, bonus, boosted)).toEqual(
        reference(logits, count, bonus, boosted),
      );
      expect(topBiased(logits, count, bonus)).toEqual(reference(logits, count, bonus));
    }
  });

  it("lifts a favoured token past better ones by its bonus, and not past a −∞", () => {
    const logits = new Float32Array([1, 5, 3, Number.NEGATIVE_INFINITY, 4]);
    expect(topBiased(logits, 3, 0)).toEqual([1, 4, 2]);
    expect(topBiased(logits, 3, 2.5, new Set([2, 3]))).toEqual([2, 1, 4]);
    expect(topBiased(logits, 9, 2.5, new Set([3]))).toEqual([1, 4, 2, 0]);
  });
});
