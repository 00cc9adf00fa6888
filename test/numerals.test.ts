import { describe, expect, it } from "vitest";
import { numeralWords, withNumerals } from "../src/stt/numerals";
import type { Transcript, TranscriptWord } from "../src/stt/transcriber";
import { words } from "./helpers/transcripts";

const written = (sentence: string) =>
  numeralWords(words(sentence))
    .map((w) => w.punctuatedWord)
    .join(" ");

describe("numerals (English spoken numbers as digits)", () => {
  it.each([
    ["Ten of clubs.", "10 of clubs."],
    ["Four queen of clubs", "4 queen of clubs"],
    ["five five", "5 5"],
    ["Five, five.", "5, 5."],
    ["two nine three four zero", "2 9 3 4 0"],
    ["nine hundred", "900"],
    ["nine hundredth", "900th"],
    ["one hundred and five apples", "105 apples"],
    ["one hundred and first", "101st"],
    ["twenty-five", "25"],
    ["Twenty five people", "25 people"],
    ["the twenty-first century", "the 21st century"],
    ["the eleventh hour", "the 11th hour"],
    ["a hundred dollars", "100 dollars"],
    ["a thousand and one nights", "1001 nights"],
    ["two thousand and twenty four", "2024"],
    ["one million two hundred thousand", "1200000"],
    ["twenty twenty", "20 20"],
    ["nineteen hundred", "1900"],
    ["(seven)", "(7)"],
  ])("%s → %s", (spoken, digits) => {
    expect(written(spoken)).toBe(digits);
  });

  it.each([
    "the one I want",
    "wait a second",
    "a dog and a cat",
    "and so my fellow Americans",
    "hundred",
    "Go forward 10 meters.",
    "anyone for tennis",
    // After digits, "second" is a unit of time, not an ordinal.
    "There is a 10 second delay.",
    "Wait 1 second please.",
  ])("leaves %s as words", (sentence) => {
    expect(written(sentence)).toBe(sentence);
  });

  it("keeps 'one' and 'second' inside a number", () => {
    expect(written("one two three")).toBe("1 2 3");
    expect(written("the second one")).toBe("the second one");
    expect(written("twenty second street")).toBe("22nd street");
  });

  it("gives a number its words' span and their lowest confidence", () => {
    const input = words("call nine hundred now");
    (input[2] as TranscriptWord).confidence = 0.4;
    const out = numeralWords(input);
    expect(out).toHaveLength(3);
    expect(out[1]).toEqual({
      word: "900",
      punctuatedWord: "900",
      start: 1,
      end: 2.8,
      confidence: 0.4,
    });
    // Words that are no number are the same objects.
    expect(out[0]).toBe(input[0]);
  });

  it("rebuilds the text only when a number changed", () => {
    const base = {
      start: 0,
      end: 4,
      confidence: 0.9,
      isFinal: true,
      speechFinal: true,
      fromFinalize: false,
    };
    const plain: Transcript = {
      ...base,
      text: "Go forward 10 meters.",
      words: words("Go forward 10 meters."),
    };
    expect(withNumerals(plain)).toBe(plain);
    const spoken: Transcript = { ...base, text: "Ten of clubs.", words: words("Ten of clubs.") };
    expect(withNumerals(spoken).text).toBe("10 of clubs.");
    // English number words inside Chinese (language=multi): the text is not words joined by
    // spaces there, so it is left as Whisper wrote it.
    const chinese: Transcript = {
      ...base,
      text: "我有two个苹果。",
      words: words("我有 two 个 苹果。"),
    };
    expect(withNumerals(chinese)).toBe(chinese);
  });
});
