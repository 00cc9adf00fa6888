import { env } from "cloudflare:workers";
import { type ManifestRow, parseManifest } from "./manifest";
import { parseWav, type Wav } from "./wav";

// Re-exported: the tests import everything clip-related from here.
export type { ManifestRow } from "./manifest";
export { parseWav, pcm16ToFloat, type Wav } from "./wav";

/** A clip from ../shared/eval/dev, fetched through the FIXTURES binding (see vitest.config.ts). */
export async function fixture(name: string): Promise<Uint8Array> {
  const response = await (env as unknown as { FIXTURES: Fetcher }).FIXTURES.fetch(
    `http://fixtures/${name}`,
  );
  if (!response.ok)
    throw new Error(`fixture ${name}: HTTP ${response.status} ${await response.text()}`);
  return new Uint8Array(await response.arrayBuffer());
}

export async function wavFixture(name: string): Promise<Wav> {
  return parseWav(await fixture(name));
}

/** The rows of ../shared/eval/dev/manifest.tsv, one per clip. */
export async function manifest(): Promise<ManifestRow[]> {
  return parseManifest(new TextDecoder().decode(await fixture("manifest.tsv")));
}
