import { describe, expect, it } from "vitest";
import type { ListenOptions } from "../src/protocol/option-schema";
import { parseListenOptions } from "../src/protocol/options";
import { transcriptFormat } from "../src/session/session-config";
import { withProfanityFiltered } from "../src/stt/profanity";
import type { Transcript } from "../src/stt/transcriber";
import { words } from "./helpers/transcripts";

function transcript(text: string): Transcript {
  return {
    start: 0,
    end: 9,
    text,
    confidence: 0.9,
    words: words(text),
    isFinal: true,
    speechFinal: true,
    fromFinalize: false,
  };
}

function options(query: string): ListenOptions {
  const result = parseListenOptions(new URLSearchParams(query));
  if (!result.ok) throw new Error(result.message);
  return result.options;
}

describe("profanity_filter (English profanity masked with asterisks)", () => {
  it("masks profane words and their forms in word, punctuated_word and the text", () => {
    const filtered = withProfanityFiltered(
      transcript("Oh shit, that's fucking Bullshit. Motherfuckers! It's the bitch's fault."),
    );
    expect(filtered.text).toBe(
      "Oh ****, that's ******* ********. *************! It's the *****'s fault.",
    );
    expect(filtered.words.map((w) => w.word)).toEqual([
      "oh",
      "****",
      "that's",
      "*******",
      "********",
      "*************",
      "it's",
      "the",
      "*****'s",
      "fault",
    ]);
    // Times and confidences are the word's own.
    expect(filtered.words[1]).toMatchObject({ start: 1, end: 1.8, confidence: 0.9 });
  });

  it("masks a profane part of a word between quotes, hyphens or another script, keeping the rest", () => {
    const quoted = withProfanityFiltered(
      transcript("He said 'fuck off'. It was fucked-up, shit-faced."),
    );
    expect(quoted.text).toBe("He said '**** off'. It was ******-up, ****-faced.");
    expect(quoted.words.map((w) => w.punctuatedWord)).toEqual([
      "He",
      "said",
      "'****",
      "off'.",
      "It",
      "was",
      "******-up,",
      "****-faced.",
    ]);
    expect(quoted.words.map((w) => w.word)).toEqual([
      "he",
      "said",
      "****",
      "off",
      "it",
      "was",
      "******-up",
      "****-faced",
    ]);
    // A Japanese text keeps its spacing (none): only the English word is masked.
    const japanese: Transcript = {
      ...transcript("マジで fuck だ"),
      text: "マジでfuckだ",
    };
    expect(withProfanityFiltered(japanese).text).toBe("マジで****だ");
  });

  it("leaves words that only contain or resemble one, and returns the same object when clean", () => {
    const clean = transcript(
      "Scunthorpe's cocktail assessment: Dick Shitake of Hellsinki passed, damn it, the class.",
    );
    expect(withProfanityFiltered(clean)).toBe(clean);
  });

  it("applies with profanity_filter=true in English or multi, after numerals, not otherwise", () => {
    const said = transcript("Ten fucking times.");
    expect(transcriptFormat(options("profanity_filter=true&numerals=true"))(said).text).toBe(
      "10 ******* times.",
    );
    expect(transcriptFormat(options("profanity_filter=true&language=multi"))(said).text).toBe(
      "Ten ******* times.",
    );
    expect(transcriptFormat(options("profanity_filter=false"))(said)).toBe(said);
    expect(transcriptFormat(options(""))(said)).toBe(said);
    expect(transcriptFormat(options("profanity_filter=true&language=fr"))(said)).toBe(said);
  });
});
