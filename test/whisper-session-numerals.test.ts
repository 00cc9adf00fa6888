/**
 * `numerals=true` through the real session (workerd, real models; the "whisper" project). Whisper
 * tiny writes most numbers as digits on its own, so the test first makes it spell one out: with
 * `keyterm=ten` it favours the word and writes "ten of clubs" (docs/accuracy.md, "Keyterms").
 * The same session options plus `numerals=true` must turn that word into "10", in the transcript
 * and in the word list, and leave the rest as it was.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { alternative, finalText, streamClip } from "./helpers/accuracy";
import { manifest, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";

beforeAll(seedModels);

const QUERY = "?encoding=linear16&sample_rate=16000&endpointing=300&keyterm=ten";

describe("numerals", () => {
  it("writes a spoken number as digits, words and transcript alike", {
    timeout: 120_000,
  }, async () => {
    const row = (await manifest("short")).find((r) => r.id === "psx_cards_001");
    if (!row) throw new Error("psx_cards_001 is not in the short manifest");
    const pcm = (await wavFixture(row.file)).pcm;
    const spelled = await streamClip(pcm, QUERY);
    const digits = await streamClip(pcm, `${QUERY}&numerals=true`);
    const [before, after] = [finalText(spelled), finalText(digits)];
    console.log(`keyterm=ten: "${before}"; with numerals=true: "${after}"`);
    expect(before.toLowerCase()).toMatch(/\bten of clubs\b/);
    expect(after).toMatch(/\b10 of clubs\b/i);
    expect(after.toLowerCase()).toBe(before.toLowerCase().replace(/\bten\b/, "10"));
    const words = digits
      .of("Results")
      .filter((m) => m.is_final === true)
      .flatMap((m) => alternative(m).words.map((w) => w.word));
    expect(words).toContain("10");
    expect(words).not.toContain("ten");
  });
});
