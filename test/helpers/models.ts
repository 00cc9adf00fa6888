/**
 * The MODELS bucket for tests: seeded from the files `npm run models` wrote (models/prepared for
 * the rewritten graphs, models/stock for the tokenizer files), served into workerd by the
 * MODEL_FILES binding (test/setup/models.ts).
 */
import { env } from "cloudflare:workers";
import manifest from "../../src/stt/model-manifest.json";
import type { ModelFileName } from "../../src/stt/model-store";

const bindings = env as unknown as { MODELS: R2Bucket; MODEL_FILES: Fetcher };
const PREPARED = new Set<ModelFileName>([
  "encoder",
  "encoderData",
  "decoder",
  "decoderData",
  "vocabTable",
]);

export async function seedModels(): Promise<void> {
  for (const name of Object.keys(manifest.files) as ModelFileName[]) {
    const file = manifest.files[name];
    if ((await bindings.MODELS.head(file.key))?.size === file.bytes) continue;
    const folder = PREPARED.has(name) ? "prepared" : "stock";
    const response = await bindings.MODEL_FILES.fetch(`http://models/${folder}/${file.name}`);
    if (!response.ok) throw new Error(`${name}: HTTP ${response.status} ${await response.text()}`);
    await bindings.MODELS.put(file.key, await response.arrayBuffer());
  }
}
