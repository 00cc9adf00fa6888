/**
 * src/stt/model-manifest.json: the files the Durable Object loads from R2, with their R2 keys,
 * sizes and SHA-256. Committed, so every machine's preparation is checked against the same
 * hashes, and the worker refuses any object that differs.
 *
 * Keys are content-addressed (`whisper-tiny/<first 16 hex of sha256>/<name>`): a new preparation
 * uploads beside the old one instead of overwriting it, so a worker still running the previous
 * manifest keeps finding its own files during a deploy.
 */
import { readFile } from "node:fs/promises";
import { type FileFacts, unlessMissing, writeAtomic } from "./files.ts";
import { PREPARED_NAMES, type PreparedName } from "./prepare.ts";
import { STOCK_FILES, STOCK_REPO, STOCK_REVISION } from "./stock.ts";

const MODEL_ID = "whisper-tiny";

/** Stock files the worker needs next to the prepared models (decoding's tokenizer and rules). */
const RUNTIME_STOCK = ["vocab", "addedTokens", "generationConfig"] as const;
export type ManifestName = PreparedName | (typeof RUNTIME_STOCK)[number];

export interface ManifestFile extends FileFacts {
  /** File name in models/prepared/ or models/stock/. */
  name: string;
  /** R2 object key. */
  key: string;
}

export interface Manifest {
  about: string;
  model: string;
  source: { repository: string; revision: string };
  files: Record<ManifestName, ManifestFile>;
}

const objectKey = (name: string, sha256: string) => `${MODEL_ID}/${sha256.slice(0, 16)}/${name}`;

export function buildManifest(prepared: Record<PreparedName, FileFacts>): Manifest {
  const files = {} as Record<ManifestName, ManifestFile>;
  for (const [name, file] of Object.entries(PREPARED_NAMES) as [PreparedName, string][]) {
    files[name] = { name: file, key: objectKey(file, prepared[name].sha256), ...prepared[name] };
  }
  for (const name of RUNTIME_STOCK) {
    const { path, bytes, sha256 } = STOCK_FILES[name];
    files[name] = { name: path, key: objectKey(path, sha256), bytes, sha256 };
  }
  return {
    about:
      "Written by `npm run models` (tools/models/cli.ts); the Durable Object loads these R2 objects " +
      "and refuses any whose size or sha256 differs.",
    model: MODEL_ID,
    source: { repository: STOCK_REPO, revision: STOCK_REVISION },
    files,
  };
}

export async function readManifest(file: string): Promise<Manifest | undefined> {
  const text = await unlessMissing(readFile(file, "utf8"));
  return text === undefined ? undefined : (JSON.parse(text) as Manifest);
}

export async function writeManifest(file: string, manifest: Manifest): Promise<void> {
  await writeAtomic(file, [new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`)]);
}

/** Differences between two manifests' files, one line each; empty when they agree. */
export function manifestDifferences(expected: Manifest, actual: Manifest): string[] {
  const lines: string[] = [];
  for (const name of Object.keys(actual.files) as ManifestName[]) {
    const want = expected.files[name];
    const got = actual.files[name];
    if (!want) lines.push(`${name}: not in the committed manifest`);
    else if (want.sha256 !== got.sha256 || want.bytes !== got.bytes || want.key !== got.key) {
      lines.push(
        `${name}: committed ${want.bytes} bytes sha256 ${want.sha256}, ` +
          `produced ${got.bytes} bytes sha256 ${got.sha256}`,
      );
    }
  }
  for (const name of Object.keys(expected.files)) {
    if (!(name in actual.files)) lines.push(`${name}: in the committed manifest, not produced`);
  }
  return lines;
}
