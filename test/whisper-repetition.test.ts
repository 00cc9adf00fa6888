/**
 * The repetition guard (src/stt/whisper/repetition.ts) on text in Whisper's real vocabulary, fed
 * one token at a time as the decoder does: loops in scripts without spaces are cut after their
 * first copy, ordinary speech in any script is left whole.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { findRepetition } from "../src/stt/whisper/repetition";
import { type AddedTokens, type Vocab, WhisperTokenizer } from "../src/stt/whisper/tokenizer";
import { whisperJson } from "./helpers/whisper-files";

let tokenizer: WhisperTokenizer;
/** Text token ids by their bytes (hex), for a greedy longest-match encoder. */
const byBytes = new Map<string, number>();
let longest = 0;

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

beforeAll(async () => {
  tokenizer = new WhisperTokenizer(
    await whisperJson<Vocab>("vocab.json"),
    await whisperJson<AddedTokens>("added_tokens.json"),
  );
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    if (!tokenizer.isText(id)) continue;
    const bytes = tokenizer.tokenBytes(id);
    const key = hex(bytes);
    if (!byBytes.has(key)) byBytes.set(key, id);
    longest = Math.max(longest, bytes.length);
  }
}, 60_000);

/** Greedy longest-match tokens of `text` (not Whisper's BPE merges, but real vocabulary tokens). */
function encode(text: string): number[] {
  const bytes = new TextEncoder().encode(text);
  const ids: number[] = [];
  for (let at = 0; at < bytes.length; ) {
    let found = false;
    for (let length = Math.min(longest, bytes.length - at); length > 0 && !found; length--) {
      const id = byBytes.get(hex(bytes.subarray(at, at + length)));
      if (id !== undefined) {
        ids.push(id);
        at += length;
        found = true;
      }
    }
    if (!found) throw new Error(`no token for byte ${bytes[at]}`);
  }
  return ids;
}

/** What decoding keeps: tokens fed one by one until the guard cuts, as greedyDecode does. */
function decodeWithGuard(ids: readonly number[]): { text: string; rule?: string } {
  const sampled: number[] = [];
  for (const [i, id] of ids.entries()) {
    sampled.push(id);
    const cut = findRepetition(sampled, tokenizer, { final: i === ids.length - 1 });
    if (cut) {
      sampled.length = cut.at;
      return { text: tokenizer.decode(sampled).trim(), rule: cut.rule };
    }
  }
  return { text: tokenizer.decode(sampled).trim() };
}

const timestamp = (seconds: number) =>
  tokenizer.special.timestampBegin + Math.round(seconds / 0.02);

describe("repetition guard in scripts without spaces", () => {
  it("cuts the Chinese loop of the 1-s clip after its first copy", () => {
    const copy = encode("炸自己的脚臭");
    const looped = [timestamp(0), ...copy, ...copy, ...copy];
    expect(decodeWithGuard(looped)).toEqual({ text: "炸自己的脚臭", rule: "characters" });
    // Tokenized differently or punctuated between copies, and across segments: still a loop.
    const split = [
      timestamp(0),
      ...encode("炸自己的脚臭，"),
      timestamp(0.5),
      timestamp(0.5),
      ...encode("炸自己"),
      ...encode("的脚臭"),
    ];
    expect(decodeWithGuard(split).rule).toBe("characters");
  });

  it("cuts a Japanese loop", () => {
    const copy = encode("ありがとうございます");
    expect(decodeWithGuard([timestamp(0), ...copy, ...copy]).text).toBe("ありがとうございます");
  });

  it("leaves ordinary speech whole, repeated short words included", () => {
    for (const text of [
      "搬起石头砸自己的脚",
      "一步一步来，谢谢谢谢",
      "好的，好的",
      "si la dictée numéro un",
      "and so my fellow americans ask not what your country can do for you ask what you can do for your country",
      "two nine three four zero five five",
      "bye-bye, bye-bye",
    ]) {
      expect(decodeWithGuard([timestamp(0), ...encode(` ${text}`)]), text).toEqual({
        text,
      });
    }
  });

  it("keeps whole characters where its cut falls inside one (Korean tokens straddle them)", () => {
    const looped = " 네네네네네네네네네네";
    const { text } = decodeWithGuard(tokenizer.encode(looped));
    expect(text).not.toContain("\uFFFD");
    expect(text.length).toBeGreaterThan(0);
    expect(looped).toContain(text);
  });
});
