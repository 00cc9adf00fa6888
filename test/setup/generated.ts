/**
 * vitest globalSetup: writes src/generated/ (scripts/generated.ts: the Opus decoder's wasm and the
 * prepared Silero model) before any test project builds the worker, which imports both.
 */
import { writeGenerated } from "../../scripts/generated.ts";

export default async function setup(): Promise<void> {
  await writeGenerated();
}
