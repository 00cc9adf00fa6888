/**
 * Early finals (src/stt/whisper-session.ts, "Early finals"), with the real models: the decode
 * started at the first silence after speech answers the Finalize that follows, and a final is
 * always exactly what a fresh decode of the audio it covers gives — whether it came from an early
 * decode (only silence followed), from the flush (speech came back after a short utterance's
 * pause), or from a long utterance's early decode kept when speech came back (the pipeline's
 * SPLIT_AT_PAUSE_SECONDS).
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { SPLIT_AT_PAUSE_SECONDS } from "../src/session/early-finals";
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

async function finalsUntilFinalize(
  pcm: Uint8Array,
): Promise<{ finals: ServerJson[]; final: Final; sent: Uint8Array }> {
  // Endpointing off: only the Finalize ends the utterance.
  const client = await TestClient.open(`${Q}&endpointing=false`);
  const sent = concat([pcm, SILENCE_200_MS]);
  for (const frame of frames(sent, 640)) client.sendAudio(frame);
  client.sendJson({ type: "Finalize" });
  const flushed = await client.waitFor((m) => m.from_finalize === true, "Finalize's final");
  expect(flushed.is_final).toBe(true);
  const finals = client.of("Results").filter((m) => m.is_final === true);
  await client.finish();
  return { finals, final: finalOf(flushed), sent };
}

async function finalizeAfter(pcm: Uint8Array): Promise<{ final: Final; sent: Uint8Array }> {
  const { finals, final, sent } = await finalsUntilFinalize(pcm);
  expect(finals).toHaveLength(1);
  return { final, sent };
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

  it("are thrown away when speech resumes after a short utterance's pause: the final still equals a fresh decode", async () => {
    // Two sentences 400 ms apart: the pause starts an early decode, the second sentence voids it.
    // The first one's speech (Silero's trailing frames included) stays under
    // SPLIT_AT_PAUSE_SECONDS, so the utterance goes on through the pause; once it is that long, a
    // pause inside the second sentence may end it (the next test), so only the first final counts.
    const first = (await wavFixture("short/psx_cards_003.wav")).pcm; // "seven of clubs", 1.5 s
    expect(first.byteLength / 2 / RATE).toBeLessThan(SPLIT_AT_PAUSE_SECONDS - 1);
    const second = (await wavFixture("sb_spk1_snt1.wav")).pcm; // "the child almost hurt the small dog"
    const pcm = concat([first, new Uint8Array(0.4 * RATE * 2), second]);
    const { finals, final, sent } = await finalsUntilFinalize(pcm);
    const opening = finalOf(finals[0] as ServerJson);
    expect(opening.transcript).toMatch(/clubs.*child/i);
    expect(opening.transcript).toBe(await freshDecode(pcm16ToFloat(sent), opening));
    expect(final.transcript).toMatch(/dog/i);
  });

  it("are kept when speech resumes after a long utterance's pause: finals that each equal a fresh decode, no audio between them lost", async () => {
    // A 7.7-s sentence, 400 ms of silence, a second sentence: the pause comes after more than
    // SPLIT_AT_PAUSE_SECONDS of speech, so the utterance ends there and the rest goes on (the
    // first sentence's own pauses may end parts of it too).
    const first = (await wavFixture("sb_lj050_0131.wav")).pcm;
    const firstSeconds = first.byteLength / 2 / RATE;
    expect(firstSeconds).toBeGreaterThan(SPLIT_AT_PAUSE_SECONDS + 1);
    const second = (await wavFixture("sb_spk1_snt3.wav")).pcm;
    const pcm = concat([first, new Uint8Array(0.4 * RATE * 2), second]);
    const { finals, final, sent } = await finalsUntilFinalize(pcm);
    const session = pcm16ToFloat(sent);
    expect(finals.length).toBeGreaterThanOrEqual(2);
    const parts = finals.map(finalOf);
    const last = parts.at(-1) as Final;
    const beforeLast = parts.at(-2) as Final;
    expect(last).toEqual(final);
    for (const early of finals.slice(0, -1)) {
      expect(early.speech_final).toBe(false);
      expect(early.from_finalize).toBe(false);
    }
    expect(beforeLast.transcript).toMatch(/regard/i);
    expect(last.transcript).toMatch(/pure/i);
    expect(last.transcript).not.toMatch(/regard/i);
    // The part before the last ends in the pause, before the last part's first word; each part
    // starts where the one before ended.
    const firstWord = finals.at(-1)?.channel as { alternatives: { words: { start: number }[] }[] };
    const secondStarts = firstWord.alternatives[0]?.words[0]?.start ?? 0;
    expect(beforeLast.start + beforeLast.duration).toBeGreaterThan(firstSeconds - 0.5);
    expect(beforeLast.start + beforeLast.duration).toBeLessThan(secondStarts);
    expect(secondStarts).toBeGreaterThan(firstSeconds + 0.4 - 0.05);
    for (let i = 1; i < parts.length; i++) {
      const previous = parts[i - 1] as Final;
      expect((parts[i] as Final).start).toBeCloseTo(previous.start + previous.duration, 3);
    }
    // The first part is what a fresh decode of its audio gives. The ones after it may continue the
    // part before (EARSHOT_CONTINUATION is on in this project: continuation.ts, checked in
    // whisper-session-continuation.test.ts), so a fresh decode is not their measure.
    expect(parts[0]?.transcript).toBe(await freshDecode(session, parts[0] as Final));
  });
});
