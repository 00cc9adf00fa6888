/**
 * The prepared decoder's draft path (tools/models/draft-branch.ts) on the real weights, in
 * workerd: k draft tokens run at once after a cache (decoder-run.ts `runDrafts`) give the logits
 * rows and the self-attention cache that k one-token steps (`runDecoder`) give, bit for bit —
 * Float32Array equality, no tolerance: a final that takes its interim's tokens as drafts must
 * decode exactly what it decodes without them.
 *
 * Per clip: the greedy decode's tokens, teacher-forced one step at a time (the reference rows and
 * caches), then drafts of k = 1, 4 and 16 of those tokens after the prompt and after 5 steps.
 *
 * Shown to fail (draft-branch.ts changed, `npm run models -- --fresh --write-manifest`, run,
 * restored), every clip:
 * - without the causal mask: every logit of every row differs, and the cache of layers 1–3 (layer
 *   0's keys and values depend on the token rows alone and stay equal);
 * - with the body's 24 quantizations left per tensor (the logit passes still per row): every row
 *   differs in all or all but one of its 51 865 logits, and every cache tensor's new positions.
 */
import { env } from "cloudflare:workers";
import { Tensor } from "onnxruntime-web/wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { greedyDecode } from "../src/stt/whisper/decode";
import { runDecoder, runDrafts } from "../src/stt/whisper/decoder-run";
import { logMelSpectrogram, MAX_FRAMES, N_MELS } from "../src/stt/whisper/mel";
import type { WhisperModel } from "../src/stt/whisper/model";
import { whisperModel } from "../src/stt/whisper-transcriber";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";

const SAMPLE_RATE = 16_000;
/** Mel frames per second of audio, and the second of silence a final's window ends with. */
const FRAMES_PER_SECOND = 100;
const PADDING_FRAMES = 100;
/** Dev clips of two speakers and recordings, each decoding to more than 5 + 16 tokens. */
const CLIPS = ["psx_librivox_0870.wav", "wcpp_jfk.wav", "sb_lj050_0131.wav"];
/** Steps after the prompt where drafts start: right after it, and a few tokens in. */
const CACHE_POINTS = [0, 5];
const DRAFT_COUNTS = [1, 4, 16];

let model: WhisperModel;

beforeAll(async () => {
  await seedModels();
  model = await whisperModel((env as unknown as { MODELS: R2Bucket }).MODELS);
}, 300_000);

/** Indices where `a` and `b` differ (Object.is: a NaN equals a NaN, −0 differs from +0). */
function differing(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.max(a.length, b.length);
  let count = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) count++;
  return count;
}

describe("the prepared decoder's draft path (real weights)", () => {
  it("has the draft input", () => {
    expect(model.takesDrafts).toBe(true);
  });

  for (const clip of CLIPS) {
    it(`gives k steps' rows and cache bit for bit on ${clip}`, async () => {
      const audio = pcm16ToFloat((await wavFixture(clip)).pcm);
      const frames = Math.min(
        MAX_FRAMES,
        Math.ceil((audio.length / SAMPLE_RATE) * FRAMES_PER_SECOND) + PADDING_FRAMES,
      );
      const input = new Tensor("float32", logMelSpectrogram(audio, frames), [1, N_MELS, frames]);
      const encoded = await model.encoder.run({ input_features: input }, ["last_hidden_state"]);
      const states = encoded.last_hidden_state;
      if (!(states instanceof Tensor)) throw new Error("encoder returned no last_hidden_state");
      const decode = await greedyDecode(model, states, {
        language: "en",
        audioSeconds: audio.length / SAMPLE_RATE,
        windowSeconds: frames / FRAMES_PER_SECOND,
      });
      const tokens = decode.tokens.map((t) => t.id);
      expect(tokens.length).toBeGreaterThanOrEqual(Math.max(...CACHE_POINTS) + 16);

      const { special } = model.tokenizer;
      const prompt = [
        special.startOfTranscript,
        model.tokenizer.languageToken("en"),
        special.transcribe,
        special.noTimestamps,
      ];
      const first = await runDecoder(model, prompt, states, undefined, [prompt.length - 1]);
      const caches = [first.cache];
      const stepRows: Float32Array[] = [];
      for (const token of tokens) {
        const step = await runDecoder(model, [token], states, caches.at(-1), [0], "all");
        caches.push(step.cache);
        stepRows.push(step.rows[0] ?? new Float32Array(0));
      }

      const results: string[] = [];
      for (const at of CACHE_POINTS) {
        for (const k of DRAFT_COUNTS) {
          const cache = caches[at];
          const after = caches[at + k];
          if (!cache || !after) throw new Error(`no cache at ${at} or ${at + k}`);
          const drafts = await runDrafts(model, tokens.slice(at, at + k), cache, "all");
          expect(drafts.count).toBe(k);
          const rows = Array.from({ length: k }, (_, j) => drafts.row(j));
          const rowDiffs = rows.map((row, j) =>
            differing(row, stepRows[at + j] ?? new Float32Array(0)),
          );
          const cacheDiffs = Object.entries(after.self).map(([name, reference]) => {
            const drafted = drafts.cache.self[name];
            expect(drafted?.dims, name).toEqual(reference.dims);
            return differing(drafted?.data as Float32Array, reference.data as Float32Array);
          });
          results.push(`at ${at} k ${k}: rows ${rowDiffs.join(",")} cache ${cacheDiffs.join(",")}`);
          expect
            .soft(rowDiffs, `logits rows differing at ${at}, k ${k}`)
            .toEqual(rowDiffs.map(() => 0));
          expect
            .soft(cacheDiffs, `cache values differing at ${at}, k ${k}`)
            .toEqual(cacheDiffs.map(() => 0));
          // The rows are each token's own, not one row repeated.
          if (k > 1)
            expect(differing(rows[0] as Float32Array, rows[1] as Float32Array)).toBeGreaterThan(0);
        }
      }
      console.log(
        `${clip} (${tokens.length} tokens), values differing per row / cache tensor:\n  ${results.join("\n  ")}`,
      );
    }, 300_000);
  }
});
