/**
 * A session hears the same speech wherever its stream starts (workerd, real models; the "whisper"
 * project). A microphone opens wherever the speaker is: the browser demo starts capturing some
 * 40–230 ms into its clip. Silero's state used to start from zeros, and JFK's quiet "ask not",
 * 3.3 s into the clip, was found only when the stream began at the clip's very start (1 of 9
 * starts 0 … 320 ms); primed with silence (src/vad/silero.ts) it is found at all of them.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { wordErrorRate } from "../scripts/lib/eval/wer";
import { deletionRuns, finalText, streamClip } from "./helpers/accuracy";
import { manifest, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";

/** Where the stream starts in the clip: every 40 ms over 320 ms (10 VAD frames). */
const CUTS_MS = [0, 40, 80, 120, 160, 200, 240, 280, 320];
const BYTES_PER_MS = 32;

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
});
