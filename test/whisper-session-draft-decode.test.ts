/**
 * A greedy decode with drafts (src/stt/whisper/drafts.ts) decodes exactly what it decodes
 * without them, whatever the drafts are — real models, in workerd. Per dev clip, the reference is
 * the plain greedy decode of the whole clip; the drafts are:
 * - what an interim would give: the greedy decode of the clip's first 50 % and 75 % (its own
 *   window) — the drafts it accepts must be exactly the prefix it shares with the reference;
 * - the reference's own tokens: all accepted, runs of MAX_DRAFT_ROWS following each other;
 * - the reference's tokens with one in the middle replaced: accepted up to it, then steps on the
 *   cache cut back;
 * - another clip's tokens: (almost) nothing accepted.
 * Each decode must equal the reference in tokens, probabilities and log-probabilities, no-speech
 * probability, average log-probability and stop reason, with no tolerance.
 *
 * Shown to fail: with the cache not cut back at the first disagreement (drafts.ts `next` feeding
 * the draft run's whole cache to the next step), the corrupted drafts give other tokens on every
 * clip.
 *
 * And a draft run's rows are projected only as the decode uses them: with drafts that disagree in
 * the middle, the decode projects exactly as many logits rows as without drafts (one per pick),
 * though its draft runs computed rows past the disagreement. Shown to fail with every row of a
 * run projected when it returns (decoder-run.ts `runDrafts` as in step 2).
 */
import { env } from "cloudflare:workers";
import { Tensor } from "onnxruntime-web/wasm";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { greedyDecode } from "../src/stt/whisper/decode";
import type { DecodeResult } from "../src/stt/whisper/decode-types";
import { FIRST_DRAFT_ROWS, MAX_DRAFT_ROWS } from "../src/stt/whisper/drafts";
import { logMelSpectrogram, N_MELS } from "../src/stt/whisper/mel";
import type { WhisperModel } from "../src/stt/whisper/model";
import { windowFrames } from "../src/stt/whisper/transcribe";
import { whisperModel } from "../src/stt/whisper-transcriber";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";

const SAMPLE_RATE = 16_000;
const FRAMES_PER_SECOND = 100;
/** Dev clips of several speakers and lengths (the 11-s ones decode past one draft run). */
const CLIPS = [
  "wcpp_jfk.wav",
  "psx_librivox_0870.wav",
  "lhotse_2412_153948_0000.wav",
  "sb_lj050_0131.wav",
  "leopard_test_en.wav",
];
/** Where an interim would have stopped: shares of the clip. */
const PREFIX_SHARES = [0.5, 0.75];

let model: WhisperModel;

beforeAll(async () => {
  await seedModels();
  model = await whisperModel((env as unknown as { MODELS: R2Bucket }).MODELS);
}, 300_000);

async function audioOf(clip: string): Promise<Float32Array> {
  return pcm16ToFloat((await wavFixture(clip)).pcm);
}

/**
 * Draft runs of a decode that accepts `fed` drafts in a row: FIRST_DRAFT_ROWS, then each twice the
 * last up to MAX_DRAFT_ROWS, until they cover `fed`.
 */
function runsFor(fed: number): number {
  let runs = 0;
  for (let covered = 0, size = FIRST_DRAFT_ROWS; covered < fed; runs++) {
    covered += size;
    size = Math.min(MAX_DRAFT_ROWS, size * 2);
  }
  return runs;
}

/** Logits rows `run` has the projection kernel compute (prompt, steps and draft rows alike). */
async function rowsProjected(run: () => Promise<DecodeResult>) {
  const projection = model.external?.projection;
  if (!projection) throw new Error("the prepared decoder has no projection");
  const spy = vi.spyOn(projection, "logits");
  try {
    const result = await run();
    const rows = spy.mock.calls.reduce((sum, [, , wanted]) => sum + wanted.length, 0);
    return { result, rows };
  } finally {
    spy.mockRestore();
  }
}

/** The greedy decode of `audio` in the service's window (transcribe.ts), with `drafts`. */
async function decode(audio: Float32Array, drafts?: readonly number[]): Promise<DecodeResult> {
  const frames = windowFrames(audio.length, true);
  const input = new Tensor("float32", logMelSpectrogram(audio, frames), [1, N_MELS, frames]);
  const encoded = await model.encoder.run({ input_features: input }, ["last_hidden_state"]);
  const states = encoded.last_hidden_state;
  if (!(states instanceof Tensor)) throw new Error("encoder returned no last_hidden_state");
  return greedyDecode(model, states, {
    language: "en",
    audioSeconds: audio.length / SAMPLE_RATE,
    windowSeconds: frames / FRAMES_PER_SECOND,
    ...(drafts ? { drafts } : {}),
  });
}

