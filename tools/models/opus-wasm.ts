/**
 * src/generated/opus.wasm (written by tools/models/generated.ts): libopus's decoder as
 * opus-decoder ships it, for the worker to import as a pre-compiled module (wrangler.toml's
 * CompiledWasm rule).
 *
 * opus-decoder embeds its wasm as a compressed string and compiles it at run time, which workerd
 * forbids (WebAssembly is never compiled from bytes there). The package's own inflater (in
 * @wasm-audio-decoders/common) turns that string back into the wasm here, in Node, at build time;
 * the worker then hands the compiled module to `OpusDecoder.module` (src/audio/opus-decoder.ts),
 * so the package never compiles anything. Its memory is limited to MEMORY_PAGES (below) instead
 * of the package's fixed 28 MiB, so each session's decoder instance costs 1 MiB.
 *
 * Deterministic: a pure function of the installed package, whose wasm is checked against the
 * SHA-256 pinned below for the pinned version.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { sha256, writeIfChanged } from "./files.ts";

const root = path.resolve(import.meta.dirname, "../..");
export const OPUS_WASM_PATH = path.join(root, "src/generated/opus.wasm");

/** The opus-decoder version whose wasm is pinned, and that wasm's SHA-256. */
const PINNED_VERSION = "0.7.12";
const PINNED_SHA256 = "8b67eda2a46e478f65c24c467dae9eac26293efae6484bfe762b9d1086058b4b";

/**
 * The decoder's linear memory, in 64-KiB pages. The package's build declares a fixed 448 pages
 * (28 MiB, min = max, growth compiled out), and every decoder instance (one per session) gets its
 * own: 28 MiB per Opus session in a 128-MB isolate. What it uses is far less: static data ends
 * below 29 KB, the stack below 96 KB (the stack pointer's initial value), then the decoder's
 * mallocs; measured, a stereo decoder works in 4 pages (256 KiB) and not in 3, a mono one in 3.
 * 16 pages (1 MiB) is four times stereo's need; malloc reads the memory's real size, so the only
 * effect of the limit is where it would fail (and a decoder that cannot malloc decodes nothing,
 * silently: hence the margin).
 */
export const MEMORY_PAGES = 16;

/**
 * The wasm with its one memory's limits set to `pages` (min and max). Rewritten in place: the
 * package's limits are 2-byte LEB128s, and `pages` is written as a 2-byte (padded) LEB128 too,
 * which the wasm spec allows, so no section size changes.
 */
function limitMemory(wasm: Uint8Array, pages: number): Uint8Array {
  const out = Uint8Array.from(wasm);
  let at = 8; // magic + version
  const leb = (): number => {
    let value = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = out[at++] ?? 0;
      value |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    return value >>> 0;
  };
  while (at < out.length) {
    const id = out[at++];
    const end = leb() + at;
    if (id !== 5) {
      at = end;
      continue;
    }
    const count = leb();
    const flags = out[at++];
    if (count !== 1 || flags !== 1 || pages < 1 || pages > 127) {
      throw new Error(`opus wasm: unexpected memory section (count ${count}, flags ${flags})`);
    }
    for (const _limit of ["min", "max"]) {
      const start = at;
      const value = leb();
      if (at - start !== 2 || value !== 448) {
        throw new Error(`opus wasm: memory limit ${value} is not the expected 448 pages`);
      }
      out.set([0x80 | pages, 0x00], start);
    }
    return out;
  }
  throw new Error("opus wasm: no memory section");
}

/** The package's own wasm, as it ships it (checked against the pinned SHA-256). */
async function packageWasm(): Promise<Uint8Array> {
  const packageDir = path.join(root, "node_modules/opus-decoder");
  const packageJson = readFileSync(path.join(packageDir, "package.json"), "utf8");
  const { version } = JSON.parse(packageJson) as { version: string };
  if (version !== PINNED_VERSION) {
    throw new Error(
      `opus-decoder ${version} is installed, ${PINNED_VERSION} is pinned: update PINNED_VERSION ` +
        "and PINNED_SHA256 in tools/models/opus-wasm.ts together",
    );
  }
  // Files of the packages, not their entry points: the package's exports map names only ".".
  const load = async (file: string): Promise<unknown> =>
    (await import(pathToFileURL(file).href)).default;
  const emscripten = (await load(path.join(packageDir, "src/EmscriptenWasm.js"))) as {
    new (common: unknown): unknown;
    wasm?: string;
  };
  const common = (await load(
    path.join(root, "node_modules/@wasm-audio-decoders/common/src/WASMAudioDecoderCommon.js"),
  )) as { new (): unknown; inflateDynEncodeString(source: string): Promise<Uint8Array> };
  // Both define their statics (the inflater, the embedded string) when first constructed; neither
  // construction compiles or instantiates anything.
  new common();
  new emscripten(common);
  if (emscripten.wasm === undefined) {
    throw new Error("opus-decoder's EmscriptenWasm.js has no wasm");
  }
  const wasm = await common.inflateDynEncodeString(emscripten.wasm);
  if (sha256(wasm) !== PINNED_SHA256) {
    throw new Error(
      `opus-decoder ${version}'s wasm has SHA-256 ${sha256(wasm)}, not the pinned one`,
    );
  }
  return wasm;
}

/** Writes the wasm if missing or different. */
export async function writeOpusWasm(): Promise<void> {
  await writeIfChanged(OPUS_WASM_PATH, limitMemory(await packageWasm(), MEMORY_PAGES));
}
