/**
 * File plumbing for the model pipeline: SHA-256 of files, writes that never leave a half-written
 * file under the final name, and progress lines on stderr (stdout stays free for results).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";

export interface FileFacts {
  bytes: number;
  sha256: string;
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

/** Size and SHA-256 of a file, or undefined when it does not exist. Streams: no full copy. */
export async function fileFacts(file: string): Promise<FileFacts | undefined> {
  let bytes: number;
  try {
    bytes = (await stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return { bytes, sha256: hash.digest("hex") };
}

/** Whether `file` exists with exactly this size and hash (size first: it costs nothing). */
export async function hasFile(file: string, expected: FileFacts): Promise<boolean> {
  try {
    if ((await stat(file)).size !== expected.bytes) return false;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  return (await fileFacts(file))?.sha256 === expected.sha256;
}

/** A sibling temp name: same directory, so the final rename is atomic on one filesystem. */
export function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.partial-${process.pid}`);
}

/** Writes bytes under a temp name and renames into place. */
export async function writeAtomic(file: string, bytes: Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = tempName(file);
  try {
    await writeFile(temp, bytes);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Writes `bytes` (atomically) unless `file` already holds exactly them; whether it wrote. */
export async function writeIfChanged(file: string, bytes: Uint8Array): Promise<boolean> {
  const facts = await fileFacts(file);
  if (facts?.bytes === bytes.byteLength && facts.sha256 === sha256(bytes)) return false;
  await writeAtomic(file, bytes);
  return true;
}

/**
 * Streams chunks into a temp file while hashing them, checks size and SHA-256, and only then
 * renames into place. A mismatch deletes the temp file and throws `ChecksumError`.
 */
export async function writeVerified(
  file: string,
  chunks: AsyncIterable<Uint8Array>,
  expected: FileFacts,
  onProgress: (bytes: number) => void,
): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = tempName(file);
  const hash = createHash("sha256");
  let bytes = 0;
  const handle = await open(temp, "w");
  let isOpen = true;
  try {
    for await (const chunk of chunks) {
      bytes += chunk.byteLength;
      if (bytes > expected.bytes) {
        throw new ChecksumError(
          `${path.basename(file)}: more than the expected ${expected.bytes} bytes`,
        );
      }
      hash.update(chunk);
      await handle.write(chunk);
      onProgress(bytes);
    }
    await handle.close();
    isOpen = false;
    const sha = hash.digest("hex");
    if (bytes !== expected.bytes || sha !== expected.sha256) {
      throw new ChecksumError(
        `${path.basename(file)}: got ${bytes} bytes with sha256 ${sha}, expected ` +
          `${expected.bytes} bytes with sha256 ${expected.sha256}; refusing it`,
      );
    }
    await rename(temp, file);
  } catch (error) {
    if (isOpen) await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
}

export class ChecksumError extends Error {
  override name = "ChecksumError";
}

/** Files smaller than this are copied without progress lines (they take milliseconds). */
const PROGRESS_MIN_BYTES = 1_000_000;

/** Logs progress at most every `step` fraction of `total` (and at the end). */
export function progressReporter(
  label: string,
  total: number,
  step = 0.25,
): (bytes: number) => void {
  let next = total * step;
  if (total < PROGRESS_MIN_BYTES) return () => {};
  return (bytes) => {
    if (bytes >= next || bytes === total) {
      log(`  ${label}: ${megabytes(bytes)} / ${megabytes(total)}`);
      next = bytes === total ? Number.POSITIVE_INFINITY : bytes + total * step;
    }
  };
}
