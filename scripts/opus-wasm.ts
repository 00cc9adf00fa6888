/**
 * `npm run opus-wasm`: writes src/generated/opus.wasm, libopus's decoder as opus-decoder ships it,
 * for the worker to import as a pre-compiled module (wrangler.toml's CompiledWasm rule).
 *
 * opus-decoder embeds its wasm as a compressed string and compiles it at run time, which workerd
 * forbids (WebAssembly is never compiled from bytes there). The package's own inflater (in
 * @wasm-audio-decoders/common) turns that string back into the wasm here, in Node, at build time;
 * the worker then hands the compiled module to `OpusDecoder.module` (src/session/opus-decoder.ts),
 * so the package never compiles anything.
 *
 * Deterministic: the output is a pure function of the installed package, checked against the
 * SHA-256 pinned below for the pinned version; a file already holding those bytes is not
 * rewritten. The file is generated, never committed (.gitignore). It runs before every build:
 * `npm run dev` (scripts/dev.ts), the tests (vitest globalSetup test/setup/opus-wasm.ts) and
 * `npm run deploy` (predeploy).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const root = path.resolve(import.meta.dirname, "..");
export const OPUS_WASM_PATH = path.join(root, "src/generated/opus.wasm");

/** The opus-decoder version whose wasm is pinned, and that wasm's SHA-256. */
const PINNED_VERSION = "0.7.12";
const PINNED_SHA256 = "8b67eda2a46e478f65c24c467dae9eac26293efae6484bfe762b9d1086058b4b";

interface Inflater {
  inflateDynEncodeString(source: string): Promise<Uint8Array>;
}

/** Writes the wasm if missing or different; returns its SHA-256. */
export async function writeOpusWasm(): Promise<string> {
  const packageDir = path.join(root, "node_modules/opus-decoder");
  const { version } = JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8")) as {
    version: string;
  };
  if (version !== PINNED_VERSION) {
    throw new Error(
      `opus-decoder ${version} is installed, ${PINNED_VERSION} is pinned: update PINNED_VERSION and PINNED_SHA256 in scripts/opus-wasm.ts together`,
    );
  }
  // Files of the packages, not their entry points: the package's exports map names only ".".
  const emscripten = (await import(
    pathToFileURL(path.join(packageDir, "src/EmscriptenWasm.js")).href
  )) as { default: (new (common: unknown) => unknown) & { wasm?: string } };
  const common = (await import(
    pathToFileURL(
      path.join(root, "node_modules/@wasm-audio-decoders/common/src/WASMAudioDecoderCommon.js"),
    ).href
  )) as { default: new () => unknown };
  // Both define their statics (the inflater, the embedded string) when first constructed; neither
  // construction compiles or instantiates anything.
  new common.default();
  new emscripten.default(common.default);
  const source = emscripten.default.wasm;
  if (source === undefined) throw new Error("opus-decoder's EmscriptenWasm.js defined no wasm");
  const inflater = common.default as unknown as Inflater;
  const wasm = await inflater.inflateDynEncodeString(source);
  const sha256 = createHash("sha256").update(wasm).digest("hex");
  if (sha256 !== PINNED_SHA256) {
    throw new Error(`opus-decoder ${version}'s wasm has SHA-256 ${sha256}, not ${PINNED_SHA256}`);
  }
  let current: Buffer | null = null;
  try {
    current = readFileSync(OPUS_WASM_PATH);
  } catch {
    current = null;
  }
  if (current === null || !current.equals(wasm)) {
    mkdirSync(path.dirname(OPUS_WASM_PATH), { recursive: true });
    writeFileSync(OPUS_WASM_PATH, wasm);
  }
  return sha256;
}

if (import.meta.main) {
  const sha256 = await writeOpusWasm();
  console.log(`${path.relative(root, OPUS_WASM_PATH)}: ${sha256}`);
}
