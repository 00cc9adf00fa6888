/**
 * The isolate's Whisper: the encoder and decoder sessions, tokenizer and logit rules, checked once
 * at load for the inputs and outputs transcribe.ts relies on. Shared by every session of the
 * isolate; it holds no per-call state.
 */
import type { InferenceSession } from "onnxruntime-web/wasm";
import type { WhisperDecoder } from "./decode-types.ts";
import { LOGIT_POSITIONS_INPUT } from "./decoder-run.ts";
import { type GenerationConfig, logitRules } from "./logit-rules.ts";
import { TOKEN_ROWS_INPUT, type VocabularyProjection } from "./projection.ts";
import { type AddedTokens, type Vocab, WhisperTokenizer } from "./tokenizer.ts";
import { englishOrder } from "./vocabulary-order.ts";

export interface WhisperModel extends WhisperDecoder {
  encoder: InferenceSession;
  /** Whether the encoder accepts fewer than MAX_FRAMES frames. */
  variableLength: boolean;
}

export interface WhisperFiles {
  encoder: InferenceSession;
  decoder: InferenceSession;
  /** Parsed vocab.json. */
  vocab: Vocab;
  /** Parsed added_tokens.json. */
  addedTokens: AddedTokens;
  /** Parsed generation_config.json. */
  generationConfig: GenerationConfig;
  variableLength: boolean;
  /**
   * The vocabulary table and its kernel (projection.ts), for a prepared decoder, which has no
   * table of its own (it takes `token_rows`). The stock decoder needs none.
   */
  projection?: VocabularyProjection;
}

export function createWhisperModel(files: WhisperFiles): WhisperModel {
  const tokenizer = new WhisperTokenizer(files.vocab, files.addedTokens);
  for (const name of ["input_features"]) {
    if (!files.encoder.inputNames.includes(name)) throw new Error(`encoder has no input ${name}`);
  }
  if (!files.encoder.outputNames.includes("last_hidden_state")) {
    throw new Error("encoder has no output last_hidden_state");
  }
  for (const name of ["input_ids", "encoder_hidden_states", "use_cache_branch"]) {
    if (!files.decoder.inputNames.includes(name)) throw new Error(`decoder has no input ${name}`);
  }
  return {
    encoder: files.encoder,
    decoder: files.decoder,
    tokenizer,
    rules: logitRules(files.generationConfig, tokenizer),
    selectsPositions: files.decoder.inputNames.includes(LOGIT_POSITIONS_INPUT),
    ...(files.decoder.inputNames.includes(TOKEN_ROWS_INPUT)
      ? { external: externalVocabulary(files, tokenizer) }
      : {}),
    variableLength: files.variableLength,
  };
}

function externalVocabulary(files: WhisperFiles, tokenizer: WhisperTokenizer) {
  const { projection } = files;
  if (!projection) {
    throw new Error(`the decoder takes ${TOKEN_ROWS_INPUT} but no vocabulary table was loaded`);
  }
  const order = englishOrder(files.vocab, tokenizer);
  projection.checkOrder(order);
  return { order, projection };
}
