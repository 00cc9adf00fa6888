/**
 * Deepgram's `numerals=true` for English: spoken numbers written as digits ("nine hundred" →
 * "900", "twenty-first" → "21st", "ten of clubs" → "10 of clubs"), on a transcript's words, after
 * Whisper. Whisper tiny already writes most numbers as digits ("Go forward 10 meters."); this
 * converts the ones it spells out.
 *
 * A number is a run of number words that reads as one English cardinal: units, teens, tens
 * ("twenty-five" or "twenty five"), "hundred", then the scales thousand, million and billion in
 * falling order, with "a" before a scale ("a hundred") and "and" after "hundred" or a scale
 * ("one hundred and five"). A word that cannot continue the number starts the next one, so a
 * digit string read digit by digit stays digit by digit ("two nine three" → "2 9 3"). An ordinal
 * word ends its number ("one hundred and first" → "101st").
 *
 * Left as words, on purpose: a lone "one" (mostly a pronoun: "the one I want"), a lone "second"
 * (mostly time: "wait a second"), a lone "a", and anything in another language. Years read in pairs ("nineteen eighty-four") become "19 84":
 * telling a year from two numbers needs context this rule does not have.
 */
import { AMBIGUOUS_ALONE, ORDINALS, SCALES, TENS, UNITS } from "./number-words";
import { type Transcript, type TranscriptWord, UNSPACED_SCRIPT } from "./transcriber";

/** One spoken number being read: the value so far and what may follow. */
class NumberReader {
  /** Completed scale groups (e.g. 21 000 of "twenty-one thousand five"). */
  #total = 0;
  /** The group below the last scale (0–999). */
  #group = 0;
  /** Smallest scale used so far; a later scale must be smaller. */
  #lastScale = Number.POSITIVE_INFINITY;
  /** The last part read: what the next may be. */
  #last: "none" | "a" | "unit" | "teen" | "tens" | "tens-unit" | "hundred" | "scale" | "and" =
    "none";
  #ordinal = false;
  /** Parts read, for the AMBIGUOUS_ALONE rule. */
  parts: string[] = [];

