/**
 * Early finals (src/stt/whisper-session.ts, "Early finals"), with the real models: the decode
 * started at the first silence after speech answers the Finalize that follows, and a final is
 * always exactly what a fresh decode of the audio it covers gives — whether it came from an early
 * decode (only silence followed), from the flush (speech came back after a short utterance's
 * pause), or from a long utterance ended at its pause when speech came back (the pipeline's
 * SPLIT_AT_PAUSE_SECONDS, src/session/early-finals.ts).
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

function rms(samples: Float32Array): number {
  let sum = 0;
  for (const x of samples) sum += x * x;
  return Math.sqrt(sum / Math.max(1, samples.length));
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

  it("end a long utterance at its pause when speech resumes: finals that each equal a fresh decode, only silence between them left out", async () => {
    // A 7.7-s sentence with pauses of its own, 400 ms of silence, a second sentence: a pause
    // after more than SPLIT_AT_PAUSE_SECONDS of speech ends the utterance there when speech comes
    // back, and the rest goes on as the next one.
    const first = (await wavFixture("sb_lj050_0131.wav")).pcm;
    const firstSeconds = first.byteLength / 2 / RATE;
    expect(firstSeconds).toBeGreaterThan(SPLIT_AT_PAUSE_SECONDS + 1);
    const second = (await wavFixture("sb_spk1_snt3.wav")).pcm; // "at that high level the air is pure"
    const pcm = concat([first, new Uint8Array(0.4 * RATE * 2), second]);
    const { finals, final, sent } = await finalsUntilFinalize(pcm);
    const session = pcm16ToFloat(sent);
    const parts = finals.map(finalOf);
    console.log(
      parts.map((p) => `${p.start.toFixed(2)}+${p.duration.toFixed(2)} "${p.transcript}"`),
    );
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(parts.at(-1)).toEqual(final);
    for (const early of finals.slice(0, -1)) {
      expect(early.speech_final).toBe(false);
      expect(early.from_finalize).toBe(false);
    }
    // Every phrase once, in order, across the parts.
    const text = parts.map((p) => p.transcript).join(" ");
    expect(text).toMatch(/^unless.*established.*review.*under.*regard.*high level.*pure\W*$/i);
    expect(text.match(/regard/gi)).toHaveLength(1);
    // Each part starts at or after the end of the one before, and what lies between is a
    // pause's silence.
    const loudness = rms(session);
    for (let i = 1; i < parts.length; i++) {
      const previous = parts[i - 1] as Final;
      const [gapFrom, gapTo] = [previous.start + previous.duration, (parts[i] as Final).start];
      expect(gapTo).toBeGreaterThanOrEqual(gapFrom - 0.001);
      const gap = session.subarray(Math.round(gapFrom * RATE), Math.round(gapTo * RATE));
      expect(rms(gap), `${gapFrom}–${gapTo} s`).toBeLessThan(0.1 * loudness);
    }
    // Each part is what a fresh decode of its audio gives (continuation off, as deployed: with it
    // on, a part may continue the one before, whisper-session-continuation.test.ts).
    for (const part of parts) expect(part.transcript).toBe(await freshDecode(session, part));
  });
});
