/**
 * Writes test/data/whisper-mel-jfk.json: reference log-mel values for test/whisper-mel.test.ts,
 * made by an independent implementation, transformers.js' WhisperFeatureExtractor
 * (@huggingface/transformers 4.3.1), on ../shared/eval/dev/wcpp_jfk.wav.
 *
 * transformers.js is not a project dependency (with its onnxruntime-node and sharp it is ~470 MB),
 * so install it beside the project and point this script at it:
 *
 *   npm install --prefix /tmp/mel-ref --ignore-scripts @huggingface/transformers@4.3.1
 *   TRANSFORMERS_JS=/tmp/mel-ref/node_modules/@huggingface/transformers/dist/transformers.node.mjs \
 *     npx node tools/eval/whisper-mel-reference.ts
 *
 * Selected frames (all 80 bins each) for three windows: the full 3000 frames (30 s, audio then zero
 * padding), 1200 frames (the 11-s clip + 1 s, as for "utterance + 1 s" windows), and 300 frames of
 * the clip from 2.5 s (cut, so both mirrored edges hold speech). The frames cover both edges,
 * speech, the end of the audio and the zero padding.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseWav, pcm16ToFloat } from "./wav.ts";

const VERSION = "4.3.1";
const root = path.resolve(import.meta.dirname, "../..");
const shared = path.resolve(root, process.env.EARSHOT_SHARED ?? "../shared");
const modulePath = process.env.TRANSFORMERS_JS;
if (!modulePath) throw new Error("set TRANSFORMERS_JS to transformers.node.mjs (see header)");

type FeatureExtractor = (
  audio: Float32Array,
  options?: { max_length?: number },
) => Promise<{
  input_features: { dims: number[]; data: Float32Array };
}>;
const transformers = (await import(modulePath)) as {
  WhisperFeatureExtractor: new (config: unknown) => FeatureExtractor;
};
const packageJson = JSON.parse(
  await readFile(path.join(path.dirname(modulePath), "..", "package.json"), "utf8"),
) as { version: string };
if (packageJson.version !== VERSION) {
  throw new Error(`expected transformers.js ${VERSION}, found ${packageJson.version}`);
}

const config = JSON.parse(
  await readFile(path.join(shared, "models/whisper-tiny/preprocessor_config.json"), "utf8"),
);
const extractor = new transformers.WhisperFeatureExtractor(config);

const clip = "wcpp_jfk.wav";
const audio = pcm16ToFloat(parseWav(await readFile(path.join(shared, "eval/dev", clip))).pcm);
const windows = [
  {
    offset: 0,
    frames: 3000,
    select: [0, 1, 2, 100, 250, 500, 777, 1000, 1098, 1099, 1100, 1101, 2000, 2999],
  },
  { offset: 0, frames: 1200, select: [0, 1, 550, 1099, 1100, 1150, 1198, 1199] },
  // From 2.5 s, cut to 3 s: speech at both mirrored edges (the clip starts and ends quietly).
  { offset: 40_000, frames: 300, select: [0, 1, 2, 3, 150, 297, 298, 299] },
];
const out = [];
for (const { offset, frames, select } of windows) {
  const { input_features } = await extractor(audio.subarray(offset), {
    max_length: frames * 160,
  });
  if (input_features.dims.join() !== `1,80,${frames}`) {
    throw new Error(`unexpected dims ${input_features.dims}`);
  }
  const values = select.map((t) =>
    Array.from({ length: 80 }, (_, m) =>
      Number((input_features.data[m * frames + t] ?? NaN).toPrecision(8)),
    ),
  );
  out.push({ offset, frames, select, values });
}
const reference = {
  source: `transformers.js ${VERSION} WhisperFeatureExtractor, ${clip}, via tools/eval/whisper-mel-reference.ts`,
  clip,
  samples: audio.length,
  layout: "values[i][m] = feature (mel bin m, frame select[i]) of the clip from sample `offset`",
  windows: out,
};
const target = path.join(root, "test/data/whisper-mel-jfk.json");
await writeFile(target, `${JSON.stringify(reference)}\n`);
console.log(`wrote ${target}`);