  /** Reads `part` if it continues this number; false (nothing changed) if it cannot. */
  read(word: string): boolean {
    if (this.#ordinal) return false;
    const cardinal = ORDINALS[word];
    const part = cardinal ?? word;
    if (!this.#accepts(part)) return false;
    this.#apply(part);
    if (cardinal !== undefined) this.#ordinal = true;
    this.parts.push(word);
    return true;
  }

  /** Parts that only "a" and "and" were: not a number yet. */
  get complete(): boolean {
    return this.#last !== "none" && this.#last !== "a" && this.#last !== "and";
  }

  get value(): number {
    return this.#total + this.#group;
  }

  get ordinal(): boolean {
    return this.#ordinal;
  }

  #accepts(part: string): boolean {
    const last = this.#last;
    if (part === "a") return last === "none";
    if (part === "and") return last === "hundred" || last === "scale";
    const unit = UNITS[part];
    if (unit !== undefined) {
      if (unit === 0) return last === "none";
      if (unit < 10) return ["none", "tens", "hundred", "scale", "and"].includes(last);
      return ["none", "hundred", "scale", "and"].includes(last);
    }
    if (TENS[part] !== undefined) return ["none", "hundred", "scale", "and"].includes(last);
    if (part === "hundred") {
      const belowHundred = this.#group % 100;
      return (
        last === "a" ||
        ((last === "unit" || last === "teen" || last === "tens" || last === "tens-unit") &&
          this.#group === belowHundred)
      );
    }
    const scale = SCALES[part];
    if (scale !== undefined) {
      return (
        scale < this.#lastScale &&
        (last === "a" || (last !== "none" && last !== "scale" && last !== "and" && this.#group > 0))
      );
    }
    return false;
  }

  #apply(part: string): void {
    if (part === "a") {
      this.#group = 1;
      this.#last = "a";
    } else if (part === "and") {
      this.#last = "and";
    } else if (UNITS[part] !== undefined) {
      const unit = UNITS[part] as number;
      this.#last = this.#last === "tens" ? "tens-unit" : unit < 10 ? "unit" : "teen";
      this.#group += unit;
    } else if (TENS[part] !== undefined) {
      this.#group += TENS[part] as number;
      this.#last = "tens";
    } else if (part === "hundred") {
      this.#group *= 100;
      this.#last = "hundred";
    } else {
      const scale = SCALES[part] as number;
      this.#total += this.#group * scale;
      this.#group = 0;
      this.#lastScale = scale;
      this.#last = "scale";
    }
  }
}

function ordinalSuffix(value: number): string {
  const lastTwo = value % 100;
  if (lastTwo >= 11 && lastTwo <= 13) return "th";
  return ["th", "st", "nd", "rd"][value % 10] ?? "th";
}

/** The number words of a written word ("Twenty-five," → ["twenty", "five"]), or null. */
function numberParts(punctuated: string): string[] | null {
  const core = punctuated
    .toLowerCase()
    .replace(/^[^\p{L}]+|[^\p{L}]+$/gu, "")
    .split(/[-‐]/u);
  const known = (w: string) =>
    w === "a" ||
    w === "and" ||
    UNITS[w] !== undefined ||
    TENS[w] !== undefined ||
    ORDINALS[w] !== undefined ||
    w === "hundred" ||
    SCALES[w] !== undefined;
  return core.length > 0 && core.every((w) => w !== "" && known(w)) ? core : null;
}

/**
 * Whether a word starts a cardinal that is not itself ambiguous ("two", "forty"; not "one",
 * "second", "a", "and"): what makes an ambiguous neighbour a number too.
 */
function startsNumber(word: TranscriptWord | undefined): boolean {
  const first = word ? numberParts(word.punctuatedWord)?.[0] : undefined;
  if (first === undefined || AMBIGUOUS_ALONE.has(first)) return false;
  return UNITS[first] !== undefined || TENS[first] !== undefined;
}

/** Punctuation after the word's last letter ("five," → ","). */
function trailing(punctuated: string): string {
  return /[^\p{L}\p{N}]*$/u.exec(punctuated)?.[0] ?? "";
}

/** Punctuation before the word's first letter ("(five" → "("). */
function leading(punctuated: string): string {
  return /^[^\p{L}\p{N}]*/u.exec(punctuated)?.[0] ?? "";
}

/**
 * The words with spoken numbers replaced by digits: each number becomes one word spanning its
 * words' times, with the lowest of their confidences and the first word's leading and the last
 * word's trailing punctuation. Words that are no number are returned as they were.
 */
export function numeralWords(words: readonly TranscriptWord[]): TranscriptWord[] {
  const out: TranscriptWord[] = [];
  let i = 0;
  while (i < words.length) {
    const reader = new NumberReader();
    let taken = 0;
    // Extend over whole words while every part of each continues the number.
    let lastComplete = 0;
    for (let j = i; j < words.length; j++) {
      const parts = numberParts(words[j]?.punctuatedWord ?? "");
      if (parts === null || !parts.every((p) => reader.read(p))) break;
      taken = j - i + 1;
      if (reader.complete) lastComplete = taken;
      // Punctuation after a word ends the number there ("five, five" is two numbers).
      if (trailing(words[j]?.punctuatedWord ?? "") !== "") break;
    }
    // Alone means no number beside it: "one two three" is a digit string, "the one I want" not.
    // Digits before make a lone "one" part of a digit string ("5 one 2"), never a lone "second":
    // after a number it is a unit of time ("a 10 second delay"), not "2nd".
    const part = reader.parts[0] ?? "";
    const ambiguous =
      reader.parts.length === 1 &&
      AMBIGUOUS_ALONE.has(part) &&
      (ORDINALS[part] !== undefined || !/^\d+$/.test(out[out.length - 1]?.word ?? "")) &&
      !startsNumber(words[i + 1]);
    if (taken === 0 || lastComplete === 0 || ambiguous) {
      out.push(words[i] as TranscriptWord);
      i += 1;
      continue;
    }
    // A run that ended on "and" or "a" gives those words back.
    const run = words.slice(i, i + lastComplete);
    const number = lastComplete === taken ? reader : readRun(run);
    const digits = `${number.value}${number.ordinal ? ordinalSuffix(number.value) : ""}`;
    const first = run[0] as TranscriptWord;
    const last = run[run.length - 1] as TranscriptWord;
    out.push({
      word: digits,
      punctuatedWord: `${leading(first.punctuatedWord)}${digits}${trailing(last.punctuatedWord)}`,
      start: first.start,
      end: last.end,
      confidence: Math.min(...run.map((w) => w.confidence)),
    });
    i += lastComplete;
  }
  return out;
}

/** A reader over exactly these words (all known to continue one number). */
function readRun(run: readonly TranscriptWord[]): NumberReader {
  const reader = new NumberReader();
  for (const word of run)
    for (const part of numberParts(word.punctuatedWord) ?? []) reader.read(part);
  return reader;
}

/**
 * A transcript with numerals: its words converted, and its text rebuilt from them when any
 * changed (English text is words joined by spaces; other languages are not converted, and a text
 * in a script written without spaces is left as it is: English number words inside Chinese
 * would otherwise put spaces between all its words).
 */
export function withNumerals(transcript: Transcript): Transcript {
  if (UNSPACED_SCRIPT.test(transcript.text)) return transcript;
  const words = numeralWords(transcript.words);
  const changed =
    words.length !== transcript.words.length || words.some((w, k) => w !== transcript.words[k]);
  if (!changed) return transcript;
  return { ...transcript, words, text: words.map((w) => w.punctuatedWord).join(" ") };
}
