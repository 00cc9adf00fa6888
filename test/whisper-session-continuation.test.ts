/**
 * Finals that continue the utterance before them (src/stt/whisper/continuation.ts) through the
 * real session (workerd, real models; the "whisper" project): a sentence cut at a short pause
 * reads as one, and what a final continues is only ever its own session's previous utterance.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { alternative, finalText, streamClip } from "./helpers/accuracy";
import { frames, TestClient } from "./helpers/client";
import { manifest, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";
import { concat } from "./helpers/typed-arrays";

beforeAll(seedModels);

/** Silence after each clip in the interleaved run, as streamClip adds it. */
const TRAILING_SILENCE = new Uint8Array(1.5 * 32_000);
/** Deepgram's default endpointing: every short pause ends an utterance. */
const QUERY = "?encoding=linear16&sample_rate=16000&endpointing=10";

async function pcmOf(id: string): Promise<Uint8Array> {
  const row = [...(await manifest("dev")), ...(await manifest("short"))].find((r) => r.id === id);
  if (!row) throw new Error(`${id} is in no manifest`);
  return (await wavFixture(row.file)).pcm;
}

/** Finals of a session, one string each. */
function finals(client: TestClient): string[] {
  return client
    .of("Results")
    .filter((m) => m.is_final === true)
    .map((m) => alternative(m).transcript)
    .filter((t) => t !== "");
}

describe("continuation", () => {
  it("reads a sentence cut at a short pause as one sentence", { timeout: 120_000 }, async () => {
    // "The child almost hurt the small dog", cut after "hurt" at endpointing=10: decoded alone,
    // the second utterance reads "this small dog" (docs/accuracy.md).
    const client = await streamClip(await pcmOf("sb_spk1_snt1"), QUERY);
    const parts = finals(client);
    console.log(`sb_spk1_snt1 at endpointing=10: ${JSON.stringify(parts)}`);
    expect(parts.length).toBeGreaterThan(1);
    expect(finalText(client).toLowerCase()).toContain("the small dog");
  });

  it("continues only its own session's utterances: two sessions at once read as each alone", {
    timeout: 240_000,
  }, async () => {
    // Both clips are cut into two utterances at endpointing=10. B is delayed so that its first
    // utterance ends just after A's first: B's first final is decoded between A's two, so the
    // last final decoded before A's second is B's, and it ends well within the pause a
    // continuation may bridge. A's second final continuing B's "He was not" would read other
    // words or times than A alone; B's are checked too.
    const [a, b] = await Promise.all([pcmOf("sb_spk1_snt1"), pcmOf("psx_librivox_0880")]);
    const soloA = await streamClip(a, QUERY);
    const soloB = await streamClip(b, QUERY);
    const firstEnd = (c: TestClient) => {
      const first = c.of("Results").find((m) => m.is_final === true && alternative(m).transcript);
      return (first?.start as number) + (first?.duration as number);
    };
    const delaySeconds = Math.max(0, firstEnd(soloA) - firstEnd(soloB) + 0.05);
    const delay = new Uint8Array(Math.round(delaySeconds * 16_000) * 2);
    const bDelayed = concat([delay, b]);
    const soloDelayedB = await streamClip(bDelayed, QUERY);
    // Interleaved frame by frame, so the two sessions' finals alternate in the shared models and
    // scheduler.
    const clientA = await TestClient.open(QUERY);
    const clientB = await TestClient.open(QUERY);
    const framesA = [...frames(concat([a, TRAILING_SILENCE]), 3200)];
    const framesB = [...frames(concat([bDelayed, TRAILING_SILENCE]), 3200)];
    for (let i = 0; i < Math.max(framesA.length, framesB.length); i++) {
      const [fa, fb] = [framesA[i], framesB[i]];
      if (fa) clientA.sendAudio(fa);
      if (fb) clientB.sendAudio(fb);
    }
    await Promise.all([clientA.finish(), clientB.finish()]);
    const timed = (c: TestClient) =>
      c
        .of("Results")
        .filter((m) => m.is_final === true && alternative(m).transcript !== "")
        .map((m) => `${alternative(m).transcript} @${m.start}+${m.duration}`);
    console.log(`alone: ${JSON.stringify([timed(soloA), timed(soloDelayedB)])}`);
    expect(finals(soloA).length).toBeGreaterThan(1);
    expect(finals(soloDelayedB).length).toBeGreaterThan(1);
    expect(timed(clientA)).toEqual(timed(soloA));
    expect(timed(clientB)).toEqual(timed(soloDelayedB));
  });
});
