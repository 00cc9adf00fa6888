/**
 * `node tools/load/opus-cost.ts <file.opus>`: what Opus input costs a session, measured in Node on
 * the same wasm the worker imports (src/generated/opus.wasm, handed over pre-compiled as in
 * workerd) and the session's own demuxer and resampler. Prints the decoder's wasm heap (per
 * session), and the decode and 48 → 16 kHz resample time per second of audio (best of 5 runs),
 * after checking that the memory-limited wasm decodes bit-identically to the package's own.
 * The numbers in the README's "Audio formats" section come from here.
 */
import { readFileSync } from "node:fs";
import { registerHooks } from "node:module";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { packageWasm, writeOpusWasm } from "../models/opus-wasm.ts";

// The worker's sources import each other without extensions (as the bundler allows).
registerHooks({
  resolve(specifier, context, next) {
    try {
      return next(specifier, context);
    } catch (error) {
      if (!specifier.startsWith(".")) throw error;
      return next(`${specifier}.ts`, context);
    }
  },
});

/** Node's WebAssembly (this project's types are workerd's, which has no compile from bytes). */
const compile = (bytes: Uint8Array): WebAssembly.Module =>
  new (WebAssembly.Module as unknown as new (bytes: Uint8Array) => WebAssembly.Module)(bytes);

const root = path.resolve(import.meta.dirname, "../..");
const file = process.argv[2];
if (file === undefined) throw new Error("usage: node tools/load/opus-cost.ts <file.opus>");

await writeOpusWasm();
const { OpusDecoder } = await import("opus-decoder");
(OpusDecoder as unknown as { module?: WebAssembly.Module }).module = compile(
  readFileSync(path.join(root, "src/generated/opus.wasm")),
);
const { OggOpusDemuxer } = await import("../../src/audio/ogg-opus-demuxer.ts");
const { StreamingResampler } = await import("../../src/audio/resampler.ts");

const demuxer = new OggOpusDemuxer();
const packets = demuxer.push(new Uint8Array(readFileSync(file)));
const head = demuxer.head;
if (head === null) throw new Error("no OpusHead");

/** Every sample the file decodes to with `module`. */
async function decodeAll(module: WebAssembly.Module): Promise<Float32Array[]> {
  (OpusDecoder as unknown as { module?: WebAssembly.Module }).module = module;
  const decoder = new OpusDecoder({ sampleRate: 48_000, channels: head?.channels ?? 1 });
  await decoder.ready;
  const out = packets.map((packet) =>
    decoder.decodeFrame(packet).channelData.map((c) => c.slice()),
  );
  decoder.free();
  return out.flat();
}
const limited = (OpusDecoder as unknown as { module: WebAssembly.Module }).module;
const theirs = await decodeAll(compile(await packageWasm()));
const ours = await decodeAll(limited);
const same =
  theirs.length === ours.length &&
  theirs.every((a, i) => {
    const b = ours[i];
    return b !== undefined && a.length === b.length && a.every((v, j) => Object.is(v, b[j]));
  });
if (!same) throw new Error("the memory-limited wasm decodes differently from the package's");

interface Internals {
  _common?: { wasm?: { HEAP?: ArrayBuffer } };
}
let best = { decode: Number.POSITIVE_INFINITY, resample: Number.POSITIVE_INFINITY };
let seconds = 0;
let heap = 0;
for (let run = 0; run < 5; run++) {
  const decoder = new OpusDecoder({ sampleRate: 48_000, channels: head.channels, preSkip: 0 });
  await decoder.ready;
  const t0 = performance.now();
  let samples = 0;
  const decoded: Float32Array[] = [];
  for (const packet of packets) {
    const out = decoder.decodeFrame(packet);
    const left = out.channelData[0];
    if (left !== undefined) decoded.push(left.slice(0, out.samplesDecoded));
    samples += out.samplesDecoded;
  }
  const t1 = performance.now();
  const resampler = new StreamingResampler(48_000, 16_000);
  for (const block of decoded) resampler.process(block);
  resampler.flush();
  const t2 = performance.now();
  seconds = samples / 48_000;
  heap = (decoder as unknown as Internals)._common?.wasm?.HEAP?.byteLength ?? 0;
  best = { decode: Math.min(best.decode, t1 - t0), resample: Math.min(best.resample, t2 - t1) };
  decoder.free();
}
console.log(
  JSON.stringify({
    file: path.basename(file),
    packets: packets.length,
    channels: head.channels,
    audioSeconds: Number(seconds.toFixed(3)),
    decoderHeapBytes: heap,
    identicalToPackageWasm: same,
    wasmModuleBytes: readFileSync(path.join(root, "src/generated/opus.wasm")).byteLength,
    decodeMsPerAudioSecond: Number((best.decode / seconds).toFixed(3)),
    resampleMsPerAudioSecond: Number((best.resample / seconds).toFixed(3)),
  }),
);
