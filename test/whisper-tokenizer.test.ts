import { beforeAll, describe, expect, it } from "vitest";
import { KEYTERM_BONUS, keytermBias } from "../src/stt/whisper/keyterm-bias";
import { type AddedTokens, type Vocab, WhisperTokenizer } from "../src/stt/whisper/tokenizer";
import { whisperJson } from "./helpers/whisper-files";

/*
 * Token ids below are real ids of the stock vocab.json, found by encoding the strings with
 * transformers.js' Whisper tokenizer (@huggingface/transformers 4.3.1, AutoTokenizer on the same
 * tokenizer.json); this file only decodes them.
 */

let tokenizer: WhisperTokenizer;

beforeAll(async () => {
  const vocab = await whisperJson<Vocab>("vocab.json");
  const added = await whisperJson<AddedTokens>("added_tokens.json");
  tokenizer = new WhisperTokenizer(vocab, added);
});

/**
 * True when these bytes alone are not complete UTF-8. (Checked by the replacement character:
 * workerd's TextDecoder with `fatal: true` does not throw on a truncated final sequence.)
 */
function isPartialUtf8(bytes: Uint8Array): boolean {
  return new TextDecoder("utf-8").decode(bytes).includes("\uFFFD");
}

describe("Whisper tokenizer (decoding)", () => {
  it("knows the special tokens of the multilingual vocabulary", () => {
    expect(tokenizer.special).toEqual({
      endOfText: 50257,
      startOfTranscript: 50258,
      translate: 50358,
      transcribe: 50359,
      startOfLm: 50360,
      startOfPrev: 50361,
      noSpeech: 50362,
      noTimestamps: 50363,
      timestampBegin: 50364,
      timestampEnd: 51864,
    });
    expect(tokenizer.vocabSize).toBe(51865);
  });

  it("maps language codes to tokens and back", () => {
    expect(tokenizer.languages.size).toBe(99);
    expect(tokenizer.languageToken("en")).toBe(50259);
    expect(tokenizer.languageToken("ja")).toBe(50266);
    expect(tokenizer.languageToken("haw")).toBe(50352);
    expect(tokenizer.languageOf(50260)).toBe("zh");
    expect(tokenizer.languageOf(50359)).toBeUndefined();
    expect(() => tokenizer.languageToken("xx")).toThrow(RangeError);
  });

  it("names timestamps in 0.02 s steps up to 30 s", () => {
    expect(tokenizer.timestampSeconds(50364)).toBe(0);
    expect(tokenizer.timestampSeconds(50364 + 75)).toBe(1.5);
    expect(tokenizer.timestampSeconds(51864)).toBe(30);
    expect(tokenizer.specialName(50439)).toBe("<|1.50|>");
    expect(tokenizer.isTimestamp(50363)).toBe(false);
    expect(() => tokenizer.timestampSeconds(50257)).toThrow(RangeError);
  });

  it("holds each text token's bytes apart, and none for other ids", async () => {
    const added = await whisperJson<AddedTokens>("added_tokens.json");
    // Id 2 is missing; "Ġ" is the stand-in for a space byte.
    const small = new WhisperTokenizer({ "!": 0, Ġb: 1, cd: 3, "<|endoftext|>": 4 }, added);
    const bytes = (id: number) => [...small.tokenBytes(id)];
    expect([0, 1, 2, 3, 4, -1].map(bytes)).toEqual([[33], [32, 98], [], [99, 100], [], []]);
    expect(small.decode([3, 1, 0])).toBe("cd b!");
    // The real table: one byte per stand-in character, for every text token.
    const vocab = await whisperJson<Vocab>("vocab.json");
    let checked = 0;
    for (const [token, id] of Object.entries(vocab)) {
      if (!tokenizer.isText(id)) continue;
      if (tokenizer.tokenBytes(id).length !== token.length) throw new Error(`token ${id}`);
      checked += 1;
    }
    expect(checked).toBe(50257);
    expect([0, 262, 50256].map((id) => [...tokenizer.tokenBytes(id)])).toEqual([
      [33], // "!"
      [32, 115], // "Ġs": " s"
      [], // the pinned vocabulary's last text token is empty
    ]);
    expect(tokenizer.tokenBytes(50257).length).toBe(0);
    expect(tokenizer.tokenBytes(50364).length).toBe(0);
  });

  it("decodes ASCII and Latin text", () => {
    expect(tokenizer.decode([1667, 15487, 303, 25118])).toBe(" naïve café");
    expect(tokenizer.decode([38932])).toBe(" Привет");
  });

  it("joins a Japanese character split over two tokens", () => {
    const ids = [220, 18413, 31375, 7182, 2972, 6135, 25870, 3065, 5094, 112, 4132, 4767, 1543];
    // 晴 is split over 5094 and 112, so token-by-token decoding would break it.
    expect(isPartialUtf8(tokenizer.tokenBytes(5094))).toBe(true);
    expect(isPartialUtf8(tokenizer.tokenBytes(112))).toBe(true);
    expect(tokenizer.decode(ids)).toBe(" 東京都の天気は晴れです。");
    expect(tokenizer.decode([14384, 3225, 35752, 1231, 24486, 1543])).toBe(" こんにちは、世界。");
  });

  it("joins emoji split over two tokens", () => {
    const ids = [19034, 231, 31017, 235, 1096];
    expect(isPartialUtf8(tokenizer.tokenBytes(19034))).toBe(true);
    expect(isPartialUtf8(tokenizer.tokenBytes(31017))).toBe(true);
    expect(tokenizer.decode(ids)).toBe(" 🎉👍 done");
    // A sequence cut inside a character ends with the whole characters before it (a repetition
    // cut or the token cap may fall there), never with U+FFFD, and never throws.
    expect(tokenizer.decode([19034])).toBe(" ");
  });

  it("skips special and timestamp tokens, or names them on request", () => {
    const ids = [50258, 50266, 50359, 50364, 220, 27311, 31348, 50439, 50257];
    expect(tokenizer.decode(ids)).toBe(" 日本語");
    expect(tokenizer.decode(ids, { withSpecial: true })).toBe(
      "<|startoftranscript|><|ja|><|transcribe|><|0.00|> 日本語<|1.50|><|endoftext|>",
    );
  });
});

