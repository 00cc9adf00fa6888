/**
 * `node tools/models/generated.ts`: writes src/generated/, the files the worker imports that are
 * built from installed packages, never committed (.gitignore), each written only when its bytes
 * change:
 * - opus.wasm, libopus's decoder with its memory limited (tools/models/opus-wasm.ts);
 * - silero_vad_v5.prepared.onnx, Silero VAD with its control flow resolved for Earshot's one call
 *   and checked bit for bit against the stock file (tools/models/silero-prepare.ts).
 * Run before every build: `npm run dev` (tools/dev/dev.ts), the tests (vitest globalSetup
 * test/setup/generated.ts), `npm run bench` and `npm run deploy` (predeploy).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { writeIfChanged } from "./files.ts";
import { OPUS_WASM_PATH, writeOpusWasm } from "./opus-wasm.ts";
import { prepareSilero } from "./silero-prepare.ts";

const root = path.resolve(import.meta.dirname, "../..");
const SILERO_STOCK_PATH = path.join(
  root,
  "node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx",
);
export const SILERO_PREPARED_PATH = path.join(root, "src/generated/silero_vad_v5.prepared.onnx");

/** The prepared Silero model, written; its size in bytes. */
export async function writePreparedSilero(): Promise<number> {
  const ort = await import("onnxruntime-web/wasm");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  const prepared = await prepareSilero(ort, new Uint8Array(readFileSync(SILERO_STOCK_PATH)));
  await writeIfChanged(SILERO_PREPARED_PATH, prepared);
  return prepared.byteLength;
}

/** Every generated file, written. */
export async function writeGenerated(): Promise<void> {
  await writeOpusWasm();
  await writePreparedSilero();
}

if (import.meta.main) {
  await writeGenerated();
  for (const file of [OPUS_WASM_PATH, SILERO_PREPARED_PATH]) {
    console.log(`${path.relative(root, file)}: ${readFileSync(file).byteLength} bytes`);
  }
}
