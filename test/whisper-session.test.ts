/**
 * Whisper in sessions, end to end through `/v1/listen` with the real prepared models (this file
 * runs in the "whisper" project of vitest.config.ts): accuracy over the dev clips, silence on clips
 * without speech, isolation between concurrent sessions, Finalize mid-utterance, a forced final on
 * an utterance longer than MAX_UTTERANCE_SECONDS. (The WASM heap's budget: whisper-heap.test.ts.)
 */

import { beforeAll, describe, expect, it } from "vitest";
import { MAX_QUEUED_AUDIO_SECONDS, MAX_UTTERANCE_SECONDS } from "../src/session/caps";
import { wordErrorRate } from "../tools/eval/wer";
import { frames, type ServerJson, TestClient } from "./helpers/client";
import { manifest, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";
import { concat } from "./helpers/typed-arrays";

const Q = "?encoding=linear16&sample_rate=16000";
/** 1.2 s of silence: enough for the 500 ms endpoint after the last word. */
const TRAILING_SILENCE = new Uint8Array(1.2 * 32_000);

interface Alternative {
  transcript: string;
  words: { word: string; end: number }[];
}

function alternative(m: ServerJson): Alternative {
  return (m.channel as { alternatives: [Alternative] }).alternatives[0];
}

function finals(client: TestClient): ServerJson[] {
  return client.of("Results").filter((m) => m.is_final === true);
}

function finalText(client: TestClient): string {
  return finals(client)
    .map((m) => alternative(m).transcript)
    .filter((t) => t !== "")
    .join(" ");
}

/**
 * Streams a clip and closes. Clips up to MAX_QUEUED_AUDIO_SECONDS go at once; a longer one is
 * paced at twice real time, as a client must: more than 20 s queued ahead of processing (which
 * waits for Whisper's turn on the isolate) is a flood, closed 1008.
 */
async function transcribeClip(pcm: Uint8Array, query = Q): Promise<TestClient> {
  const client = await TestClient.open(query);
  const audio = concat([pcm, TRAILING_SILENCE]);
  const paced = audio.byteLength / 32_000 > MAX_QUEUED_AUDIO_SECONDS;
  for (const [i, frame] of frames(audio, 3200).entries()) {
    client.sendAudio(frame);
    // 100-ms frames: 50 ms apart is twice real time.
    if (paced && i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const { closed } = await client.finish();
  expect(closed.code).toBe(1000);
  return client;
}

const rows = await manifest();
const speech = rows.filter((r) => r.category === "speech");
const silence = rows.filter((r) => r.category !== "speech");

beforeAll(seedModels);

describe("Whisper in a session", () => {
  it("transcribes the dev speech clips with WER ≤ 0.15", async () => {
    let errors = 0;
    let words = 0;
    const perClip: string[] = [];
    for (const row of speech) {
      const client = await transcribeClip((await wavFixture(row.file)).pcm);
      expect(client.of("Results")[0]?.metadata).toMatchObject({
        model_info: { name: "whisper-tiny" },
      });
      const score = wordErrorRate(row.reference, finalText(client));
      errors += score.errors;
      words += score.referenceWords;
      perClip.push(`${row.id}: ${score.errors}/${score.referenceWords} "${finalText(client)}"`);
    }
    console.log(`WER ${errors}/${words} = ${(errors / words).toFixed(3)}\n${perClip.join("\n")}`);
    expect(errors / words).toBeLessThanOrEqual(0.15);
  });

  it("produces no words on the clips without speech", async () => {
    for (const row of silence) {
      const client = await transcribeClip((await wavFixture(row.file)).pcm);
      const spoken = client.of("Results").flatMap((m) => alternative(m).words);
      expect(spoken, row.file).toEqual([]);
    }
  });

  it("gives four concurrent sessions exactly their own words", async () => {
    const clips = ["wcpp_jfk.wav", "sb_spk1_snt1.wav", "leopard_test_en.wav", "ds_ldc93s1.wav"];
    const audio = await Promise.all(clips.map(async (c) => (await wavFixture(c)).pcm));
    const alone: string[] = [];
    for (const pcm of audio) alone.push(finalText(await transcribeClip(pcm)));
    expect(new Set(alone).size).toBe(clips.length);

    const clients = await Promise.all(audio.map(() => TestClient.open(Q)));
    const streams = audio.map((pcm) => frames(concat([pcm, TRAILING_SILENCE]), 3200));
    for (let i = 0; i < Math.max(...streams.map((s) => s.length)); i++) {
      streams.forEach((stream, s) => {
        const frame = stream[i];
        if (frame) clients[s]?.sendAudio(frame);
      });
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await Promise.all(clients.map((c) => c.finish()));
    expect(clients.map(finalText)).toEqual(alone);
  });

  it("streams interims before the final when asked", async () => {
    const { pcm } = await wavFixture("wcpp_jfk.wav");
    const client = await TestClient.open(`${Q}&interim_results=true`);
    // Real-time pace for the first 4 s, so interims have audio to work on while it arrives.
    const stream = frames(concat([pcm, TRAILING_SILENCE]), 3200);
    for (const [i, frame] of stream.entries()) {
      client.sendAudio(frame);
      if (i < 40) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await client.finish();
    const results = client.of("Results");
    const firstFinal = results.findIndex((m) => m.is_final === true);
    const interims = results.slice(0, firstFinal).filter((m) => m.is_final === false);
    expect(interims.length).toBeGreaterThan(0);
    expect(interims.some((m) => alternative(m).transcript !== "")).toBe(true);
  });

  // endpointing=1000 ends the utterance on the frame UtteranceEnd is due: one VAD push gives both.
  it.each([
    ["at the default endpointing", ""],
    ["when endpointing equals utterance_end_ms", "&endpointing=1000"],
  ])("sends each UtteranceEnd after the final of the speech it ends, %s", async (_, extra) => {
    const { pcm } = await wavFixture("wcpp_jfk.wav");
    const client = await transcribeClip(
      concat([pcm, TRAILING_SILENCE]),
      `${Q}&interim_results=true&utterance_end_ms=1000${extra}`,
    );
    const ends = client.messages.flatMap((m, i) => (m.type === "UtteranceEnd" ? [i] : []));
    expect(ends.length).toBeGreaterThan(0);
    for (const at of ends) {
      const lastWordEnd = client.messages[at]?.last_word_end as number;
      const before = client.messages
        .slice(0, at)
        .filter((m) => m.type === "Results" && m.is_final === true);
      const covering = before.some(
        (m) => (m.start as number) + (m.duration as number) >= lastWordEnd - 0.05,
      );
      expect(covering, `UtteranceEnd at ${lastWordEnd}s came before its final`).toBe(true);
    }
  });

  it("sends UtteranceEnd with the last final word's end, and none after noise with no words", async () => {
    const query = `${Q}&interim_results=true&utterance_end_ms=1000`;
    const { pcm } = await wavFixture("wcpp_jfk.wav");
    const speech = await transcribeClip(concat([pcm, TRAILING_SILENCE]), query);
    const ends = speech.of("UtteranceEnd");
    expect(ends.length).toBeGreaterThan(0);
    const finalWords = speech
      .of("Results")
      .filter((m) => m.is_final === true)
      .flatMap((m) => alternative(m).words);
    for (const end of ends) {
      expect(finalWords.map((w) => w.end)).toContain(end.last_word_end);
    }
    // Music Silero takes for speech (SILERO_HEARS_SPEECH_IN) and Whisper hears no words in.
    const { pcm: music } = await wavFixture("ns_librosa_vibeace_10_25s.wav");
    const noise = await transcribeClip(concat([music, TRAILING_SILENCE]), query);
    const finals = noise.of("Results").filter((m) => m.is_final === true);
    expect(finals.length).toBeGreaterThan(0); // the VAD did open an utterance
    expect(finals.flatMap((m) => alternative(m).words)).toEqual([]);
    expect(noise.of("UtteranceEnd")).toEqual([]);
  });

  it("answers Finalize mid-utterance with a final of what was heard so far", async () => {
    const { pcm } = await wavFixture("wcpp_jfk.wav");
    const client = await TestClient.open(`${Q}&endpointing=false`);
    const cut = 6 * 32_000; // 6 s in, mid-sentence
    for (const frame of frames(pcm.subarray(0, cut), 3200)) client.sendAudio(frame);
    client.sendJson({ type: "Finalize" });
    const flushed = await client.waitFor((m) => m.from_finalize === true, "Finalize's final");
    expect(flushed.is_final).toBe(true);
    // What was heard so far: the Finalize's final, and any final before it that ended the long
    // utterance at one of its pauses (src/session/early-finals.ts).
    expect(finalText(client)).toMatch(/americans.*\bnot\b/i);
    for (const frame of frames(pcm.subarray(cut), 3200)) client.sendAudio(frame);
    await client.finish();
    const all = wordErrorRate(
      "and so my fellow americans ask not what your country can do for you ask what you can do for your country",
      finalText(client),
    );
    expect(all.wer).toBeLessThanOrEqual(0.25);
  });

  it(`cuts an utterance longer than ${MAX_UTTERANCE_SECONDS} s with a forced final, losing and doubling no words`, async () => {
    const parts = ["wcpp_jfk.wav", "lhotse_2412_153948_0000.wav", "psx_librivox_0870.wav"];
    const audio = concat(await Promise.all(parts.map(async (p) => (await wavFixture(p)).pcm)));
    expect(audio.byteLength / 32_000).toBeGreaterThan(MAX_UTTERANCE_SECONDS);
    const reference = parts.map((p) => rows.find((r) => r.file === p)?.reference ?? "").join(" ");
    // No endpointing: only the length cap can end the utterance before CloseStream.
    const client = await transcribeClip(audio, `${Q}&endpointing=false`);
    const all = finals(client);
    const forced = all.filter((m) => m.from_finalize === false && m.speech_final === false);
    expect(forced.length).toBeGreaterThanOrEqual(1);
    for (const m of all)
      expect(m.duration as number).toBeLessThanOrEqual(MAX_UTTERANCE_SECONDS + 0.05);
    const score = wordErrorRate(reference, finalText(client));
    console.log(`long utterance: ${score.errors}/${score.referenceWords} "${finalText(client)}"`);
    expect(score.insertions).toBeLessThanOrEqual(2);
    expect(score.deletions).toBeLessThanOrEqual(2);
    expect(score.wer).toBeLessThanOrEqual(0.15);
  });
});
