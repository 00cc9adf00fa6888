/**
 * Stock Whisper files in, prepared files out (models/prepared/): the graph rewrites of
 * encoder-rewrite.ts and decoder-rewrite.ts, dead nodes pruned, weights moved to an external data
 * file beside each model. Pure function of the stock bytes: no clocks, no randomness, so the same
 * stock files give byte-identical prepared files on every machine (the manifest checks it).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { type AddedTokens, type Vocab, WhisperTokenizer } from "../../src/stt/whisper/tokenizer.ts";
import { encodeTableHeader, VOCABULARY_TABLE } from "../../src/stt/whisper/vocab-table.ts";
import { englishOrder, type VocabularyOrder } from "../../src/stt/whisper/vocabulary-order.ts";
import { type ExternalTable, foldDecoderShapes, rewriteDecoder } from "./decoder-rewrite.ts";
import { rewriteEncoder } from "./encoder-rewrite.ts";
import { type FileFacts, log, megabytes, sha256, writeAtomic } from "./files.ts";
import {
  assertTopological,
  countNodes,
  decodeModel,
  encodeModel,
  entry,
  externalizeWeights,
  type Model,
  prune,
} from "./onnx-graph.ts";
import { STOCK_FILES } from "./stock.ts";

/**
 * Initializers of at least this many bytes go to the external data file; smaller ones (scales,
 * zero points, shape constants) stay inline, where ORT reads them without a lookup. 1 KiB is the
 * threshold the onnx Python package uses for the same conversion.
 */
const EXTERNAL_MIN_BYTES = 1024;

/** Written into each prepared model's metadata, so a file says what was done to it. */
const PREPARATION = {
  encoder:
    "earshot: attention outputs removed, positional table sliced to the input length, " +
    "attention per head, dead nodes pruned, weights external",
  decoder:
    "earshot: vocabulary table outside the graph (token_rows in; the hidden state quantized " +
    "twice as int8x2T out: logit_rows, logit_zeros, logit_scales; vocab-table.bin), attention " +
    "outputs removed, encoder-state quantization in the no-cache branch, prompt rows only at " +
    "logit_positions, shape arithmetic folded, dead nodes pruned, weights external",
} as const;

/** Prepared file names: in models/prepared/, and the external data names inside the models. */
export const PREPARED_NAMES = {
  encoder: "encoder.onnx",
  encoderData: "encoder.onnx.data",
  decoder: "decoder.onnx",
  decoderData: "decoder.onnx.data",
  vocabTable: "vocab-table.bin",
} as const;

export type PreparedName = keyof typeof PREPARED_NAMES;

interface WhisperConfig {
  d_model: number;
  encoder_attention_heads: number;
  max_source_positions: number;
  vocab_size: number;
}

export async function prepareModels(
  stockDir: string,
  preparedDir: string,
): Promise<Record<PreparedName, FileFacts>> {
  const json = async <T>(file: { path: string }): Promise<T> =>
    JSON.parse(await readFile(path.join(stockDir, file.path), "utf8")) as T;
  const config = await json<WhisperConfig>(STOCK_FILES.config);
  const vocab = await json<Vocab>(STOCK_FILES.vocab);
  const addedTokens = await json<AddedTokens>(STOCK_FILES.addedTokens);
  const order = englishOrder(vocab, new WhisperTokenizer(vocab, addedTokens));

  const encoder = await prepareOne("encoder", stockDir, (model) =>
    rewriteEncoder(model, {
      heads: config.encoder_attention_heads,
      positions: config.max_source_positions,
    }),
  );
  let table: ExternalTable | undefined;
  const decoder = await prepareOne("decoder", stockDir, (model) => {
    table = rewriteDecoder(
      model,
      { vocabulary: config.vocab_size, width: config.d_model },
      {
        external: true,
      },
    );
    const fold = foldDecoderShapes(model);
    log(
      `  decoder shapes: ${fold.folded} Reshape targets constant, ${fold.collapsed} views ` +
        `collapsed, ${fold.kept} kept; ${fold.nodesBefore} → ${fold.nodesAfter} nodes`,
    );
  });
  if (!table) throw new Error("the decoder rewrite returned no vocabulary table");

  const outputs: Record<PreparedName, Uint8Array> = {
    encoder: encoder.model,
    encoderData: encoder.data,
    decoder: decoder.model,
    decoderData: decoder.data,
    vocabTable: vocabularyTableFile(table, config.d_model, order),
  };
  const facts = {} as Record<PreparedName, FileFacts>;
  for (const [name, bytes] of Object.entries(outputs) as [PreparedName, Uint8Array][]) {
    await writeAtomic(path.join(preparedDir, PREPARED_NAMES[name]), [bytes]);
    facts[name] = { bytes: bytes.byteLength, sha256: sha256(bytes) };
    log(`  wrote ${PREPARED_NAMES[name]}: ${megabytes(bytes.byteLength)}`);
  }
  return facts;
}

/**
 * vocab-table.bin (src/stt/whisper/projection.ts reads it): the header, then the table's rows
 * (one token's `width` bytes each) in `order`, the English head first.
 */
function vocabularyTableFile(
  table: ExternalTable,
  width: number,
  order: VocabularyOrder,
): Uint8Array {
  const vocabulary = order.ids.length;
  if (table.rows.byteLength !== vocabulary * width) {
    throw new Error(
      `vocabulary table has ${table.rows.byteLength} bytes, not ${vocabulary} × ${width}`,
    );
  }
  const header = VOCABULARY_TABLE.headerBytes;
  const file = new Uint8Array(header + vocabulary * width);
  file.set(
    encodeTableHeader({ vocabulary, width, headSize: order.headSize, zeroPoint: table.zeroPoint }),
  );
  order.ids.forEach((id, row) => {
    file.set(table.rows.subarray(id * width, (id + 1) * width), header + row * width);
  });
  return file;
}

/** One stock model rewritten, pruned, stamped and split into protobuf and external weights. */
async function prepareOne(
  which: "encoder" | "decoder",
  stockDir: string,
  rewrite: (model: Model) => void,
): Promise<{ model: Uint8Array; data: Uint8Array }> {
  const started = performance.now();
  const model = decodeModel(await readFile(path.join(stockDir, STOCK_FILES[which].path)));
  const nodesBefore = countNodes(model.graph);
  rewrite(model);
  const removed = prune(model.graph);
  assertTopological(model.graph);
  // Assigned, not pushed: protobufjs leaves absent repeated fields as a shared frozen array.
  model.metadataProps = [...model.metadataProps, entry("earshot.preparation", PREPARATION[which])];
  const data = externalizeWeights(model, PREPARED_NAMES[`${which}Data`], EXTERNAL_MIN_BYTES);
  const bytes = encodeModel(model);
  log(
    `  ${which}: ${nodesBefore} → ${countNodes(model.graph)} nodes (${removed} pruned), ` +
      `model ${megabytes(bytes.byteLength)} + weights ${megabytes(data.byteLength)} ` +
      `in ${Math.round(performance.now() - started)} ms`,
  );
  return { model: bytes, data };
}
