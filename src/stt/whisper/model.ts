/**
 * The isolate's Whisper: the encoder and decoder sessions, tokenizer and logit rules, checked once
 * at load for the inputs and outputs transcribe.ts relies on. Shared by every session of the
 * isolate; it holds no per-call state.
 */
import type { InferenceSession } from "onnxruntime-web/wasm";
import type { WhisperDecoder } from "./decode-types.ts";
import { LOGIT_POSITIONS_INPUT } from "./decoder-run.ts";
import { type GenerationConfig, logitRules } from "./logit-rules.ts";
import { type AddedTokens, type Vocab, WhisperTokenizer } from "./tokenizer.ts";
import { englishOrder, TAIL_ROWS_INPUT } from "./vocabulary-order.ts";

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
    ...(files.decoder.inputNames.includes(TAIL_ROWS_INPUT)
      ? {
          order: englishOrder(files.vocab, tokenizer),
        }
      : {}),
    variableLength: files.variableLength,
  };
}
