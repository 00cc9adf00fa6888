/**
 * The stock Whisper tiny files: where they come from, their pinned hashes, and how to get them.
 *
 * Source: Hugging Face `Xenova/whisper-tiny` at a pinned revision (8-bit ONNX export for
 * transformers.js; weights OpenAI Whisper, MIT; export Apache-2.0). Each file is downloaded
 * from that revision when the network allows, otherwise copied from an offline mirror folder
 * (`<mirror>/whisper-tiny/<path>`, the layout of ../shared/models). Either way it must match the
 * size and SHA-256 below before it is written under its final name.
 */
import { createReadStream } from "node:fs";
import path from "node:path";
import {
  ChecksumError,
  type FileFacts,
  hasFile,
  log,
  megabytes,
  progressReporter,
  writeVerified,
} from "./files.ts";

export const STOCK_REPO = "Xenova/whisper-tiny";
export const STOCK_REVISION = "5332fcc35e32a33b86612b9a57a89be7906102b1";
/** Folder of this model inside a mirror (../shared/models/whisper-tiny). */
export const MIRROR_SUBDIR = "whisper-tiny";

export interface StockFile extends FileFacts {
  /** Path inside the Hugging Face repository, also inside models/stock/ and the mirror. */
  path: string;
}

/**
 * Only what preparation and decoding need (merges.txt, tokenizer.json and tokenizer_config.json
 * are not: byte-level BPE decoding needs the vocabulary and the added tokens, not the merges).
 */
export const STOCK_FILES = {
  encoder: {
    path: "onnx/encoder_model_quantized.onnx",
    bytes: 10_124_910,
    sha256: "fd9d995b9dcb0520f0dbf6cf68651af639fc385f594d9d876e69ca2802dc438e",
  },
  decoder: {
    path: "onnx/decoder_model_merged_quantized.onnx",
    bytes: 30_727_765,
    sha256: "6c0c125986b007d2e3734bec84c18bda0152071b90b87fadac6d7764499927a0",
  },
  vocab: {
    path: "vocab.json",
    bytes: 1_036_584,
    sha256: "50d6a919f0a0601d56a04eb583c780d18553aa388254ba3158eb6a00f13e2c1a",
  },
  addedTokens: {
    path: "added_tokens.json",
    bytes: 2082,
    sha256: "ce949fe720c14311cb6c446e69cfe340dc669d7b006077a6feed6ae571dd7e88",
  },
  config: {
    path: "config.json",
    bytes: 2248,
    sha256: "2b2e4e519084e0ea028b19b153f95202735a971870d6844aa26e559edd292e94",
  },
  generationConfig: {
    path: "generation_config.json",
    bytes: 3716,
    sha256: "68ac791fcb4999461a313472125042934656240ba1cba7d1c2627fcbb19ac24c",
  },
  preprocessorConfig: {
    path: "preprocessor_config.json",
    bytes: 339,
    sha256: "a6a76d28c93edb273669eb9e0b0636a2bddbb1272c3261e47b7ca6dfdbac1b8d",
  },
  specialTokensMap: {
    path: "special_tokens_map.json",
    bytes: 2194,
    sha256: "e67ae3a0aaa99abcd9f187138e12db1f65c16a14761c50ef10eef2c174a7a691",
  },
  normalizer: {
    path: "normalizer.json",
    bytes: 52_666,
    sha256: "bf1c507dc8724ca9cf9903640dacfb69dae2f00edee4f21ceba106a7392f26dd",
  },
} as const satisfies Record<string, StockFile>;

export type StockName = keyof typeof STOCK_FILES;

/**
 * Time allowed for the download to answer with headers, and then for each chunk of the body.
 * Short on purpose: a machine without access fails in seconds and the mirror takes over.
 */
const CONNECT_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 30_000;

export function downloadUrl(file: StockFile): string {
  return `https://huggingface.co/${STOCK_REPO}/resolve/${STOCK_REVISION}/${file.path}`;
}

export interface ObtainOptions {
  /** models/stock */
  stockDir: string;
  /** Folder holding whisper-tiny/… or undefined for none. */
  mirror: string | undefined;
  /** Skip the download attempt (--offline). */
  offline: boolean;
}

/**
 * Makes models/stock/ hold every stock file, verified. Files already there and intact are only
 * hashed. The first failed download (no network) turns downloading off for the rest of the run,
 * so one missing route costs one timeout, not nine.
 */
export async function obtainStockFiles(options: ObtainOptions): Promise<void> {
  let network = !options.offline;
  for (const [name, file] of Object.entries(STOCK_FILES)) {
    const target = path.join(options.stockDir, file.path);
    if (await hasFile(target, file)) continue;
    const failures: string[] = [];
    let done = false;
    if (network) {
      try {
        log(
          `download ${file.path} (${megabytes(file.bytes)}) from ${STOCK_REPO}@${STOCK_REVISION.slice(0, 8)}`,
        );
        await download(file, target);
        done = true;
      } catch (error) {
        failures.push(`download: ${describeError(error)}`);
        log(`  download failed: ${describeError(error)}`);
        if (!(error instanceof ChecksumError)) {
          network = false;
          log("  no route to Hugging Face: using the mirror for the remaining files");
        }
      }
    }
    if (!done && options.mirror !== undefined) {
      const source = path.join(options.mirror, MIRROR_SUBDIR, file.path);
      try {
        log(`copy ${file.path} (${megabytes(file.bytes)}) from mirror ${source}`);
        await writeVerified(
          target,
          fileChunks(source),
          file,
          progressReporter(file.path, file.bytes),
        );
        done = true;
      } catch (error) {
        failures.push(`mirror ${source}: ${describeError(error)}`);
      }
    } else if (!done) {
      failures.push("mirror: none (set EARSHOT_MODEL_MIRROR or pass --mirror <dir>)");
    }
    if (!done) {
      throw new Error(
        `cannot obtain stock file ${name} (${file.path}):\n  ${failures.join("\n  ")}`,
      );
    }
  }
}

async function download(file: StockFile, target: string): Promise<void> {
  const response = await fetch(downloadUrl(file), {
    signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS),
    redirect: "follow",
  });
  if (!response.ok || !response.body) {
    throw new Error(`HTTP ${response.status} ${response.statusText} for ${downloadUrl(file)}`);
  }
  await writeVerified(
    target,
    withIdleTimeout(response.body, IDLE_TIMEOUT_MS),
    file,
    progressReporter(file.path, file.bytes, 0.1),
  );
}

/** Yields a web stream's chunks, failing when one takes longer than `ms` to arrive. */
async function* withIdleTimeout(
  body: ReadableStream<Uint8Array>,
  ms: number,
): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no data for ${ms} ms`)), ms);
      });
      try {
        const { done, value } = await Promise.race([reader.read(), stalled]);
        if (done) return;
        yield value;
      } finally {
        clearTimeout(timer);
      }
    }
  } finally {
    await reader.cancel();
  }
}

async function* fileChunks(file: string): AsyncGenerator<Uint8Array> {
  for await (const chunk of createReadStream(file)) yield chunk as Buffer;
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
