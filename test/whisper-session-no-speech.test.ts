/**
 * The no-speech decision's margins (src/stt/whisper/speech-evidence.ts noSpeechVerdict), measured on
 * the prepared models in workerd ("whisper" project of vitest.config.ts). Two populations, each
 * run through Silero (VAD evidence) and Whisper (no-speech probability, average log-probability,
 * compression ratio) the way a session would see an utterance:
 * - short real speech: every word and every pair of words cut out of the three LibriVox clips at
 *   their forced-alignment boundaries (../shared/eval/dev/alignments), plus the short turns
 *   (../shared/eval/short): the segments a low log-probability rule used to drop;
 * - no speech: 2-s windows of the dev no-speech clips (noise, trumpet, music, silence) and of
 *   generated noise and music, taken whole, with no VAD gate in front, as if the VAD had let
 *   them through.
 * It prints each feature's range per population (the table in docs/accuracy.md) and requires the
 * verdict to drop every no-speech window that decoded to text and to keep every speech cut that
 * Whisper transcribed correctly.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { loadWhisper } from "../src/stt/model-store";
import { createWhisperModel, type WhisperModel } from "../src/stt/whisper/model";
import {
  noSpeechVerdict,
  type SpeechEvidence,
  vadEvidence,
} from "../src/stt/whisper/speech-evidence";
import { transcribe } from "../src/stt/whisper/transcribe";
import { primedVadState, speechProbability, VAD_FRAME_SAMPLES } from "../src/vad/silero";
import { wordErrorRate } from "../tools/eval/wer";
import { fixture, manifest, pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { brownNoise, hum, melody, whiteNoise } from "./helpers/generated-audio";
import { seedModels } from "./helpers/models";

const RATE = 16_000;

interface Alignment {
  w: { b: number; d: number; t: string }[];
}

interface Case {
  name: string;
  population: "speech" | "no speech";
  /** Reference for speech cuts; "" for no speech. */
  reference: string;
  text: string;
  evidence: SpeechEvidence;
}

async function vadProbabilities(samples: Float32Array): Promise<number[]> {
  // As the session does: Silero's state primed with silence (src/vad/silero.ts).
  const state = await primedVadState();
  const out: number[] = [];
  for (let at = 0; at + VAD_FRAME_SAMPLES <= samples.length; at += VAD_FRAME_SAMPLES) {
    out.push(await speechProbability(state, samples.subarray(at, at + VAD_FRAME_SAMPLES)));
  }
  return out;
}

let model: WhisperModel;

beforeAll(async () => {
  await seedModels();
  model = createWhisperModel({
    ...(await loadWhisper((env as unknown as { MODELS: R2Bucket }).MODELS)),
    variableLength: true,
  });
}, 180_000);

async function measure(
  name: string,
  population: Case["population"],
  reference: string,
  audio: Float32Array,
): Promise<Case> {
  const result = await transcribe(model, audio, { language: "en" });
  const vad = vadEvidence(await vadProbabilities(audio));
  return {
    name,
    population,
    reference,
    text: result.text,
    evidence: {
      noSpeechProbability: result.noSpeechProbability,
      avgLogprob: result.avgLogprob,
      compressionRatio: result.compressionRatio,
      seconds: audio.length / RATE,
      ...(vad ? { vad } : {}),
    },
  };
}

/** Speech cut at alignment boundaries: words and word pairs, 0.1 s of context either side. */
async function speechCuts(): Promise<Case[]> {
  const cases: Case[] = [];
  for (const id of ["psx_librivox_0870", "psx_librivox_0880", "psx_librivox_0890"]) {
    const audio = pcm16ToFloat((await wavFixture(`${id}.wav`)).pcm);
    const alignment = JSON.parse(
      new TextDecoder().decode(await fixture(`alignments/${id}.json`)),
    ) as Alignment;
    const words = alignment.w.filter((w) => !w.t.startsWith("<"));
    for (let i = 0; i < words.length; i++) {
      for (const count of [1, 2]) {
        const span = words.slice(i, i + count);
        const first = span[0];
        const last = span.at(-1);
        if (span.length < count || !first || !last) continue;
        const from = Math.max(0, Math.round((first.b - 0.1) * RATE));
        const to = Math.min(audio.length, Math.round((last.b + last.d + 0.1) * RATE));
        const reference = span.map((w) => w.t.replace(/\(\d+\)$/, "")).join(" ");
        cases.push(await measure(`${id}@${first.b}`, "speech", reference, audio.slice(from, to)));
      }
    }
  }
  for (const row of (await manifest("short")).filter((r) => r.category === "speech")) {
    const audio = pcm16ToFloat((await wavFixture(row.file)).pcm);
    cases.push(await measure(row.id, "speech", row.reference, audio));
  }
  return cases;
}

