/**
 * ORT's WebAssembly heap in Node, for measurements: wraps `WebAssembly.instantiate` so the
 * `WebAssembly.Memory` of every module instantiated afterwards is captured (exported or imported),
 * and returns a reader of the largest one's byte length: ORT's heap, tens of MB, whatever small
 * module (a compression helper, another package's wasm) was instantiated after it. The heap only
 * grows, so its current size is also its peak. (In workerd, src/runtime/ort.ts captures it the same way.) Install it before
 * ORT creates its first session.
 */
export function captureWasmHeap(): () => number {
  const memories = new Set<WebAssembly.Memory>();
  const original = WebAssembly.instantiate.bind(WebAssembly) as (
    source: unknown,
    imports?: WebAssembly.Imports,
  ) => Promise<{ instance: WebAssembly.Instance } | WebAssembly.Instance>;
  const wrapped = async (source: unknown, imports?: WebAssembly.Imports) => {
    const result = await original(source, imports);
    const instance = result instanceof WebAssembly.Instance ? result : result.instance;
    const candidates: unknown[] = Object.values(instance.exports);
    for (const namespace of Object.values(imports ?? {})) {
      candidates.push(...Object.values(namespace));
    }
    for (const value of candidates) if (value instanceof WebAssembly.Memory) memories.add(value);
    return result;
  };
  WebAssembly.instantiate = wrapped as typeof WebAssembly.instantiate;
  return () => Math.max(0, ...[...memories].map((memory) => memory.buffer.byteLength));
}
