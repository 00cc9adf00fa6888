/**
 * The ONNX Runtime session options every Earshot model uses, in workerd (src/runtime/ort.ts) and in
 * the Node scripts and benchmarks that measure the same models — one definition, so a measurement
 * can never run a differently optimised graph than production. No imports: Node scripts load this
 * file directly.
 *
 * graphOptimizationLevel "all"; the memory arena and memory patterns off: with them on, the WASM
 * heap peaked higher (../shared/WHISPER-NOTES.md).
 */
export const SESSION_OPTIONS = {
  executionProviders: ["wasm"],
  graphOptimizationLevel: "all",
  enableCpuMemArena: false,
  enableMemPattern: false,
} as const;
