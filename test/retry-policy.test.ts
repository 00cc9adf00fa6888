import { describe, expect, it } from "vitest";
import type { DecodeResult, StopReason } from "../src/stt/whisper/decode-types";
import {
  COMPRESSION_RATIO_THRESHOLD,
  FALLBACK_LOGPROB_THRESHOLD,
  looped,
  needsFallback,
  SURE_AFTER_CUT_LOGPROB,
} from "../src/stt/whisper/retry-policy";

function attempt(stopReason: StopReason, avgLogprob: number, ratio = 0.8, noSpeech = 0.05) {
  const result: DecodeResult = {
    language: "en",
    tokens: [],
    noSpeechProbability: noSpeech,
    avgLogprob,
    stopReason,
    temperature: 0,
    decoderSteps: 10,
    promptMs: 0,
  };
  return { result, ratio };
}

describe("temperature fallback: when a decode is tried again", () => {
  it("keeps a sure decode the repetition guard cut: the guard already dropped the repeat", () => {
    // "If the reader will excuse me," (avg −0.12, ratio 0.78), cut where Whisper started over.
    expect(needsFallback(attempt("repetition", -0.12, 0.78))).toBe(false);
    expect(needsFallback(attempt("repetition", SURE_AFTER_CUT_LOGPROB))).toBe(false);
    // It still counts as looped when several attempts are compared.
    expect(looped(attempt("repetition", -0.12))).toBe(true);
  });

  it("retries a cut decode that is unsure, or whose text still compresses like a loop", () => {
    // "It had then leasert," (−0.90): its retry read "leisure".
    expect(needsFallback(attempt("repetition", -0.9, 0.71))).toBe(true);
    expect(needsFallback(attempt("repetition", SURE_AFTER_CUT_LOGPROB - 0.01))).toBe(true);
    expect(needsFallback(attempt("repetition", -0.1, COMPRESSION_RATIO_THRESHOLD + 0.1))).toBe(
      true,
    );
  });

  it("retries a loop the guard did not catch, whatever its log-probability", () => {
    expect(needsFallback(attempt("max-tokens", -0.1))).toBe(true);
    expect(needsFallback(attempt("endoftext", -0.1, COMPRESSION_RATIO_THRESHOLD + 0.1))).toBe(true);
  });

  it("retries a low average log-probability, unless Whisper thinks the window is silence", () => {
    expect(needsFallback(attempt("endoftext", FALLBACK_LOGPROB_THRESHOLD - 0.05))).toBe(true);
    expect(needsFallback(attempt("endoftext", FALLBACK_LOGPROB_THRESHOLD - 0.05, 0.8, 0.9))).toBe(
      false,
    );
    expect(needsFallback(attempt("timestamp-at-end", -0.5))).toBe(false);
  });
});