/** No-speech audio in 2-s windows. */
async function noSpeechWindows(): Promise<Case[]> {
  const sounds: [string, Float32Array][] = [
    ["white noise", whiteNoise(6, 0.1, 1)],
    ["quiet white noise", whiteNoise(6, 0.01, 2)],
    ["brown noise", brownNoise(6, 0.1, 3)],
    ["mains hum", hum(6, 0.05, 4)],
    ["plucked melody", melody(8, 0.1, 5)],
    ["plucked melody 2", melody(8, 0.2, 6)],
  ];
  for (const row of (await manifest("dev")).filter((r) => r.category !== "speech")) {
    sounds.push([row.id, pcm16ToFloat((await wavFixture(row.file)).pcm)]);
  }
  const cases: Case[] = [];
  for (const [name, audio] of sounds) {
    for (let at = 0; at + RATE <= audio.length; at += 2 * RATE) {
      const window = audio.slice(at, Math.min(audio.length, at + 2 * RATE));
      cases.push(await measure(`${name}@${at / RATE}s`, "no speech", "", window));
    }
  }
  return cases;
}

function range(values: number[]): string {
  if (values.length === 0) return "–";
  return `${Math.min(...values).toFixed(2)} … ${Math.max(...values).toFixed(2)}`;
}

describe("no-speech decision", () => {
  it("drops every no-speech window with text and keeps every correct speech cut", {
    timeout: 900_000,
  }, async () => {
    const cases = [...(await speechCuts()), ...(await noSpeechWindows())];
    const withText = cases.filter((c) => c.text !== "");
    const correct = (c: Case) =>
      c.population === "speech" && wordErrorRate(c.reference, c.text).errors === 0;
    const groups: [string, Case[]][] = [
      ["speech, transcribed right", withText.filter(correct)],
      [
        "speech, transcribed wrong",
        withText.filter((c) => c.population === "speech" && !correct(c)),
      ],
      ["no speech, with text", withText.filter((c) => c.population === "no speech")],
    ];
    const lines = [
      "| population | n | no-speech p | avg logprob | compression | VAD speech frames | VAD mean p | VAD span p | dropped |",
      "|---|---|---|---|---|---|---|---|---|",
      ...groups.map(([label, group]) => {
        const e = group.map((c) => c.evidence);
        const dropped = group.filter((c) => noSpeechVerdict(c.evidence).noSpeech).length;
        return `| ${label} | ${group.length} | ${range(e.map((x) => x.noSpeechProbability ?? Number.NaN))} | ${range(e.map((x) => x.avgLogprob))} | ${range(e.map((x) => x.compressionRatio))} | ${range(e.map((x) => x.vad?.speechFrames ?? 0))} | ${range(e.map((x) => x.vad?.meanProbability ?? 0))} | ${range(e.map((x) => x.vad?.spanProbability ?? 0))} | ${dropped} |`;
      }),
    ];
    console.log(lines.join("\n"));
    for (const c of withText) {
      const e = c.evidence;
      console.log(
        `${c.population}\t${c.name}\t${(e.noSpeechProbability ?? Number.NaN).toFixed(3)}\t${e.avgLogprob.toFixed(2)}\t${e.compressionRatio.toFixed(2)}\t${e.vad?.speechFrames}/${e.vad?.frames}\t${e.vad?.meanProbability.toFixed(2)}\t${e.vad?.spanProbability.toFixed(2)}\t${noSpeechVerdict(e).noSpeech ? "DROP" : "keep"}\t${JSON.stringify(c.reference)}\t${JSON.stringify(c.text)}`,
      );
    }
    const [, right = []] = groups[0] ?? [];
    const [, noise = []] = groups[2] ?? [];
    for (const c of noise) expect(noSpeechVerdict(c.evidence).noSpeech, c.name).toBe(true);
    for (const c of right) expect(noSpeechVerdict(c.evidence).noSpeech, c.name).toBe(false);
  });
});
