/**
 * Node side of the WHISPER_FILES service binding: serves the stock Whisper tiny files
 * (../shared/models/whisper-tiny, or $EARSHOT_SHARED/models/whisper-tiny) to tests running in
 * workerd, which cannot read the disk. Register it in vitest.config.ts:
 *
 *   import { serveWhisperFile } from "./test/setup/whisper-files";
 *   miniflare: { serviceBindings: { FIXTURES: serveFixture, WHISPER_FILES: serveWhisperFile } }
 *
 * GET http://whisper/<path>, e.g. /vocab.json or /onnx/encoder_model_quantized.onnx. The stock
 * ONNX files are 10 MB and 31 MB; a service binding streams them, where vitest's provide/inject
 * would serialise them as JSON.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";

const shared = path.resolve(
  import.meta.dirname,
  "../..",
  process.env.EARSHOT_SHARED ?? "../shared",
);
const modelDir = path.join(shared, "models", "whisper-tiny");

/** Only the layout of the model folder: a file name, optionally under onnx/. */
const ALLOWED_PATH = /^(onnx\/)?[\w.-]+$/;

export async function serveWhisperFile(request: Request): Promise<Response> {
  const name = decodeURIComponent(new URL(request.url).pathname.slice(1));
  if (!ALLOWED_PATH.test(name) || name.includes("..")) {
    return new Response(`bad Whisper file name: ${name}`, { status: 400 });
  }
  try {
    return new Response(await readFile(path.join(modelDir, name)));
  } catch (error) {
    return new Response(`Whisper file ${name}: ${String(error)}`, { status: 404 });
  }
}
