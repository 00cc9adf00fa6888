/**
 * What drafts (src/stt/whisper/drafts.ts) save a final's greedy decode, in Node with the prepared
 * models (onnxruntime-web, 1 thread, as workerd): per clip, the decode of the whole clip without
 * drafts and with the tokens of a decode of its first `audio − lead` seconds as drafts (what the
 * utterance's last interim would give when it ran `lead` seconds before the end), once per size
 * of the first draft run in `--firsts` (DecodeOptions.firstDraftRows; 16 = every run
 * MAX_DRAFT_ROWS), all alternated ROUNDS times in one process on the same encoder states, the
 * order rotating; medians of the wall time of the whole decode (prompt included) and of its part
 * after the prompt.
 *
 *   node tools/models/draft-timing.ts [--dir models/prepared] [--clips a.wav,b.wav] [--leads 1,2]
 *     [--firsts 16,4]
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import type { Tensor } from "onnxruntime-web/wasm";
import { SESSION_OPTIONS } from "../../src/runtime/session-options.ts";
import type { DecodeResult } from "../../src/stt/whisper/decode-types.ts";
import type { GenerationConfig } from "../../src/stt/whisper/logit-rules.ts";
import type { AddedTokens, Vocab } from "../../src/stt/whisper/tokenizer.ts";
import { parseWav, pcm16ToFloat } from "../eval/wav.ts";
import { loadProjection } from "./projection-kernel.ts";

const repoRoot = path.resolve(import.meta.dirname, "..", "..");
/** The longer dev clips: the ones with the most tokens to draft. */
const DEFAULT_CLIPS = [
  "lhotse_2412_153948_0000.wav",
  "wcpp_jfk.wav",
  "sb_lj050_0131.wav",
  "psx_librivox_0870.wav",
];
/** Alternated rounds per clip and lead: enough for a median on a noisy 2-core machine. */
const ROUNDS = 9;
const SAMPLE_RATE = 16_000;
const FRAMES_PER_SECOND = 100;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: "string", default: path.join(repoRoot, "models", "prepared") },
      stock: { type: "string", default: path.join(repoRoot, "models", "stock") },
      eval: { type: "string", default: path.join(repoRoot, "..", "shared", "eval", "dev") },
      clips: { type: "string", default: DEFAULT_CLIPS.join(",") },
      leads: { type: "string", default: "1,2" },
      firsts: { type: "string", default: "16,4" },
    },
  });
  const ort = await import("onnxruntime-web/wasm");
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  const { createWhisperModel } = await import("../../src/stt/whisper/model.ts");
  const { greedyDecode } = await import("../../src/stt/whisper/decode.ts");
  const { logMelSpectrogram, N_MELS } = await import("../../src/stt/whisper/mel.ts");
  const { windowFrames } = await import("../../src/stt/whisper/transcribe.ts");
  const load = async (name: string) =>
    ort.InferenceSession.create(await readFile(path.join(values.dir, `${name}.onnx`)), {
      ...SESSION_OPTIONS,
      externalData: [
        {
          path: `${name}.onnx.data`,
          data: await readFile(path.join(values.dir, `${name}.onnx.data`)),
        },
      ],
    });
  const json = async <T>(file: string) =>
    JSON.parse(await readFile(path.join(values.stock, file), "utf8")) as T;
  const model = createWhisperModel({
    encoder: await load("encoder"),
    decoder: await load("decoder"),
    vocab: await json<Vocab>("vocab.json"),
    addedTokens: await json<AddedTokens>("added_tokens.json"),
    generationConfig: await json<GenerationConfig>("generation_config.json"),
    variableLength: true,
    projection: await loadProjection(values.dir),
  });
  const encode = async (audio: Float32Array) => {
    const frames = windowFrames(audio.length, true);
    const input = new ort.Tensor("float32", logMelSpectrogram(audio, frames), [1, N_MELS, frames]);
    const out = await model.encoder.run({ input_features: input }, ["last_hidden_state"]);
    return { states: out.last_hidden_state as Tensor, frames };
  };
  /** `audio` encoded once; the function decodes it, with `drafts` (empty: none). */
  const decoder = async (audio: Float32Array) => {
    const { states, frames } = await encode(audio);
    const options = {
      language: "en",
      audioSeconds: audio.length / SAMPLE_RATE,
      windowSeconds: frames / FRAMES_PER_SECOND,
    };
    return (drafts: readonly number[], firstDraftRows?: number) =>
      greedyDecode(model, states, {
        ...options,
        drafts,
        ...(firstDraftRows ? { firstDraftRows } : {}),
      });
  };
  const ids = (r: DecodeResult) => r.tokens.map((t) => t.id);

  const firsts = values.firsts.split(",").map(Number);
  /** The arms: "plain" (no drafts), then a first draft run of each size in `firsts`. */
  const arms = ["plain", ...firsts.map((n) => `first ${n}`)];
  console.log(
    `clip | lead s | tokens | per arm (${arms.join(", ")}): accepted / rows, runs, decode ms (after prompt)`,
  );
  for (const clip of values.clips.split(",")) {
    const audio = pcm16ToFloat(parseWav(await readFile(path.join(values.eval, clip))).pcm);
    const final = await decoder(audio);
    for (const lead of values.leads.split(",").map(Number)) {
      const prefix = audio.subarray(0, audio.length - lead * SAMPLE_RATE);
      const drafts = ids(await (await decoder(prefix))([]));
      const whole = arms.map(() => [] as number[]);
      const after = arms.map(() => [] as number[]);
      const results: (DecodeResult | undefined)[] = arms.map(() => undefined);
      for (let round = 0; round < ROUNDS; round++) {
        // Every arm in turn, the first one rotating from round to round.
        for (let k = 0; k < arms.length; k++) {
          const arm = (round + k) % arms.length;
          const first = firsts[arm - 1];
          const started = performance.now();
          const result = await final(first === undefined ? [] : drafts, first);
          const ms = performance.now() - started;
          whole[arm]?.push(ms);
          after[arm]?.push(ms - result.promptMs);
          results[arm] = result;
        }
      }
      const plain = results[0];
      if (!plain) throw new Error("no decode");
      const f = (x: number) => x.toFixed(0);
      const cells = results.map((result, arm) => {
        if (!result) throw new Error("no decode");
        if (JSON.stringify(ids(plain)) !== JSON.stringify(ids(result)))
          throw new Error(`${clip}: ${arms[arm]} decode differs`);
        const { accepted, rows } = result.drafts;
        return (
          `${arms[arm]}: ${accepted} / ${rows}, ${result.decoderSteps} runs, ` +
          `${f(median(whole[arm] ?? []))} (${f(median(after[arm] ?? []))})`
        );
      });
      console.log(`${clip} | ${lead} | ${plain.tokens.length} | ${cells.join(" | ")}`);
    }
  }
}

await main();
