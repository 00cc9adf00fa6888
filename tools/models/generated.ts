/**
 * `npm run generated`: writes src/generated/, the files the worker imports that are built from
 * installed packages, never committed (.gitignore), each written only when its bytes change:
 * - opus.wasm, libopus's decoder with its memory limited (opus-wasm.ts);
 * - silero_vad_v5.prepared.onnx, Silero VAD with its control flow resolved for Earshot's one call
 *   and checked bit for bit against the stock file (silero-prepare.ts).
 * Run before every build: `npm run dev` (tools/dev/dev.ts), the tests (vitest globalSetup
 * test/setup/generated.ts), `npm run bench` and `npm run deploy` (predeploy).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { writeIfChanged } from "./files.ts";
import { OPUS_WASM_PATH, writeOpusWasm } from "./opus-wasm.ts";
import { prepareSilero } from "./silero-prepare.ts";

const root = path.resolve(import.meta.dirname, "../..");
const SILERO_STOCK = path.join(root, "node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx");
const SILERO_PREPARED = path.join(root, "src/generated/silero_vad_v5.prepared.onnx");

/** Every generated file, written. */
export async function writeGenerated(): Promise<void> {
  await writeOpusWasm();
  const ort = await import("onnxruntime-web/wasm");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  const stock = new Uint8Array(readFileSync(SILERO_STOCK));
  await writeIfChanged(SILERO_PREPARED, await prepareSilero(ort, stock));
}

if (import.meta.main) {
  await writeGenerated();
  for (const file of [OPUS_WASM_PATH, SILERO_PREPARED]) {
    console.log(`${path.relative(root, file)}: ${readFileSync(file).byteLength} bytes`);
  }
}