const ids = (result: DecodeResult) => result.tokens.map((t) => t.id);

/** What a decode decided, every field a final reads (not how many runs it took). */
function decided(result: DecodeResult) {
  const { tokens, noSpeechProbability, avgLogprob, stopReason, language, temperature } = result;
  return { tokens, noSpeechProbability, avgLogprob, stopReason, language, temperature };
}

function sharedPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

describe("a greedy decode with drafts", () => {
  it("runs on a decoder with the draft path", () => {
    expect(model.takesDrafts).toBe(true);
  });

  for (const [c, clip] of CLIPS.entries()) {
    it(`decodes exactly what it decodes without them: ${clip}`, async () => {
      const audio = await audioOf(clip);
      const reference = await decode(audio);
      const want = decided(reference);
      const tokens = ids(reference);
      expect(reference.drafts).toEqual({ runs: 0, rows: 0, accepted: 0, wasted: 0 });
      const lines: string[] = [];
      // A draft is accepted when its row is used: the pick equalled it and was fed. The last
      // kept pick is fed unless the decode stopped at it (a timestamp at the end).
      const fed = ["endoftext", "repetition"].includes(reference.stopReason)
        ? tokens.length
        : tokens.length - 1;
      const check = async (name: string, drafts: readonly number[], agree: number) => {
        const accepted = Math.min(agree, fed);
        const result = await decode(audio, drafts);
        lines.push(
          `${name}: ${drafts.length} drafts, ${JSON.stringify(result.drafts)}, ` +
            `${result.decoderSteps} runs (plain ${reference.decoderSteps})`,
        );
        expect.soft(decided(result), `${clip}, ${name}`).toEqual(want);
        expect.soft(result.drafts.accepted, `${clip}, ${name}: accepted`).toBe(accepted);
        expect.soft(result.drafts.wasted).toBe(result.drafts.rows - result.drafts.accepted);
        return result;
      };

      // As an interim of the same utterance would give them.
      for (const share of PREFIX_SHARES) {
        const prefix = ids(await decode(audio.subarray(0, Math.round(audio.length * share))));
        const agree = sharedPrefix(prefix, tokens);
        const result = await check(`interim at ${share * 100}%`, prefix, agree);
        if (agree > 0) expect(result.drafts.accepted).toBeGreaterThan(0);
      }
      // The reference's own tokens: every one fed accepted, in runs growing to MAX_DRAFT_ROWS.
      const own = await check("own tokens", tokens, tokens.length);
      expect(own.drafts.runs).toBe(runsFor(fed));
      expect(own.decoderSteps).toBeLessThan(reference.decoderSteps);
      // Corrupted in the middle: accepted up to there, then steps on the cut-back cache.
      const middle = Math.floor(tokens.length / 2);
      const corrupted = [...tokens];
      corrupted[middle] = tokens[middle] === 13 ? 11 : 13; // "." or ",", not the pick there
      await check("corrupted in the middle", corrupted, middle);
      // Another clip's tokens.
      const other = ids(await decode(await audioOf(CLIPS[(c + 1) % CLIPS.length] as string)));
      await check("another clip's tokens", other, sharedPrefix(other, tokens));
      console.log(`${clip} (${tokens.length} tokens):\n  ${lines.join("\n  ")}`);
    }, 300_000);
  }

  it("projects no draft row past the first disagreement", async () => {
    const audio = await audioOf("lhotse_2412_153948_0000.wav");
    const plain = await rowsProjected(() => decode(audio));
    const tokens = ids(plain.result);
    const corrupted = [...tokens];
    const middle = Math.floor(tokens.length / 2);
    corrupted[middle] = tokens[middle] === 13 ? 11 : 13; // "." or ",", not the pick there
    const drafted = await rowsProjected(() => decode(audio, corrupted));
    expect(ids(drafted.result)).toEqual(tokens);
    // Rows were run past the disagreement and never used …
    expect(drafted.result.drafts.accepted).toBe(middle);
    expect(drafted.result.drafts.wasted).toBeGreaterThan(0);
    // … and never projected: one row per pick, as without drafts.
    expect(drafted.rows).toBe(plain.rows);
  }, 300_000);
});
