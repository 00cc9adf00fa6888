/**
 * Node side of the model tests (tests in workerd cannot read the disk):
 *
 * - `serveModelFile`, the MODEL_FILES service binding: GET http://models/<dir>/<file> serves
 *   models/prepared/* and models/stock/* (what `npm run models` wrote), e.g.
 *   /prepared/decoder.onnx.data or /stock/vocab.json.
 * - the default export, a vitest globalSetup: makes sure models/ holds the prepared files of the
 *   committed manifest before any test runs, by running `npm run models -- --no-seed` (which only
 *   verifies hashes when everything is in place; on CI it copies from EARSHOT_MODEL_MIRROR).
 *
 * Register both in vitest.config.ts:
 *   import prepareModels, { serveModelFile } from "./test/setup/models";
 *   test: { globalSetup: ["./test/setup/models.ts"] }
 *   miniflare: { serviceBindings: { MODEL_FILES: serveModelFile }, r2Buckets: ["MODELS"] }
 * (`r2Buckets` only while wrangler.toml has no MODELS binding.)
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const root = path.resolve(import.meta.dirname, "../..");
const modelsDir = path.join(root, "models");

/** A file directly inside models/prepared or models/stock. */
const ALLOWED_PATH = /^(prepared|stock)\/[\w][\w.-]*$/;

export async function serveModelFile(request: Request): Promise<Response> {
  const name = decodeURIComponent(new URL(request.url).pathname.slice(1));
  if (!ALLOWED_PATH.test(name))
    return new Response(`bad model file name: ${name}`, { status: 400 });
  try {
    return new Response(await readFile(path.join(modelsDir, name)));
  } catch (error) {
    return new Response(`model file ${name}: ${String(error)} (run \`npm run models\`)`, {
      status: 404,
    });
  }
}

/** vitest globalSetup: prepared models in place and verified before the tests start. */
export default async function prepareModels(): Promise<void> {
  const script = path.join(root, "tools", "models", "cli.ts");
  try {
    await promisify(execFile)(process.execPath, [script, "--no-seed"], { cwd: root });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`npm run models failed before the tests:\n${stderr}`);
  }
}
