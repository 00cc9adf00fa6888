/**
 * vitest globalSetup: writes src/generated/ (tools/models/generated.ts: the Opus decoder's wasm and
 * the prepared Silero model) before any test project builds the worker, which imports both.
 */
import { writeGenerated } from "../../tools/models/generated.ts";

export default async function setup(): Promise<void> {
  await writeGenerated();
}