/*
 * Expected ids from an independent implementation: Hugging Face's merge-list BPE (merges.txt in
 * rank order, GPT-2's pre-tokenization pattern) written in Python over the same stock files,
 * while the tokenizer ranks pairs by vocab.json ids as tiktoken does. Both gave identical ids on
 * all 96 strings tried (every dev and short reference in four casings, and these).
 */
describe("Whisper tokenizer (encoding)", () => {
  const cases: [string, number[]][] = [
    [" Mr. Quilter, Dashwood.", [2221, 13, 2326, 388, 391, 11, 23453, 6092, 13]],
    [" five five", [1732, 1732]],
    [
      " Bonjour, ça va très bien. Œuvre.",
      [25431, 11, 2788, 2773, 5732, 3610, 13, 4423, 240, 34171, 13],
    ],
    [" 炸自己的脚臭", [220, 4804, 116, 17645, 1546, 27067, 248, 6784, 255]],
    [" naïve café—résumé", [1667, 15487, 303, 25118, 2958, 18981, 449, 526]],
    [" \t\n  x  ", [220, 197, 198, 220, 2031, 220, 220]],
    ["😀👍🏽 emoji", [13125, 222, 31017, 235, 4222, 237, 121, 31595]],
    ["", []],
  ];
  for (const [text, ids] of cases) {
    it(`encodes ${JSON.stringify(text)} as Whisper's tokenizer does`, () => {
      expect(tokenizer.encode(text)).toEqual(ids);
      expect(tokenizer.decode(ids)).toBe(text);
    });
  }

  it("encodes special token names as plain text", () => {
    const ids = tokenizer.encode("<|endoftext|><|startoftranscript|>");
    expect(ids.every((id) => tokenizer.isText(id))).toBe(true);
    expect(tokenizer.decode(ids)).toBe("<|endoftext|><|startoftranscript|>");
  });
});

describe("keyterm bias", () => {
  it("favours each term with a leading space, first letter raised and lowered", () => {
    const bias = keytermBias(tokenizer, ["clubs", "Mr. Quilter"]);
    expect(bias.bonus).toBe(KEYTERM_BONUS);
    const spellings = bias.sequences.map((ids) => tokenizer.decode(ids)).sort();
    expect(spellings).toEqual([" Clubs", " Mr. Quilter", " clubs", " mr. Quilter"].sort());
  });

  it("never favours a lone space: a term of a script without spaces is favoured as written", () => {
    const bias = keytermBias(tokenizer, ["炸自己"]);
    const space = tokenizer.encode(" ")[0];
    expect(bias.sequences.length).toBeGreaterThan(0);
    for (const ids of bias.sequences) {
      expect(ids[0]).not.toBe(space);
      expect(tokenizer.decode(ids)).toBe("炸自己");
    }
  });

  it("keeps the leading space of a term whose first token is a space and part of a character", () => {
    // 카카오: its first token is a space and the first byte of 카 (decoded alone: a bare space).
    const [first] = tokenizer.encode(" 카카오");
    expect(first).toBeDefined();
    expect(tokenizer.tokenBytes(first ?? -1)[0]).toBe(0x20);
    const bias = keytermBias(tokenizer, ["카카오"]);
    expect(bias.sequences).toContainEqual(tokenizer.encode(" 카카오"));
  });

  it("is empty without keyterms", () => {
    expect(keytermBias(tokenizer, []).sequences).toEqual([]);
  });
});
