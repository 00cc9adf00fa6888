/**
 * Which previous utterance a final continues, and the tokens the decoder reads for it
 * (src/stt/whisper/continuation.ts), on the real vocabulary. Pure: no model runs here; the
 * accuracy suite measures what continuation buys (docs/accuracy.md).
 */
import { beforeAll, describe, expect, it } from "vitest";
import {
  CONTEXT_MAX_GAP_SECONDS,
  CONTEXT_MAX_SECONDS,
  CONTINUE_MAX_SECONDS,
  continuationFor,
  type DecodedUtterance,
  forcedTokens,
  MAX_FORCED_TOKENS,
  rereads,
  shiftTimestamps,
} from "../src/stt/whisper/continuation";
import { type AddedTokens, type Vocab, WhisperTokenizer } from "../src/stt/whisper/tokenizer";
import { whisperJson } from "./helpers/whisper-files";

const RATE = 16_000;
/** Samples of `seconds`. */
const at = (seconds: number) => Math.round(seconds * RATE);
let tokenizer: WhisperTokenizer;
/** The timestamp token of `seconds`. */
let ts: (seconds: number) => number;
let text: number[];

beforeAll(async () => {
  const vocab = await whisperJson<Vocab>("vocab.json");
  const added = await whisperJson<AddedTokens>("added_tokens.json");
  tokenizer = new WhisperTokenizer(vocab, added);
  ts = (seconds) => tokenizer.special.timestampBegin + Math.round(seconds / 0.02);
  text = tokenizer.encode(" and so my fellow Americans");
});

/** A previous utterance of `seconds` of audio (a ramp, so a test can see which part is kept). */
function previous(startSeconds: number, seconds: number, tokens: number[]): DecodedUtterance {
  const audio = Float32Array.from({ length: Math.round(seconds * RATE) }, (_, i) => (i + 1) / 1e6);
  return { startSample: Math.round(startSeconds * RATE), audio, tokens };
}

function readable(ids: readonly number[]): string {
  return ids
    .map((id) =>
      tokenizer.isTimestamp(id) ? `<|${tokenizer.timestampSeconds(id).toFixed(2)}|>` : id,
    )
    .join(" ")
    .replace(text.join(" "), "TEXT");
}

describe("forcedTokens", () => {
  it("closes the last segment and opens the next where the utterance starts", () => {
    const closed = forcedTokens([ts(0), ...text, ts(2.4)], 2.5, 2.8, tokenizer);
    expect(readable(closed ?? [])).toBe("<|0.00|> TEXT <|2.40|> <|2.80|>");
  });

  it("closes a segment the decode left open at the end of its audio", () => {
    const open = forcedTokens([ts(0), ...text], 2.5, 2.8, tokenizer);
    expect(readable(open ?? [])).toBe("<|0.00|> TEXT <|2.50|> <|2.80|>");
  });

  it("drops a segment opened with nothing in it, and clamps times into the kept audio", () => {
    const tokens = [ts(0), ...text, ts(2.4), ts(2.6)];
    expect(readable(forcedTokens(tokens, 3, 3.2, tokenizer) ?? [])).toBe(
      "<|0.00|> TEXT <|2.40|> <|3.20|>",
    );
    // Kept audio cut at 2 s (the next utterance's pre-roll reached back into it).
    expect(readable(forcedTokens(tokens, 2, 2, tokenizer) ?? [])).toBe(
      "<|0.00|> TEXT <|2.00|> <|2.00|>",
    );
  });

  it("opens a continued decode's tokens, which start with text, at 0", () => {
    const continued = forcedTokens([...text, ts(1.2)], 1.5, 1.7, tokenizer);
    expect(readable(continued ?? [])).toBe("<|0.00|> TEXT <|1.20|> <|1.70|>");
  });

  it("has nothing to read without text, or with too many tokens", () => {
    expect(forcedTokens([ts(0), ts(1)], 2, 2, tokenizer)).toBeNull();
    expect(forcedTokens([], 2, 2, tokenizer)).toBeNull();
    const long = [ts(0), ...Array<number>(MAX_FORCED_TOKENS).fill(text[0] as number), ts(4)];
    expect(forcedTokens(long, 5, 5, tokenizer)).toBeNull();
  });
});

describe("continuationFor", () => {
  it("opens the window with the previous audio and the pause after it as silence", () => {
    const before = previous(1, 2, [ts(0), ...text, ts(1.8)]);
    const gap = 0.3;
    const c = continuationFor(before, at(3.3), at(1), RATE, tokenizer);
    expect(c?.audio.length).toBe(at(2 + gap));
    expect(c?.audio.subarray(0, at(2))).toEqual(before.audio);
    expect(c?.audio.subarray(at(2)).every((v) => v === 0)).toBe(true);
    expect(readable(c?.tokens ?? [])).toBe("<|0.00|> TEXT <|1.80|> <|2.30|>");
  });

  it("reads audio the next utterance's pre-roll overlaps only once, as the next one's", () => {
    const before = previous(1, 2, [ts(0), ...text, ts(1.9)]);
    // The next utterance starts 0.2 s before the previous one's audio ends.
    const c = continuationFor(before, at(2.8), at(1), RATE, tokenizer);
    expect(c?.audio).toEqual(before.audio.subarray(0, at(1.8)));
    expect(readable(c?.tokens ?? [])).toBe("<|0.00|> TEXT <|1.80|> <|1.80|>");
  });

  it("decodes alone past each bound", () => {
    const tokens = [ts(0), ...text, ts(1.8)];
    const ok = previous(0, 2, tokens);
    expect(continuationFor(ok, at(2.5), at(1), RATE, tokenizer)).not.toBeNull();
    expect(continuationFor(null, at(2.5), at(1), RATE, tokenizer)).toBeNull();
    // This utterance is long enough to carry its own context.
    const long = at(CONTINUE_MAX_SECONDS + 0.1);
    expect(continuationFor(ok, at(2.5), long, RATE, tokenizer)).toBeNull();
    // The previous one is too long to read again.
    const longBefore = previous(0, CONTEXT_MAX_SECONDS + 0.1, tokens);
    expect(continuationFor(longBefore, at(5.5), at(1), RATE, tokenizer)).toBeNull();
    // The pause between them ended the sentence.
    const late = at(2 + CONTEXT_MAX_GAP_SECONDS + 0.01);
    expect(continuationFor(ok, late, at(1), RATE, tokenizer)).toBeNull();
    // It has no text to read.
    const silent = previous(0, 2, [ts(0), ts(1.8)]);
    expect(continuationFor(silent, at(2.5), at(1), RATE, tokenizer)).toBeNull();
  });
});

describe("shiftTimestamps", () => {
  it("moves timestamps back by the context, none before 0, and leaves text alone", () => {
    const shifted = shiftTimestamps([ts(2.3), ...text, ts(3.5), ts(1)], 2.3, tokenizer);
    expect(readable(shifted)).toBe("<|0.00|> TEXT <|1.20|> <|0.00|>");
  });
});

describe("rereads", () => {
  it("catches a continuation that starts the context over, not one that goes on", () => {
    expect(rereads("He was not.", "He was not, and he'll dispose young man.")).toBe(true);
    expect(rereads("and so my fellow Americans", "fellow Americans, ask not")).toBe(true);
    expect(rereads("He was not.", "an ill-disposed young man.")).toBe(false);
    // One word said again ("five five") is speech, not a re-read.
    expect(rereads("five,", "five.")).toBe(false);
    expect(rereads("ten of clubs", "Queen of clubs")).toBe(false);
  });
});
