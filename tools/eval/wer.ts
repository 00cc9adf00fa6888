/**
 * Word error rate with the normalisation ../shared/eval/dev/README.md asks for: case and
 * punctuation ignored, "mr" = "mister", "oh" = "zero", digits equal to number words ("10" =
 * "ten", "25" = "twenty-five"). Pure: runs in workerd tests and in Node scripts alike.
 */

import { TENS, UNITS } from "../../src/stt/number-words.ts";

export type AlignmentOp = "match" | "substitute" | "insert" | "delete";

export interface AlignedWord {
  op: AlignmentOp;
  /** The reference word (absent for an insertion). */
  ref?: string;
  /** The hypothesis word (absent for a deletion). */
  hyp?: string;
}

export interface WerResult {
  /** Substitutions + insertions + deletions of the minimum-edit alignment. */
  errors: number;
  substitutions: number;
  insertions: number;
  deletions: number;
  referenceWords: number;
  hypothesisWords: number;
  /** errors / referenceWords; 0 or Infinity when the reference is empty. */
  wer: number;
  alignment: AlignedWord[];
}

/** The scales WER reads (numerals.ts also reads "billion"; scoring stays as it was). */
const SCALES: Record<string, number> = { thousand: 1_000, million: 1_000_000 };
/** Spellings counted as the same word (after lowercasing and stripping punctuation). */
const SYNONYMS: Record<string, string> = { mr: "mister", oh: "zero" };

/**
 * Replaces each run of number words by its value in digits: "twenty five" → "25", "one hundred
 * and" stays "100 and". A run breaks where English would start a new number: a unit after a unit
 * or tens ("one two" → "1 2", "twenty five six" → "25 6") or tens after anything but a scale.
 */
function numbersToDigits(words: string[]): string[] {
  const out: string[] = [];
  let total = 0;
  let current = 0;
  let inNumber = false;
  /** What the last number word was, to decide where a run breaks. */
  let last: "unit" | "tens" | "scale" | undefined;
  const finish = () => {
    if (inNumber) out.push(String(total + current));
    total = 0;
    current = 0;
    inNumber = false;
    last = undefined;
  };
  for (const word of words) {
    const unit = UNITS[word];
    const tens = TENS[word];
    const scale = SCALES[word];
    if (unit !== undefined) {
      if (last === "unit" || (last === "tens" && unit >= 10)) finish();
      current += unit;
      last = "unit";
      inNumber = true;
    } else if (tens !== undefined) {
      if (last === "unit" || last === "tens") finish();
      current += tens;
      last = "tens";
      inNumber = true;
    } else if (word === "hundred" && inNumber && last !== "scale") {
      current = current * 100;
      last = "scale";
    } else if (scale !== undefined && inNumber) {
      total += current * scale;
      current = 0;
      last = "scale";
    } else {
      finish();
      out.push(word);
    }
  }
  finish();
  return out;
}

/** Normalised words of a transcript (see the module comment). */
export function normalizeWords(text: string): string[] {
  const cleaned = text
    .toLowerCase()
    .replace(/(\d),(\d{3})/g, "$1$2") // 1,000 → 1000
    .replace(/['’]/g, "") // don't → dont, so both spellings agree
    .replace(/[^\p{L}\p{N}]+/gu, " "); // other punctuation (hyphens too) separates words
  const words = cleaned
    .split(" ")
    .filter((w) => w.length > 0)
    .map((w) => SYNONYMS[w] ?? w);
  return numbersToDigits(words);
}

/**
 * A digit string read digit by digit ("two nine three four zero", a phone number) is correctly
 * written "29340": a hypothesis number of 2+ digits that appears inside a run of single-digit
 * reference words is split into its digits, so it is scored digit by digit. Any other number is
 * one word ("ten" = "10", and "290" against "2 9 3 4 0" stays wrong).
 */
function splitDigitStrings(hyp: string[], ref: readonly string[]): string[] {
  const runs: string[] = [];
  let run = "";
  for (const word of [...ref, ""]) {
    if (/^\d$/.test(word)) run += word;
    else {
      if (run.length >= 2) runs.push(run);
      run = "";
    }
  }
  if (runs.length === 0) return hyp;
  return hyp.flatMap((word) =>
    /^\d{2,}$/.test(word) && runs.some((r) => r.includes(word)) ? [...word] : [word],
  );
}

/** Minimum-edit alignment of hypothesis to reference words, with the error counts. */
export function wordErrorRate(reference: string, hypothesis: string): WerResult {
  const ref = normalizeWords(reference);
  const hyp = splitDigitStrings(normalizeWords(hypothesis), ref);
  const rows = ref.length + 1;
  const cols = hyp.length + 1;
  // cost[i][j]: edits to turn ref[0..i) into hyp[0..j).
  const cost = new Uint32Array(rows * cols);
  for (let i = 0; i < rows; i++) cost[i * cols] = i;
  for (let j = 0; j < cols; j++) cost[j] = j;
  const at = (i: number, j: number) => cost[i * cols + j] ?? 0;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const diagonal = at(i - 1, j - 1) + (ref[i - 1] === hyp[j - 1] ? 0 : 1);
      cost[i * cols + j] = Math.min(diagonal, at(i - 1, j) + 1, at(i, j - 1) + 1);
    }
  }
  const alignment: AlignedWord[] = [];
  let i = ref.length;
  let j = hyp.length;
  while (i > 0 || j > 0) {
    const r = ref[i - 1];
    const h = hyp[j - 1];
    if (i > 0 && j > 0 && at(i, j) === at(i - 1, j - 1) + (r === h ? 0 : 1)) {
      alignment.push({ op: r === h ? "match" : "substitute", ref: r, hyp: h });
      i--;
      j--;
    } else if (i > 0 && at(i, j) === at(i - 1, j) + 1) {
      alignment.push({ op: "delete", ref: r });
      i--;
    } else {
      alignment.push({ op: "insert", hyp: h });
      j--;
    }
  }
  alignment.reverse();
  const count = (op: AlignmentOp) => alignment.filter((a) => a.op === op).length;
  const substitutions = count("substitute");
  const insertions = count("insert");
  const deletions = count("delete");
  const errors = substitutions + insertions + deletions;
  return {
    errors,
    substitutions,
    insertions,
    deletions,
    referenceWords: ref.length,
    hypothesisWords: hyp.length,
    wer: ref.length > 0 ? errors / ref.length : errors > 0 ? Number.POSITIVE_INFINITY : 0,
    alignment,
  };
}

/** The runs of consecutive deleted reference words in an alignment, in order. */
export function deletedRuns(alignment: readonly AlignedWord[]): string[][] {
  const runs: string[][] = [];
  let run: string[] = [];
  for (const a of alignment) {
    if (a.op === "delete") run.push(a.ref ?? "");
    else if (run.length > 0) {
      runs.push(run);
      run = [];
    }
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** Lengths of the runs of consecutive deleted reference words in an alignment. */
export function deletionRuns(alignment: readonly AlignedWord[]): number[] {
  return deletedRuns(alignment).map((run) => run.length);
}
