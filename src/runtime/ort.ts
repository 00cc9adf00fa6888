/**
 * onnxruntime-web inside workerd.
 *
 * workerd refuses to compile WebAssembly from bytes at run time ("Wasm code generation disallowed
 * by embedder"), so ORT's `.wasm` is imported through wrangler's CompiledWasm rule as an already
 * compiled `WebAssembly.Module`. ORT (>= 1.24.3) accepts `env.wasm.wasmBinary` and then calls
 * `WebAssembly.instantiate(bytes, imports)` with a copy of it. We give ORT a 4-byte placeholder
 * and, for the call that carries exactly those bytes, instantiate the compiled module instead.
 * A real wasm binary is never 4 bytes long, so every other call reaches the real function.
 *
 * Sessions are created through `createSession`, which installs all of this once per isolate.
 */

import * as ort from "onnxruntime-web/wasm";
// A relative path, not the package subpath: wrangler's module collector resolves .wasm imports
// relative to this file and ignores package.json "exports" (vitest resolves either).
import ortWasmModule from "../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";
import { SESSION_OPTIONS } from "./session-options";

export type { InferenceSession, Tensor } from "onnxruntime-web/wasm";
export { ort };

/** The wasm magic number: what ORT is told the binary is; only its contents matter. */
const PLACEHOLDER = new Uint8Array([0x00, 0x61, 0x73, 0x6d]);

let configured = false;
/** ORT's linear memory, captured when it is instantiated. */
let heap: WebAssembly.Memory | undefined;

function configure(): void {
  if (configured) return;
  configured = true;
  ort.env.wasm.numThreads = 1; // no SharedArrayBuffer or workers in workerd
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmBinary = PLACEHOLDER;
  ort.env.logLevel = "error";

  const original = WebAssembly.instantiate.bind(WebAssembly) as (
    source: unknown,
    imports?: WebAssembly.Imports,
  ) => Promise<unknown>;
  const patched = async (source: unknown, imports?: WebAssembly.Imports): Promise<unknown> => {
    if (source instanceof Uint8Array && isPlaceholder(source)) {
      const instance = (await original(ortWasmModule, imports)) as WebAssembly.Instance;
      heap = findMemory(instance, imports);
      return { instance, module: ortWasmModule };
    }
    return original(source, imports);
  };
  WebAssembly.instantiate = patched as typeof WebAssembly.instantiate;
}

function isPlaceholder(bytes: Uint8Array): boolean {
  return bytes.byteLength === PLACEHOLDER.byteLength && bytes.every((b, i) => b === PLACEHOLDER[i]);
}

export async function createSession(
  model: ArrayBuffer | Uint8Array,
  options: ort.InferenceSession.SessionOptions = {},
): Promise<ort.InferenceSession> {
  configure();
  const bytes = model instanceof Uint8Array ? model : new Uint8Array(model);
  return ort.InferenceSession.create(bytes, { ...SESSION_OPTIONS, ...options });
}

function findMemory(
  instance: WebAssembly.Instance,
  imports: WebAssembly.Imports | undefined,
): WebAssembly.Memory | undefined {
  const candidates: unknown[] = Object.values(instance.exports);
  for (const namespace of Object.values(imports ?? {}))
    candidates.push(...Object.values(namespace));
  return candidates.find(
    (value): value is WebAssembly.Memory => value instanceof WebAssembly.Memory,
  );
}

/**
 * Bytes of ORT's WebAssembly heap, which only ever grows: its current size is also its peak. This
 * is the number that must stay inside the isolate's 128 MB together with JS objects and code.
 * Undefined until the first model session exists.
 */
export function wasmHeapBytes(): number | undefined {
  return heap?.buffer.byteLength;
}
