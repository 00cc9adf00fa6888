/**
 * vitest globalSetup: writes src/generated/opus.wasm (scripts/opus-wasm.ts) before any test
 * project builds the worker, which imports it as a pre-compiled module.
 */
import { writeOpusWasm } from "../../scripts/opus-wasm.ts";

export default async function setup(): Promise<void> {
  await writeOpusWasm();
}
