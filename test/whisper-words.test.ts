/**
 * The words of a final as Whisper's real tokens give them (src/stt/whisper/transcript.ts): the
 * `word` of a written number keeps what is inside it, punctuation that opens a segment joins
 * its first word instead of becoming a word of its own, and Chinese or Japanese (no spaces) is
 * split into words rather than given as one word a segment.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { SampledToken } from "../src/stt/whisper/decode-types";
import { type AddedTokens, type Vocab, WhisperTokenizer } from "../src/stt/whisper/tokenizer";
import { buildTranscript } from "../src/stt/whisper/transcript";
import { whisperJson } from "./helpers/whisper-files";

let tokenizer: WhisperTokenizer;

beforeAll(async () => {
  tokenizer = new WhisperTokenizer(
    await whisperJson<Vocab>("vocab.json"),
    await whisperJson<AddedTokens>("added_tokens.json"),
  );
}, 60_000);

/** The words of a decode of `parts`: text, or a number for a timestamp token at those seconds. */
function wordsOf(parts: (string | number)[], audioSeconds: number, language = "en") {
  const ids = parts.flatMap((part) =>
    typeof part === "number"
      ? [tokenizer.special.timestampBegin + Math.round(part / 0.02)]
      : tokenizer.encode(part),
  );
  const tokens: SampledToken[] = ids.map((id) => ({
    id,
    probability: 0.9,
    logprob: Math.log(0.9),
  }));
  return buildTranscript(
    {
      language,
      tokens,
      noSpeechProbability: 0,
      avgLogprob: -0.1,
      stopReason: "endoftext",
      temperature: 0,
      decoderSteps: ids.length,
      promptMs: 0,
    },
    tokenizer,
    audioSeconds,
  ).words;
}

describe("a final's words", () => {
  it("keep what is inside a written number, so its digits never run together", () => {
    const words = wordsOf([0, " It costs 3.5 dollars at 10:30, call 555-1234.", 2.5], 3);
    expect(words.map((w) => w.word)).toEqual([
      "it",
      "costs",
      "3.5",
      "dollars",
      "at",
      "10:30",
      "call",
      "555-1234",
    ]);
    expect(words.map((w) => w.punctuatedWord)).toContain("555-1234.");
  });

  it("give punctuation that opens a segment to its first word, never a word of its own", () => {
    const words = wordsOf([0, " Yes.", 1, 1, " - No.", 2, 2, " ...and then", 3], 3);
    for (const word of words) expect(word.word).not.toBe("");
    expect(words.map((w) => w.punctuatedWord)).toEqual(["Yes.", "-No.", "...and", "then"]);
    expect(words.map((w) => w.word)).toEqual(["yes", "no", "and", "then"]);
    // Each segment's span is still shared among its words: "-No." starts where its segment does.
    expect(words[1]?.start).toBe(1);
  });

  it("split Chinese and Japanese into words, punctuation with the word before it", () => {
    const chinese = wordsOf([0, "你好。今天天气很好。", 3], 3, "zh");
    const japanese = wordsOf([0, "今日はいい天気ですね。", 2], 2, "ja");
    for (const [words, text] of [
      [chinese, "你好。今天天气很好。"],
      [japanese, "今日はいい天気ですね。"],
    ] as const) {
      // Several words, which put together give the segment back, none of punctuation alone.
      expect(words.length).toBeGreaterThanOrEqual(3);
      expect(words.map((w) => w.punctuatedWord).join("")).toBe(text);
      for (const word of words) expect(word.word).not.toBe("");
      // The segment's span shared out in order: each word starts where the one before ends.
      for (const [i, word] of words.entries()) {
        expect(word.end).toBeGreaterThan(word.start);
        if (i > 0) expect(word.start).toBe(words[i - 1]?.end);
      }
    }
    expect(chinese.map((w) => w.word)).toContain("今天");
    expect(chinese[0]?.punctuatedWord).toBe("你好。");
    expect(chinese[0]?.word).toBe("你好");
  });

  it("leave a spaced language's words as its tokens group them", () => {
    const words = wordsOf([0, " Bonjour, je m'appelle Marie.", 2], 2, "fr");
    expect(words.map((w) => w.punctuatedWord)).toEqual(["Bonjour,", "je", "m'appelle", "Marie."]);
  });

  it("keep times, phone numbers and opening brackets whole inside Chinese", () => {
    const written = (text: string) => wordsOf([0, text, 3], 3, "zh").map((w) => w.punctuatedWord);
    expect(written("会议10:30开始，电话555-1234。")).toEqual(
      expect.arrayContaining(["10:30", "555-1234。"]),
    );
    expect(written("COVID-19期间")).toContain("COVID-19");
    const quoted = written("他说：“你好”。");
    expect(quoted).toContain("“你好”。");
    expect(quoted.join("")).toBe("他说：“你好”。");
    // A full-width space separates words and belongs to none.
    const spaced = wordsOf([0, "今日は　いい天気", 2], 2, "ja").map((w) => w.punctuatedWord);
    for (const word of spaced) expect(word).not.toMatch(/\s/u);
  });
});
