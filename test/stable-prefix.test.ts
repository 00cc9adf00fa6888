/**
 * The stable prefix of interims (src/stt/stable-prefix.ts): settled words keep their spelling, the
 * words of one interim never overlap in time, and the text keeps the hypothesis's own separators.
 */
import { describe, expect, it } from "vitest";
import { StablePrefix } from "../src/stt/stable-prefix";
import type { Transcript, TranscriptWord } from "../src/stt/transcriber";

function word(punctuatedWord: string, start: number, end: number): TranscriptWord {
  const plain = punctuatedWord.toLowerCase().replace(/[^\p{L}\p{N}]/gu, "");
  return { word: plain, punctuatedWord, start, end, confidence: 0.9 };
}

function interim(words: TranscriptWord[], text: string): Transcript {
  return {
    start: 0,
    end: 3,
    text,
    confidence: 0.9,
    words,
    isFinal: false,
    speechFinal: false,
    fromFinalize: false,
  };
}

describe("StablePrefix", () => {
  it("keeps a settled word's spelling while the tail is rewritten", () => {
    const stable = new StablePrefix();
    stable.stabilise(interim([word("Hello", 0, 0.4), word("there", 0.4, 0.8)], "Hello there"));
    stable.stabilise(interim([word("Hello", 0, 0.4), word("there", 0.4, 0.8)], "Hello there"));
    const third = stable.stabilise(
      interim(
        [word("hello,", 0, 0.4), word("there,", 0.4, 0.8), word("friend.", 0.8, 1.2)],
        "hello, there, friend.",
      ),
    );
    expect(third.words.map((w) => w.punctuatedWord)).toEqual(["Hello", "there", "friend."]);
    expect(third.text).toBe("Hello there friend.");
  });

  it("times settled words from the new hypothesis, so no two words of an interim overlap", () => {
    const stable = new StablePrefix();
    const early = [word("Five", 0.2, 1.4), word("five", 1.4, 2.0)];
    stable.stabilise(interim(early, "Five five"));
    stable.stabilise(interim(early, "Five five"));
    // The longer hypothesis times the same two words shorter and adds one after them.
    const later = stable.stabilise(
      interim(
        [word("Five", 0.2, 0.5), word("five", 0.5, 0.9), word("nine", 0.9, 1.3)],
        "Five five nine",
      ),
    );
    for (const [i, w] of later.words.entries()) {
      expect(w.end).toBeGreaterThanOrEqual(w.start);
      const next = later.words[i + 1];
      if (next) expect(next.start).toBeGreaterThanOrEqual(w.end);
    }
    expect(later.words.map((w) => [w.start, w.end])).toEqual([
      [0.2, 0.5],
      [0.5, 0.9],
      [0.9, 1.3],
    ]);
  });

  it("keeps the hypothesis's separators: no spaces added between Chinese segments", () => {
    const stable = new StablePrefix();
    const segments = [word("你好。", 0, 1), word("今天天气很好。", 1, 2.5)];
    stable.stabilise(interim(segments, "你好。今天天气很好。"));
    const second = stable.stabilise(interim(segments, "你好。今天天气很好。"));
    expect(second.text).toBe("你好。今天天气很好。");
    const third = stable.stabilise(
      interim(
        [word("你好", 0, 1), word("今天天气很好。", 1, 2.5), word("我们走吧。", 2.5, 3)],
        "你好今天天气很好。我们走吧。",
      ),
    );
    expect(third.text).toBe("你好。今天天气很好。我们走吧。");
  });

  it("starts over after reset: the next utterance's spelling is its own", () => {
    const stable = new StablePrefix();
    stable.stabilise(interim([word("Yes.", 0, 0.3)], "Yes."));
    stable.stabilise(interim([word("Yes.", 0, 0.3)], "Yes."));
    stable.reset();
    const next = stable.stabilise(
      interim([word("yes", 4, 4.3), word("please", 4.3, 4.8)], "yes please"),
    );
    expect(next.text).toBe("yes please");
    expect(next.words[0]?.start).toBe(4);
  });

  it("keeps the hypothesis's own text where no settled spelling changes it", () => {
    const stable = new StablePrefix();
    // Written forms that are not verbatim in the text ("-No." is " - No."): the text stays.
    const first = stable.stabilise(
      interim(
        [word("Yes.", 0, 0.4), word("-No.", 0.5, 0.9), word("Maybe", 1, 1.4)],
        "Yes. - No. Maybe",
      ),
    );
    expect(first.text).toBe("Yes. - No. Maybe");
    const chinese = new StablePrefix().stabilise(
      interim(
        [word("嗯...", 0, 0.5), word("今天", 0.5, 1), word("天气", 1, 1.5)],
        "嗯 ... 今天天气",
      ),
    );
    expect(chinese.text).toBe("嗯 ... 今天天气");
  });
});
