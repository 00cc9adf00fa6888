/**
 * File plumbing for the model pipeline: SHA-256 of files, writes that never leave a half-written
 * file under the final name, and progress lines on stderr (stdout stays free for results).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import path from "node:path";

export type FileFacts = { bytes: number; sha256: string };

export class ChecksumError extends Error {
  override name = "ChecksumError";
}

export function log(message: string): void {
  process.stderr.write(`[models] ${message}\n`);
}

export function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** What `promise` gives, or undefined when it fails because a file does not exist. */
export async function unlessMissing<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Whether `file` exists with exactly this size and hash (size first: it costs nothing). */
export async function hasFile(file: string, expected: FileFacts): Promise<boolean> {
  if ((await unlessMissing(stat(file)))?.size !== expected.bytes) return false;
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex") === expected.sha256;
}

/**
 * A file's bytes, opened only when first read: a stream opened before `writeAtomic` awaits would
 * emit its open error (a missing file) with no one listening, which ends Node's process.
 */
export async function* fileChunks(file: string): AsyncIterable<Uint8Array> {
  for await (const chunk of createReadStream(file)) yield chunk as Buffer;
}

/**
 * Writes `chunks` under a temp name beside `file` (same filesystem: the rename is atomic) and
 * renames into place. With `expected`, only when size and SHA-256 match: otherwise it deletes
 * the temp file and throws `ChecksumError`.
 */
export async function writeAtomic(
  file: string,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  expected?: FileFacts,
  onProgress?: (bytes: number) => void,
): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.partial-${process.pid}`);
  const name = path.basename(file);
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    const handle = await open(temp, "w");
    try {
      for await (const chunk of chunks) {
        bytes += chunk.byteLength;
        if (expected && bytes > expected.bytes) {
          throw new ChecksumError(`${name}: more than the expected ${expected.bytes} bytes`);
        }
        hash.update(chunk);
        await handle.write(chunk);
        onProgress?.(bytes);
      }
    } finally {
      await handle.close();
    }
    const sha = hash.digest("hex");
    if (expected && (bytes !== expected.bytes || sha !== expected.sha256)) {
      throw new ChecksumError(
        `${name}: got ${bytes} bytes with sha256 ${sha}, expected ${expected.bytes} bytes with ` +
          `sha256 ${expected.sha256}; refusing it`,
      );
    }
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Writes `bytes` (atomically) unless `file` already holds exactly them. */
export async function writeIfChanged(file: string, bytes: Uint8Array): Promise<void> {
  if (await hasFile(file, { bytes: bytes.byteLength, sha256: sha256(bytes) })) return;
  await writeAtomic(file, [bytes]);
}
