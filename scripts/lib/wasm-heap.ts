/**
 * ORT's WebAssembly heap in Node, for measurements: wraps `WebAssembly.instantiate` so the
 * `WebAssembly.Memory` of every module instantiated afterwards is captured (exported or imported),
 * and returns a reader of the latest one's byte length. The heap only grows, so its current size
 * is also its peak. (In workerd, src/runtime/ort.ts captures it the same way.) Install it before
 * ORT creates its first session.
 */
export function captureWasmHeap(): () => number {
  let heap: WebAssembly.Memory | undefined;
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
    heap = candidates.find((v): v is WebAssembly.Memory => v instanceof WebAssembly.Memory) ?? heap;
    return result;
  };
  WebAssembly.instantiate = wrapped as typeof WebAssembly.instantiate;
  return () => heap?.buffer.byteLength ?? 0;
}
