/**
 * The stock Whisper tiny files: where they come from, their pinned hashes, and how to get them.
 *
 * Source: Hugging Face `Xenova/whisper-tiny` at a pinned revision (8-bit ONNX export for
 * transformers.js; weights OpenAI Whisper, MIT; export Apache-2.0). Each file is downloaded
 * from that revision when the network allows, otherwise copied from an offline mirror folder
 * (`<mirror>/whisper-tiny/<path>`, the layout of ../shared/models). Either way it must match the
 * size and SHA-256 below before it is written under its final name.
 */
import path from "node:path";
import {
  ChecksumError,
  type FileFacts,
  fileChunks,
  hasFile,
  log,
  megabytes,
  writeAtomic,
} from "./files.ts";

export const STOCK_REPO = "Xenova/whisper-tiny";
export const STOCK_REVISION = "5332fcc35e32a33b86612b9a57a89be7906102b1";

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

/**
 * Time allowed for the download to answer with headers, and then for each chunk of the body.
 * Short on purpose: a machine without access fails in seconds and the mirror takes over.
 */
const CONNECT_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 30_000;

/**
 * Makes `stockDir` (models/stock) hold every stock file, verified: downloaded unless `offline`,
 * else copied from `mirror` (a folder holding whisper-tiny/…). Files already there and intact are
 * only hashed. The first failed download (no network) turns downloading off for the rest of the
 * run, so one missing route costs one timeout, not nine.
 */
export async function obtainStockFiles(
  stockDir: string,
  mirror: string | undefined,
  offline: boolean,
): Promise<void> {
  let network = !offline;
  for (const [name, file] of Object.entries(STOCK_FILES)) {
    const target = path.join(stockDir, file.path);
    if (await hasFile(target, file)) continue;
    const failures: string[] = [];
    if (network) {
      const url = `https://huggingface.co/${STOCK_REPO}/resolve/${STOCK_REVISION}/${file.path}`;
      log(
        `download ${file.path} (${megabytes(file.bytes)}) from ${STOCK_REPO}@${STOCK_REVISION.slice(0, 8)}`,
      );
      try {
        await download(url, file, target);
        continue;
      } catch (error) {
        failures.push(`download: ${describeError(error)}`);
        log(`  download failed: ${describeError(error)}`);
        if (!(error instanceof ChecksumError)) {
          network = false;
          log("  no route to Hugging Face: using the mirror for the remaining files");
        }
      }
    }
    if (mirror === undefined) {
      failures.push("mirror: none (set EARSHOT_MODEL_MIRROR or pass --mirror <dir>)");
    } else {
      const source = path.join(mirror, "whisper-tiny", file.path);
      log(`copy ${file.path} (${megabytes(file.bytes)}) from mirror ${source}`);
      try {
        await writeAtomic(target, fileChunks(source), file, progress(file.path, file.bytes, 0.25));
        continue;
      } catch (error) {
        failures.push(`mirror ${source}: ${describeError(error)}`);
      }
    }
    throw new Error(`cannot obtain stock file ${name} (${file.path}):\n  ${failures.join("\n  ")}`);
  }
}

async function download(url: string, file: StockFile, target: string): Promise<void> {
  const response = await fetch(url, { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) });
  if (!response.ok || !response.body) {
    throw new Error(`HTTP ${response.status} ${response.statusText} for ${url}`);
  }
  const chunks = withIdleTimeout(response.body, IDLE_TIMEOUT_MS);
  await writeAtomic(target, chunks, file, progress(file.path, file.bytes, 0.1));
}

/** Logs progress at most every `step` fraction of `total` (and at the end); nothing under 1 MB. */
function progress(label: string, total: number, step: number): (bytes: number) => void {
  if (total < 1_000_000) return () => {};
  let next = total * step;
  return (bytes) => {
    if (bytes < next && bytes !== total) return;
    log(`  ${label}: ${megabytes(bytes)} / ${megabytes(total)}`);
    next = bytes + total * step;
  };
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

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.message}${cause}`;
}
