/**
 * Early finals (src/stt/whisper-session.ts, "Early finals"), with the real models: the decode
 * started at the first silence after speech answers the Finalize that follows, and a final is
 * always exactly what a fresh decode of the audio it covers gives — whether it came from an early
 * decode (only silence followed) or from the flush (speech came back after a pause).
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_BEAM_SIZE } from "../src/stt/beam-size";
import { transcribe } from "../src/stt/whisper/transcribe";
import { whisperModel } from "../src/stt/whisper-transcriber";
import { frames, type ServerJson, TestClient } from "./helpers/client";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";
import { concat } from "./helpers/typed-arrays";

const Q = "?encoding=linear16&sample_rate=16000";
const RATE = 16_000;
/** 200 ms of silence, as a client whose own VAD sends Finalize 200 ms after speech. */
const SILENCE_200_MS = new Uint8Array(0.2 * RATE * 2);

beforeAll(seedModels);

interface Final {
  start: number;
  duration: number;
  transcript: string;
}

function finalOf(m: ServerJson): Final {
  const alternatives = (m.channel as { alternatives: { transcript: string }[] }).alternatives;
  return {
    start: m.start as number,
    duration: m.duration as number,
    transcript: alternatives[0]?.transcript ?? "",
  };
}

/** What the model says, decoded directly, about the session audio a final says it covers. */
async function freshDecode(session: Float32Array, final: Final): Promise<string> {
  const from = Math.round(final.start * RATE);
  const to = Math.round((final.start + final.duration) * RATE);
  const model = await whisperModel((env as unknown as { MODELS: R2Bucket }).MODELS);
  // As sessions decode finals (the test config leaves EARSHOT_BEAM_SIZE at its default).
  const result = await transcribe(model, session.subarray(from, to), {
    language: "en",
    beamSize: DEFAULT_BEAM_SIZE,
  });
  return result.likelyNoSpeech ? "" : result.text;
}

async function finalizeAfter(pcm: Uint8Array): Promise<{ final: Final; sent: Uint8Array }> {
  // Endpointing off: only the Finalize ends the utterance.
  const client = await TestClient.open(`${Q}&endpointing=false`);
  const sent = concat([pcm, SILENCE_200_MS]);
  for (const frame of frames(sent, 640)) client.sendAudio(frame);
  client.sendJson({ type: "Finalize" });
  const flushed = await client.waitFor((m) => m.from_finalize === true, "Finalize's final");
  expect(flushed.is_final).toBe(true);
  await client.finish();
  return { final: finalOf(flushed), sent };
}

describe("early finals", () => {
  it("answer Finalize with the decode started at the first silence, equal to a fresh decode", async () => {
    const { pcm } = await wavFixture("psx_librivox_0880.wav");
    const { final, sent } = await finalizeAfter(pcm);
    expect(final.transcript).toMatch(/young man/i);
    // The early decode stopped at the first silence frame: its final ends well before the
    // 200 ms of silence the Finalize came after (a flush-time decode would cover all of it).
    const sentSeconds = sent.byteLength / 2 / RATE;
    expect(final.start + final.duration).toBeLessThan(sentSeconds - 0.1);
    expect(final.transcript).toBe(await freshDecode(pcm16ToFloat(sent), final));
  });

  it("are thrown away when speech resumes after a pause: the final still equals a fresh decode", async () => {
    // Two sentences 400 ms apart: the pause starts an early decode, the second sentence voids it.
    const first = (await wavFixture("sb_spk1_snt1.wav")).pcm;
    const second = (await wavFixture("sb_spk1_snt3.wav")).pcm;
    const pcm = concat([first, new Uint8Array(0.4 * RATE * 2), second]);
    const { final, sent } = await finalizeAfter(pcm);
    expect(final.transcript).toMatch(/dog/i);
    expect(final.transcript).toMatch(/pure/i);
    expect(final.transcript).toBe(await freshDecode(pcm16ToFloat(sent), final));
  });
});
