/**
 * Finals that continue the utterance before them (src/stt/whisper/continuation.ts) through the
 * real session (workerd, real models; the "whisper" project): a sentence cut at a pause reads as
 * one, and what a final continues is only ever its own session's previous utterance.
 *
 * The sentences are real speech with a pause put into them where the speaker took a short breath
 * (PAUSE_SECONDS): an utterance ends only at a silence of a phrase's pause or more
 * (MIN_ENDPOINTING_MS, 256 ms), and the clips' own gaps are shorter.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/runtime/log";
import { DEFAULT_BEAM_SIZE } from "../src/stt/beam-size";
import { InferenceScheduler } from "../src/stt/inference-scheduler";
import type { Transcript } from "../src/stt/transcriber";
import { WhisperSession } from "../src/stt/whisper-session";
import { whisperModel } from "../src/stt/whisper-transcriber";
import { alternative, finalText, streamClip } from "./helpers/accuracy";
import { frames, TestClient } from "./helpers/client";
import { manifest, pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";
import { concat } from "./helpers/typed-arrays";

beforeAll(seedModels);

/** Silence after each clip in the interleaved run, as streamClip adds it. */
const TRAILING_SILENCE = new Uint8Array(1.5 * 32_000);
/** Deepgram's default endpointing: every pause of a phrase's length ends an utterance. */
const QUERY = "?encoding=linear16&sample_rate=16000&endpointing=10";
/**
 * A pause mid-sentence, as speakers make: past MIN_ENDPOINTING_MS, within what continues. At
 * 0.3 s the second part's pre-roll still holds the end of "hurt", and decoded alone it reads
 * "this small dog" (at 0.4 s and more, alone reads "The small dog" too: measured 2026-12-04).
 */
const PAUSE_SECONDS = 0.3;
/**
 * Where each sentence pauses: sb_spk1_snt1 "The child almost hurt | the small dog" (its first
 * silence frame after "hurt"), psx_librivox_0880 "He was not | an ill-disposed young man" (the
 * 70-ms gap of ../shared/eval/dev/alignments).
 */
const PAUSE_AT: Record<string, number> = { sb_spk1_snt1: 1.696, psx_librivox_0880: 1.1 };

/** `pcm` (PCM16, 16 kHz) with PAUSE_SECONDS of silence put in at `seconds`. */
function paused(pcm: Uint8Array, seconds: number): Uint8Array {
  const at = Math.round(seconds * 16_000) * 2;
  const pause = new Uint8Array(Math.round(PAUSE_SECONDS * 16_000) * 2);
  return concat([pcm.subarray(0, at), pause, pcm.subarray(at)]);
}

/** A sentence with its pause (PAUSE_AT). */
async function pausedSentence(id: string): Promise<Uint8Array> {
  const row = (await manifest("dev")).find((r) => r.id === id);
  const at = PAUSE_AT[id];
  if (!row || at === undefined) throw new Error(`${id}: no dev clip with a pause to put in`);
  return paused((await wavFixture(row.file)).pcm, at);
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
  it("reads a sentence cut at a pause as one sentence", { timeout: 120_000 }, async () => {
    // "The child almost hurt the small dog", cut after "hurt": decoded alone, the second
    // utterance reads "this small dog" (docs/accuracy.md).
    const client = await streamClip(await pausedSentence("sb_spk1_snt1"), QUERY);
    const parts = finals(client);
    console.log(`sb_spk1_snt1 with a pause: ${JSON.stringify(parts)}`);
    expect(parts.length).toBeGreaterThan(1);
    expect(finalText(client).toLowerCase()).toContain("the small dog");
  });

  it("continues only its own session's utterances: two sessions at once read as each alone", {
    timeout: 240_000,
  }, async () => {
    // Both clips are cut into two utterances at their pauses. B is delayed so that its first
    // utterance ends just after A's first: B's first final is decoded between A's two, so the
    // last final decoded before A's second is B's, and it ends well within the pause a
    // continuation may bridge. A's second final continuing B's "He was not" would read other
    // words or times than A alone; B's are checked too.
    const [a, b] = await Promise.all([
      pausedSentence("sb_spk1_snt1"),
      pausedSentence("psx_librivox_0880"),
    ]);
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

  it("never continues another session's utterance, even one that would fit", {
    timeout: 120_000,
  }, async () => {
    // One WhisperSession per "client" on one scheduler, fed by hand. sb_spk1_snt1 at
    // endpointing=10 is "The child almost hurt" (0–1.696 s) and "the small dog" (1.696–2.976 s);
    // the second reads "The small dog." continuing the first, "this small dog." alone.
    // As the service cuts it (test above): the second utterance runs 1.28 s, into the silence
    // after the clip.
    const clip = pcm16ToFloat((await wavFixture("sb_spk1_snt1.wav")).pcm);
    const pcm = new Float32Array(Math.round(2.976 * 16_000));
    pcm.set(clip.subarray(0, pcm.length));
    const cut = Math.round(1.696 * 16_000);
    const [first, second] = [pcm.subarray(0, cut), pcm.subarray(cut)];
    const scheduler = new InferenceScheduler();
    const bucket = (env as unknown as { MODELS: R2Bucket }).MODELS;
    const open = (id: string, emitted: Transcript[]) =>
      new WhisperSession(
        {
          sessionId: id,
          accountId: "acc_test",
          language: "en",
          interimResults: false,
          keyterms: [],
          log: createLogger({ sessionId: id }),
          emit: (t) => emitted.push(t),
        },
        () => whisperModel(bucket),
        scheduler,
        false,
        DEFAULT_BEAM_SIZE,
        true,
      );
    const texts = (emitted: Transcript[]) => emitted.map((t) => t.text);

    const solo: Transcript[] = [];
    const alone = open("solo", solo);
    alone.feed(first, 0);
    await alone.flush("endpoint", cut);
    alone.feed(second, cut);
    await alone.flush("endpoint", pcm.length);

    // Session B's only utterance is A's second phrase, ending right where A's second utterance
    // starts on the session timeline, and decoded between A's two finals: were finals to read any
    // session's last final, A's second would continue B's "the small dog" (and, reading it again,
    // be decoded alone: "this small dog").
    const a: Transcript[] = [];
    const b: Transcript[] = [];
    const sessionA = open("a", a);
    const sessionB = open("b", b);
    sessionA.feed(first, 0);
    await sessionA.flush("endpoint", cut);
    sessionB.feed(second, cut - second.length);
    await sessionB.flush("endpoint", cut);
    sessionA.feed(second, cut);
    await sessionA.flush("endpoint", pcm.length);
    for (const session of [alone, sessionA, sessionB]) session.close();

    console.log(`alone: ${JSON.stringify(texts(solo))}; A: ${JSON.stringify(texts(a))}`);
    expect(texts(solo)[1]?.toLowerCase()).toContain("the small dog");
    expect(texts(a)).toEqual(texts(solo));
    expect(texts(b)).toHaveLength(1);
  });
});
