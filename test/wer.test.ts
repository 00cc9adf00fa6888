import { describe, expect, it } from "vitest";
import { normalizeWords, wordErrorRate } from "../tools/eval/wer";

describe("WER helper", () => {
  it("ignores case and punctuation, and splits hyphenated words", () => {
    expect(normalizeWords("And so, my fellow Americans: ask NOT!")).toEqual([
      "and",
      "so",
      "my",
      "fellow",
      "americans",
      "ask",
      "not",
    ]);
    expect(wordErrorRate("rather cold hearted", "Rather cold-hearted.").errors).toBe(0);
    expect(wordErrorRate("dont go", "Don't go").errors).toBe(0);
  });

  it("counts mr = mister and oh = zero", () => {
    expect(wordErrorRate("mister quilter is", "Mr. Quilter is").errors).toBe(0);
    expect(wordErrorRate("zero seven", "oh seven").errors).toBe(0);
  });

  it("treats digits and number words as equal", () => {
    expect(wordErrorRate("go forward ten meters", "Go forward 10 meters.").errors).toBe(0);
    expect(normalizeWords("twenty-five to one hundred and three")).toEqual([
      "25",
      "to",
      "100",
      "and",
      "3",
    ]);
    expect(normalizeWords("two hundred five thousand, 1,000")).toEqual(["205000", "1000"]);
    // A digit string read out word by word is several numbers, not their sum.
    expect(normalizeWords("one two three")).toEqual(["1", "2", "3"]);
    expect(wordErrorRate("one two", "1 2").errors).toBe(0);
  });

  it("scores a digit string written as one number digit by digit against digits read out", () => {
    // A phone number or code read digit by digit is written as a digit string.
    expect(wordErrorRate("two nine three four zero", "29340").errors).toBe(0);
    expect(wordErrorRate("call two nine three four", "Call 293, 4.").errors).toBe(0);
    // Only where the reference reads single digits: "twelve" is not "1 2".
    expect(wordErrorRate("twelve", "1 2").errors).toBe(2);
    // "290" is no run of the reference's digits; "340" is.
    expect(wordErrorRate("two nine three four zero", "290-340").errors).toBe(2);
    expect(wordErrorRate("ten of clubs", "10 of clubs").errors).toBe(0);
  });

  it("counts substitutions, insertions and deletions of a minimum alignment", () => {
    const result = wordErrorRate(
      "the child almost hurt the small dog",
      "a child hurt the small big dog",
    );
    expect(result).toMatchObject({
      substitutions: 1,
      deletions: 1,
      insertions: 1,
      errors: 3,
      referenceWords: 7,
      hypothesisWords: 7,
    });
    expect(result.wer).toBeCloseTo(3 / 7, 10);
    expect(result.alignment).toEqual([
      { op: "substitute", ref: "the", hyp: "a" },
      { op: "match", ref: "child", hyp: "child" },
      { op: "delete", ref: "almost" },
      { op: "match", ref: "hurt", hyp: "hurt" },
      { op: "match", ref: "the", hyp: "the" },
      { op: "match", ref: "small", hyp: "small" },
      { op: "insert", hyp: "big" },
      { op: "match", ref: "dog", hyp: "dog" },
    ]);
  });

  it("handles empty transcripts", () => {
    expect(wordErrorRate("", "")).toMatchObject({ errors: 0, wer: 0, referenceWords: 0 });
    expect(wordErrorRate("", "you")).toMatchObject({
      insertions: 1,
      wer: Number.POSITIVE_INFINITY,
    });
    expect(wordErrorRate("go forward", "")).toMatchObject({ deletions: 2, wer: 1 });
  });
});
