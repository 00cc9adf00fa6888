/**
 * A session hears the same speech wherever its stream starts (workerd, real models; the "whisper"
 * project). A microphone opens wherever the speaker is: the browser demo starts capturing some
 * 40–230 ms into its clip. Silero's state used to start from zeros, and JFK's quiet "ask not",
 * 3.3 s into the clip, was found only when the stream began at the clip's very start (1 of 9
 * starts 0 … 320 ms); primed with silence (src/vad/silero.ts) it is found at all of them.
 *
 * Offsets inside one VAD frame move every frame's boundary: the browser demo lost "ask not" at 1
 * of 16 offsets 0 … 30 ms under a stricter VAD, and the music of a no-speech clip opens an
 * utterance at some offsets and not at others (docs/accuracy.md, "Quiet short phrases"). So the
 * short turns must come through, and the no-speech clips give no words, at offsets within a frame.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { normalizeWords, wordErrorRate } from "../tools/eval/wer";
import { allWords, deletionRuns, finalText, streamClip } from "./helpers/accuracy";
import { manifest, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";

/** Where the stream starts in the clip: every 40 ms over 320 ms (10 VAD frames). */
const CUTS_MS = [0, 40, 80, 120, 160, 200, 240, 280, 320];
const BYTES_PER_MS = 32;

/**
 * A digit string read out ("two nine three four zero") is scored digit by digit, whatever digits
 * Whisper ran together: "293400" is one digit too many, not five words lost. (The scorer splits a
 * number only where it matches the reference's digits: tools/eval/wer.ts.)
 */
function digitsApart(reference: string, text: string): string {
  const readOut = normalizeWords(reference).every((w) => /^\d$/.test(w));
  return readOut ? text.replace(/\d{2,}/g, (run) => run.split("").join(" ")) : text;
}

/** Offsets inside one 32-ms VAD frame. */
const IN_FRAME_CUTS_MS = [0, 8, 16, 24];

beforeAll(seedModels);

describe("where the stream starts", () => {
  it("loses no phrase of JFK at any start 0 … 320 ms into the clip", {
    timeout: 300_000,
  }, async () => {
    const row = (await manifest("dev")).find((r) => r.id === "wcpp_jfk");
    if (!row) throw new Error("wcpp_jfk is not in the dev manifest");
    const pcm = (await wavFixture(row.file)).pcm;
    const lost: string[] = [];
    for (const cut of CUTS_MS) {
      const client = await streamClip(
        pcm.subarray(cut * BYTES_PER_MS),
        "?encoding=linear16&sample_rate=16000&endpointing=500",
      );
      const text = finalText(client);
      const score = wordErrorRate(row.reference, text);
      console.log(`start ${cut} ms: ${score.errors} errors, "${text}"`);
      // The first word may be cut with the audio; a phrase (2+ words in a row) must never go.
      if (deletionRuns(score.alignment).some((run) => run >= 2)) lost.push(`${cut} ms: ${text}`);
      expect(score.deletions, `start ${cut} ms: "${text}"`).toBeLessThanOrEqual(1);
    }
    expect(lost).toEqual([]);
  });

  it("loses no short turn at offsets inside a VAD frame (endpointing 10 and 500)", {
    timeout: 300_000,
  }, async () => {
    const lost: string[] = [];
    for (const row of (await manifest("short")).filter((r) => r.category === "speech")) {
      const pcm = (await wavFixture(row.file)).pcm;
      for (const setting of [10, 500]) {
        for (const cut of IN_FRAME_CUTS_MS) {
          const client = await streamClip(
            pcm.subarray(cut * BYTES_PER_MS),
            `?encoding=linear16&sample_rate=16000&endpointing=${setting}`,
          );
          const text = finalText(client);
          const score = wordErrorRate(row.reference, digitsApart(row.reference, text));
          console.log(
            `${row.id} at ${setting}, start ${cut} ms: ${score.errors} errors, "${text}"`,
          );
          if (score.deletions > 1 || deletionRuns(score.alignment).some((run) => run >= 2)) {
            lost.push(`${row.id} at ${setting}, ${cut} ms: "${text}"`);
          }
        }
      }
    }
    expect(lost).toEqual([]);
  });

  it("sends no words on the no-speech clips at offsets inside a VAD frame", {
    timeout: 300_000,
  }, async () => {
    const heard: string[] = [];
    for (const row of (await manifest("dev")).filter((r) => r.category !== "speech")) {
      const pcm = (await wavFixture(row.file)).pcm;
      for (const setting of [10, 300, 500]) {
        for (const cut of IN_FRAME_CUTS_MS) {
          const client = await streamClip(
            pcm.subarray(cut * BYTES_PER_MS),
            `?encoding=linear16&sample_rate=16000&endpointing=${setting}&interim_results=true`,
          );
          const words = allWords(client);
          if (words.length > 0)
            heard.push(`${row.id} at ${setting}, ${cut} ms: ${words.join(" ")}`);
        }
      }
    }
    expect(heard).toEqual([]);
  });
});
