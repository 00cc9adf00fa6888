/**
 * Conditioning on previous text stays inside its session (real models; "whisper" project of
 * vitest.config.ts). Two sessions end on the same clip ("four queen of clubs") after different
 * openings: after "ten of clubs" it is written "4, Queen of clubs.", after the JFK clip "4 Queen
 * of Clothes." (the prompt is the session's own recent finals), so if either session's prompt
 * reached the other, the words would change. Run alone and then interleaved frame by frame, each
 * session must produce exactly what it produced alone.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { finalText } from "./helpers/accuracy";
import { frames, TestClient } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";
import { concat } from "./helpers/typed-arrays";

const Q = "?encoding=linear16&sample_rate=16000&endpointing=10";
const PAUSE = new Uint8Array(1.5 * 32_000);

beforeAll(seedModels);

async function program(opening: string, shared: string): Promise<Uint8Array> {
  const [a, b] = await Promise.all([wavFixture(opening), wavFixture(shared)]);
  return concat([a.pcm, PAUSE, b.pcm, PAUSE]);
}

/** The non-empty finals of a session, in order. */
function finals(client: TestClient): string[] {
  return client
    .of("Results")
    .filter((m) => m.is_final === true)
    .map(
      (m) => (m.channel as { alternatives: [{ transcript: string }] }).alternatives[0].transcript,
    )
    .filter((t) => t !== "");
}

async function alone(audio: Uint8Array): Promise<TestClient> {
  const client = await TestClient.open(Q);
  for (const frame of frames(audio, 3200)) client.sendAudio(frame);
  await client.finish();
  return client;
}

describe("previous-text prompt", () => {
  it("conditions each session on its own finals only", { timeout: 300_000 }, async () => {
    const shared = "short/psx_cards_002.wav";
    const openings = ["short/psx_cards_001.wav", "wcpp_jfk.wav"];
    const audio = await Promise.all(openings.map((o) => program(o, shared)));
    // How many finals each opening makes alone: what follows them is the shared clip.
    const openingFinals: number[] = [];
    for (const o of openings) {
      openingFinals.push(finals(await alone(concat([(await wavFixture(o)).pcm, PAUSE]))).length);
    }
    const solo: string[] = [];
    for (const a of audio) solo.push(finalText(await alone(a)));

    const clients = await Promise.all(audio.map(() => TestClient.open(Q)));
    const streams = audio.map((a) => frames(a, 3200));
    for (let i = 0; i < Math.max(...streams.map((s) => s.length)); i++) {
      streams.forEach((stream, s) => {
        const frame = stream[i];
        if (frame) clients[s]?.sendAudio(frame);
      });
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await Promise.all(clients.map((c) => c.finish()));
    console.log(
      `alone: ${JSON.stringify(solo)}\ntogether: ${JSON.stringify(clients.map(finalText))}`,
    );
    expect(clients.map(finalText)).toEqual(solo);
    // The prompts matter: the shared clip is written differently after each opening.
    const sharedSolo: string[] = [];
    for (const [i, a] of audio.entries()) {
      sharedSolo.push(
        finals(await alone(a))
          .slice(openingFinals[i])
          .join(" "),
      );
    }
    console.log(`shared clip after each opening: ${JSON.stringify(sharedSolo)}`);
    expect(sharedSolo[0]).not.toBe(sharedSolo[1]);
  });
});
