import { type InferenceSession, Tensor } from "onnxruntime-web/wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { createSession } from "../src/runtime/ort";
import { greedyDecode } from "../src/stt/whisper/decode";
import type { DecodeOptions, SampledToken } from "../src/stt/whisper/decode-types";
import { favoured } from "../src/stt/whisper/keyterm-bias";
import { applyLogitRules, type GenerationConfig, logitRules } from "../src/stt/whisper/logit-rules";
import { createWhisperModel, type WhisperModel } from "../src/stt/whisper/model";
import { findRepetition } from "../src/stt/whisper/repetition";
import { SharedPrompt } from "../src/stt/whisper/shared-prompt";
import { BURST_GAP_FRAMES, noSpeechVerdict, vadEvidence } from "../src/stt/whisper/speech-evidence";
import { type AddedTokens, type Vocab, WhisperTokenizer } from "../src/stt/whisper/tokenizer";
import { transcribe, windowFrames } from "../src/stt/whisper/transcribe";
import { buildTranscript } from "../src/stt/whisper/transcript";
import { wordErrorRate } from "../tools/eval/wer";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { whisperFile, whisperJson } from "./helpers/whisper-files";

/*
 * A miniature vocabulary with Whisper's layout (text, <|endoftext|>, start, languages, tasks,
 * <|nocaptions|>, <|notimestamps|>, then 1501 timestamps), so the rules read plainly.
 */
const TEXT = ["Ġgo", "Ġforward", "Ġten", "Ġmeters", ".", "Ġthank", "Ġyou", "Ġthe", "Ġdog", "s"];
const vocab: Vocab = { ...Object.fromEntries(TEXT.map((t, i) => [t, i])), "<|endoftext|>": 10 };
const added: AddedTokens = {
  "<|startoftranscript|>": 11,
  "<|en|>": 12,
  "<|de|>": 13,
  "<|translate|>": 14,
  "<|transcribe|>": 15,
  "<|startoflm|>": 16,
  "<|startofprev|>": 17,
  "<|nocaptions|>": 18,
  "<|notimestamps|>": 19,
};
const mini = new WhisperTokenizer(vocab, added);
const [GO, FORWARD, TEN, METERS, DOT, THANK, YOU, THE, DOG] = [0, 1, 2, 3, 4, 5, 6, 7, 8] as const;
const EOT = 10;
/** Timestamp token of `seconds`. */
const ts = (seconds: number) => 20 + Math.round(seconds / 0.02);
const rules = logitRules({ suppress_tokens: [DOG], begin_suppress_tokens: [EOT] }, mini);

const allowed = (logits: Float32Array) =>
  [...logits.keys()].filter((id) => logits[id] !== Number.NEGATIVE_INFINITY);

/** Logits favouring text a little over each single timestamp. */
function flatLogits(): Float32Array {
  const logits = new Float32Array(mini.vocabSize).fill(-10);
  logits.fill(0, 0, 20);
  return logits;
}

describe("Whisper timestamp rules", () => {
  it("opens with a timestamp no later than 1 s", () => {
    const logits = flatLogits();
    applyLogitRules(logits, [], rules);
    expect(allowed(logits)).toEqual(Array.from({ length: 51 }, (_, i) => ts(0) + i));
  });

  it("wants text after an opening or a pair of timestamps", () => {
    for (const sampled of [[ts(0)], [ts(0), GO, ts(1), ts(1)]]) {
      const logits = flatLogits();
      applyLogitRules(logits, sampled, rules);
      expect(allowed(logits).every((id) => id < 20)).toBe(true);
      // Never <|notimestamps|> nor a suppressed token; <|endoftext|> may come.
      expect(allowed(logits)).not.toContain(19);
      expect(allowed(logits)).not.toContain(DOG);
      expect(allowed(logits)).toContain(EOT);
    }
  });

  it("closes a segment strictly later, then opens the next no earlier", () => {
    const afterText = flatLogits();
    applyLogitRules(afterText, [ts(0.5), GO], rules);
    expect(allowed(afterText)).not.toContain(ts(0.5));
    expect(allowed(afterText)).toContain(ts(0.52));
    expect(allowed(afterText)).toContain(GO);

    const afterClose = flatLogits();
    applyLogitRules(afterClose, [ts(0.5), GO, ts(2)], rules);
    const next = allowed(afterClose);
    expect(next).toContain(EOT);
    expect(next).toContain(ts(2));
    expect(next).not.toContain(ts(1.98));
    expect(next.filter((id) => id < EOT)).toEqual([]);
  });

  it("forces a timestamp when timestamps together outweigh every text token", () => {
    const logits = flatLogits();
    // ~1500 timestamps at −5 each: log-sum ≈ −5 + ln 1500 ≈ 2.3 > 0, the best text logit.
    logits.fill(-5, ts(0.04));
    applyLogitRules(logits, [ts(0), GO], rules);
    expect(allowed(logits).every((id) => mini.isTimestamp(id))).toBe(true);
    // …but not when one text token beats their total.
    const confident = flatLogits();
    confident.fill(-5, ts(0.04));
    confident[FORWARD] = 4;
    applyLogitRules(confident, [ts(0), GO], rules);
    expect(allowed(confident)).toContain(FORWARD);
  });
});

describe("Whisper repetition guard", () => {
  it("cuts a block repeated back to back, keeping one copy", () => {
    const sampled = [ts(0), THANK, YOU, DOT, ts(1), ts(1), THANK, YOU, DOT, ts(2)];
    expect(findRepetition(sampled, mini)).toEqual({ at: 6, rule: "block" });
    // A word said twice is speech; three times is a loop.
    expect(findRepetition([ts(0), THE, THE, GO], mini)).toBeUndefined();
    expect(findRepetition([ts(0), THE, THE, THE, GO], mini)).toEqual({
      at: 2,
      rule: "block",
    });
  });

  it("keeps a word said twice when the VAD heard it said twice, and only then", () => {
    const thrice = [ts(0), THE, THE, THE, GO];
    // Two bursts of about the same length (psx_cards_004's "five five": 13 and 11 frames): the
    // second copy stays, the third goes.
    expect(findRepetition(thrice, mini, { speechBursts: [13, 11] })).toEqual({
      at: 3,
      rule: "block",
    });
    // One burst (a word said once, looped by the decoder): one copy, as without evidence.
    expect(findRepetition(thrice, mini, { speechBursts: [13] })).toEqual({ at: 2, rule: "block" });
    expect(findRepetition(thrice, mini)).toEqual({ at: 2, rule: "block" });
    // Two bursts of unlike lengths are two different words ("four queen": 4 and 12 frames).
    expect(findRepetition(thrice, mini, { speechBursts: [4, 12] })).toEqual({
      at: 2,
      rule: "block",
    });
    expect(findRepetition(thrice, mini, { speechBursts: [6, 12] })).toEqual({
      at: 3,
      rule: "block",
    });
    // A word before the repeat has its own burst: the copies are the bursts after it.
    const after = [ts(0), GO, THE, THE, THE, DOG];
    expect(findRepetition(after, mini, { speechBursts: [20, 10] })).toEqual({
      at: 3,
      rule: "block",
    });
    expect(findRepetition(after, mini, { speechBursts: [20, 10, 9] })).toEqual({
      at: 4,
      rule: "block",
    });
    // Blocks of two or three words keep one copy whatever the evidence.
    const pair = [ts(0), THANK, YOU, THANK, YOU, DOT, ts(1)];
    expect(findRepetition(pair, mini, { speechBursts: [8, 8, 8, 8] })).toEqual({
      at: 3,
      rule: "block",
    });
  });

  it("measures the VAD's separate bursts of speech", () => {
    const frames = (pattern: string) =>
      [...pattern].map((c) => (c === "#" ? 0.9 : c === "-" ? 0.4 : 0.1));
    // psx_cards_004 ("five five") as Silero hears it after priming: two bursts 5 frames apart.
    expect(vadEvidence(frames("...#############..---###########...."))?.speechBursts).toEqual([
      13, 11,
    ]);
    // psx_cards_003 ("seven of clubs"): a one-frame dip is not a pause.
    expect(
      vadEvidence(frames("...####################.#################...."))?.speechBursts,
    ).toEqual([38]);
    // BURST_GAP_FRAMES below the threshold part two bursts; one frame fewer does not.
    const gap = ".".repeat(BURST_GAP_FRAMES);
    expect(vadEvidence(frames(`#####${gap}####`))?.speechBursts).toEqual([5, 4]);
    expect(vadEvidence(frames(`#####${gap.slice(1)}####`))?.speechBursts).toEqual([
      5 + BURST_GAP_FRAMES - 1 + 4,
    ]);
    expect(vadEvidence(frames("....."))?.speechBursts).toEqual([]);
  });

  it("cuts a token block repeated four times, for scripts without spaces", () => {
    // "s" has no leading space: without the token rule these would be one endless word.
    const S = 9;
    expect(findRepetition([ts(0), S, S, S], mini)).toBeUndefined();
    expect(findRepetition([ts(0), S, S, S, S], mini)).toEqual({ at: 2, rule: "tokens" });
    expect(findRepetition([ts(0), DOT, S, DOT, S, DOT, S, DOT, S], mini)).toEqual({
      at: 3,
      rule: "tokens",
    });
    // Timestamps between copies make them segments, judged by the word rules instead.
    expect(findRepetition([ts(0), S, ts(1), ts(1), S, ts(2), ts(2), S, ts(3)], mini)).toEqual({
      at: 4,
      rule: "block",
    });
  });

  it("cuts a four-word sequence emitted before", () => {
    const phrase = [GO, FORWARD, TEN, METERS];
    const sampled = [ts(0), ...phrase, THE, DOG, ...phrase];
    expect(findRepetition(sampled, mini)).toBeUndefined(); // last word may still grow
    expect(findRepetition(sampled, mini, { final: true })).toEqual({ at: 7, rule: "ngram" });
    expect(findRepetition([ts(0), ...phrase, THE, ...phrase.slice(0, 3), DOG], mini)).toBe(
      undefined,
    );
  });
});

describe("Whisper transcript assembly", () => {
  const token = (id: number, probability = 0.5): SampledToken => ({
    id,
    probability,
    logprob: Math.log(probability),
  });

  it("times segments by timestamps and shares their span among words by characters", () => {
    const tokens = [
      token(ts(0.4)),
      token(GO, 0.9),
      token(FORWARD, 0.8),
      token(TEN, 0.7),
      token(METERS, 0.6),
      token(DOT, 0.5),
      token(ts(2.3)),
      token(ts(2.3)),
      token(THANK),
      token(YOU),
    ];
    const result = buildTranscript(
      {
        language: "en",
        tokens,
        noSpeechProbability: 0.01,
        avgLogprob: -0.3,
        stopReason: "endoftext",
        temperature: 0,
        decoderSteps: 11,
        promptMs: 0,
      },
      mini,
      3.1,
    );
    expect(result.text).toBe("go forward ten meters. thank you");
    expect(result.segments).toEqual([
      { start: 0.4, end: 2.3, text: "go forward ten meters." },
      // No closing timestamp: the segment ends with the audio.
      { start: 2.3, end: 3.1, text: "thank you" },
    ]);
    // 1.9 s over 2 + 7 + 3 + 7 characters ("meters." keeps its full stop).
    const perChar = 1.9 / 19;
    expect(result.words.map((w) => w.punctuatedWord)).toEqual([
      "go",
      "forward",
      "ten",
      "meters.",
      "thank",
      "you",
    ]);
    expect(result.words[1]?.start).toBeCloseTo(0.4 + 2 * perChar, 3);
    expect(result.words[1]?.end).toBeCloseTo(0.4 + 9 * perChar, 3);
    expect(result.words[3]?.word).toBe("meters");
    expect(result.words[3]?.end).toBeCloseTo(2.3, 9);
    expect(result.words[3]?.confidence).toBeCloseTo((0.6 + 0.5) / 2, 9);
    expect(result.words[5]?.start).toBeCloseTo(2.3 + (0.8 * 5) / 8, 9);
    expect(result.words[5]?.end).toBeCloseTo(3.1, 9);
    expect(result.confidence).toBeCloseTo((0.9 + 0.8 + 0.7 + 0.6 + 0.5 + 0.5 + 0.5) / 7, 10);
    expect(result.likelyNoSpeech).toBe(false);
  });

  it("flags no speech by Whisper's two thresholds together, or a very low log-probability", () => {
    const base = {
      language: "en",
      tokens: [token(ts(0)), token(THANK), token(YOU)],
      stopReason: "endoftext" as const,
      temperature: 0,
      decoderSteps: 4,
      promptMs: 0,
    };
    const verdict = (noSpeechProbability: number, avgLogprob: number) =>
      buildTranscript({ ...base, noSpeechProbability, avgLogprob }, mini, 2).likelyNoSpeech;
    expect(verdict(0.9, -1.1)).toBe(true);
    expect(verdict(0.9, -0.5)).toBe(false);
    expect(verdict(0.3, -1.1)).toBe(false);
    // Just above NO_SPEECH_CONFIDENT (0.1) with a log-probability below −1.2, and no VAD: dropped.
    expect(verdict(0.12, -1.3)).toBe(true);
    expect(verdict(0.08, -1.3)).toBe(false);
  });

  it("never drops on log-probability alone: Whisper's or the VAD's certainty of speech keeps text", () => {
    const vad = (spanProbability: number) => ({
      frames: 50,
      speechFrames: 16,
      meanProbability: 0.3,
      spanProbability,
      speechBursts: [16],
    });
    const drop = (noSpeechProbability: number, avgLogprob: number, span?: number) =>
      noSpeechVerdict({
        noSpeechProbability,
        avgLogprob,
        compressionRatio: 0.5,
        seconds: 1.5,
        ...(span === undefined ? {} : { vad: vad(span) }),
      });
    // "ask not" cut short by a 300-ms endpoint: Whisper is sure of speech, the VAD is not.
    expect(drop(0.0076, -1.28, 0.46)).toEqual({ noSpeech: false, rule: null });
    // The same phrase through the browser demo, with the pause after it (1 page run in 3).
    expect(drop(0.054, -1.63, 0.58)).toEqual({ noSpeech: false, rule: null });
    expect(drop(0.08, -1.35, 0.59)).toEqual({ noSpeech: false, rule: null });
    // The lowest no-speech probability of any no-speech window that decoded to text.
    expect(drop(0.13, -1.5, 0.6)).toEqual({ noSpeech: true, rule: "low-logprob" });
    // A word cut from real speech that Whisper doubts: the VAD is sure.
    expect(drop(0.17, -1.81, 0.87).noSpeech).toBe(false);
    // Music that got past the VAD: neither is sure.
    expect(drop(0.17, -2.66, 0.65)).toEqual({ noSpeech: true, rule: "low-logprob" });
    // Music whose decode ("the") Whisper scored below NO_SPEECH_CONFIDENT: words this unsure
    // do not make it sure (WHISPER_SURE_LOGPROB_FLOOR −2.0); just above the floor they would.
    expect(drop(0.099, -2.72, 0.5)).toEqual({ noSpeech: true, rule: "low-logprob" });
    expect(drop(0.099, -1.95, 0.5)).toEqual({ noSpeech: false, rule: null });
    // Whisper's own rule holds whatever the VAD says.
    expect(drop(0.9, -1.1, 0.95)).toEqual({ noSpeech: true, rule: "whisper" });
    // Offline (no VAD): Whisper's side alone.
    expect(drop(0.01, -1.3).noSpeech).toBe(false);
    expect(drop(0.2, -1.3).noSpeech).toBe(true);
  });
});

/** What the fake decoder saw on one run. */
interface DecoderCall {
  ids: number[];
  useCache: boolean;
  pastLength: number;
  /** Rows of the cross-attention cache fed in (0 on the first run). */
  crossRows: number;
  encoderRows: number;
}

/**
 * The caches a stand-in decoder returns, shaped like the export's: the self-attention cache
 * (`self`, [rows, 6, selfLength, 64]) for every layer, and the cross-attention cache with
 * ENCODER_ROWS rows on a first run, empty on cache runs.
 */
function presentCaches(
  self: Float32Array,
  rows: number,
  selfLength: number,
  useCache: boolean,
): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (let layer = 0; layer < 4; layer++) {
    for (const kind of ["key", "value"]) {
      out[`present.${layer}.decoder.${kind}`] = new Tensor("float32", self, [
        rows,
        6,
        selfLength,
        64,
      ]);
      out[`present.${layer}.encoder.${kind}`] = useCache
        ? new Tensor("float32", new Float32Array(0), [0, 6, 1, 64])
        : new Tensor("float32", new Float32Array(6 * ENCODER_ROWS * 64), [1, 6, ENCODER_ROWS, 64]);
    }
  }
  return out;
}

/**
 * A stand-in for the merged decoder at the ONNX seam: run k puts a logit of 10 on `script[k]`
 * at the last position (nothing for undefined), 0 elsewhere, and returns caches shaped like the
 * real ones: self-attention grows by the input length; cross-attention has ENCODER_ROWS rows on
 * the first run and is empty on cache runs, as in the export.
 */
const ENCODER_ROWS = 7;
function fakeDecoder(
  script: (number | undefined)[],
  position0: (logits: Float32Array) => void = () => {},
): { session: InferenceSession; calls: DecoderCall[] } {
  const calls: DecoderCall[] = [];
  const vocabSize = mini.vocabSize;
  const run = async (feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> => {
    const input = feeds.input_ids;
    const cacheFlag = feeds.use_cache_branch;
    const past = feeds["past_key_values.0.decoder.key"];
    const cross = feeds["past_key_values.0.encoder.key"];
    const states = feeds.encoder_hidden_states;
    if (!input || !cacheFlag || !past || !cross || !states) throw new Error("missing feed");
    const ids = Array.from(input.data as BigInt64Array, Number);
    const useCache = Boolean((cacheFlag.data as ArrayLike<unknown>)[0]);
    const pastLength = past.dims[2] ?? -1;
    calls.push({
      ids,
      useCache,
      pastLength,
      crossRows: cross.dims[2] ?? -1,
      encoderRows: states.dims[1] ?? -1,
    });
    const logits = new Float32Array(ids.length * vocabSize);
    position0(logits.subarray(0, vocabSize));
    const target = script[calls.length - 1];
    if (target !== undefined) logits[(ids.length - 1) * vocabSize + target] = 10;
    const out: Record<string, Tensor> = {
      logits: new Tensor("float32", logits, [1, ids.length, vocabSize]),
    };
    const selfLength = pastLength + ids.length;
    return {
      ...out,
      ...presentCaches(new Float32Array(6 * selfLength * 64), 1, selfLength, useCache),
    };
  };
  return { session: { run } as unknown as InferenceSession, calls };
}

const encoderStates = new Tensor("float32", new Float32Array(ENCODER_ROWS * 384), [
  1,
  ENCODER_ROWS,
  384,
]);
const decodeWith = (script: (number | undefined)[], options: Partial<DecodeOptions> = {}) => {
  const fake = fakeDecoder(script);
  const run = greedyDecode({ decoder: fake.session, tokenizer: mini, rules }, encoderStates, {
    language: "en",
    audioSeconds: 3,
    windowSeconds: 4,
    ...options,
  });
  return run.then((result) => ({ result, calls: fake.calls }));
};

describe("Whisper greedy decoding (scripted decoder)", () => {
  it("prompts once without cache, then feeds one token at a time with the caches", async () => {
    const { result, calls } = await decodeWith([ts(0), GO, FORWARD, ts(1), EOT]);
    expect(result.tokens.map((t) => t.id)).toEqual([ts(0), GO, FORWARD, ts(1)]);
    expect(result.stopReason).toBe("endoftext");
    expect(result.decoderSteps).toBe(5);
    expect(calls[0]).toEqual({
      ids: [11, 12, 15],
      useCache: false,
      pastLength: 0,
      crossRows: 0,
      encoderRows: ENCODER_ROWS,
    });
    // Each later run: the previous token, the self cache grown by one, the first run's cross
    // cache, and a one-row stand-in for the encoder states.
    calls.slice(1).forEach((call, i) => {
      expect(call).toEqual({
        ids: [result.tokens[i]?.id],
        useCache: true,
        pastLength: 3 + i,
        crossRows: ENCODER_ROWS,
        encoderRows: 1,
      });
    });
    // The picked tokens are near-certain under the scripted logits.
    expect(result.tokens.every((t) => t.probability > 0.5)).toBe(true);
    expect(result.avgLogprob).toBeLessThan(0);
    expect(result.avgLogprob).toBeGreaterThan(-0.7);
  });

  it("puts context after <|startofprev|> before the prompt, and counts it against the positions", async () => {
    const { result, calls } = await decodeWith([ts(0), GO, ts(1), EOT], { context: [THE, DOG] });
    expect(calls[0]?.ids).toEqual([17, THE, DOG, 11, 12, 15]);
    expect(calls[1]?.pastLength).toBe(6);
    expect(result.tokens.map((t) => t.id)).toEqual([ts(0), GO, ts(1)]);
  });

  it("favours a keyterm's first token anywhere, and its next token once it has begun", () => {
    const bias = { sequences: [[THANK, YOU], [TEN]], bonus: 3 };
    expect([...favoured([], bias)].sort()).toEqual([TEN, THANK].sort());
    expect([...favoured([GO, THANK], bias)].sort()).toEqual([TEN, THANK, YOU].sort());
    // A finished keyterm favours only first tokens again.
    expect([...favoured([THANK, YOU], bias)].sort()).toEqual([TEN, THANK].sort());
  });

  it("picks a favoured token where the model is unsure, but scores it by the model's own odds", async () => {
    // Step 2 has no scripted winner: every text token scores 0.
    const script = [ts(0), undefined, ts(1), EOT];
    const plain = await decodeWith(script);
    const biased = await decodeWith(script, { bias: { sequences: [[TEN]], bonus: 5 } });
    expect(plain.result.tokens.map((t) => t.id)).toEqual([ts(0), GO, ts(1)]);
    expect(biased.result.tokens.map((t) => t.id)).toEqual([ts(0), TEN, ts(1)]);
    // A scripted winner (logit 10) still beats a favoured token (0 + 5): ts(1) after TEN.
    const ten = biased.result.tokens[1];
    expect(ten?.probability).toBeCloseTo(plain.result.tokens[1]?.probability ?? Number.NaN, 6);
    expect(ten?.probability).toBeLessThan(0.5);
  });

  it("stops at a timestamp near the end of the audio, but not at the opening one", async () => {
    const atEnd = await decodeWith([ts(0), GO, ts(2.6), THE, EOT]);
    expect(atEnd.result.stopReason).toBe("timestamp-at-end");
    expect(atEnd.result.tokens.map((t) => t.id)).toEqual([ts(0), GO, ts(2.6)]);
    expect(atEnd.calls.length).toBe(3);

    const short = await decodeWith([ts(0), GO, ts(0.3), EOT], { audioSeconds: 0.3 });
    expect(short.result.tokens.map((t) => t.id)).toEqual([ts(0), GO, ts(0.3)]);
    expect(short.result.stopReason).toBe("timestamp-at-end");
  });

  it("stops before its next decoder run once its signal is aborted (a voided early final)", async () => {
    const options = { language: "en", audioSeconds: 3, windowSeconds: 4 };
    // Aborted while the prompt run is under way: no token step follows it.
    const abort = new AbortController();
    const during = fakeDecoder([ts(0), GO, FORWARD, ts(1), EOT], () =>
      abort.abort(new Error("speech resumed")),
    );
    const run = greedyDecode({ decoder: during.session, tokenizer: mini, rules }, encoderStates, {
      ...options,
      signal: abort.signal,
    });
    await expect(run).rejects.toThrow("speech resumed");
    expect(during.calls.length).toBe(1);

    // Aborted before it starts (it waited for its turn): no run at all.
    const before = fakeDecoder([ts(0), GO, FORWARD, ts(1), EOT]);
    const early = greedyDecode({ decoder: before.session, tokenizer: mini, rules }, encoderStates, {
      ...options,
      signal: abort.signal,
    });
    await expect(early).rejects.toThrow("speech resumed");
    expect(before.calls.length).toBe(0);
  });

  it("stops past the window", async () => {
    const { result } = await decodeWith([ts(0), GO, ts(4.2), EOT], { audioSeconds: 10 });
    expect(result.stopReason).toBe("past-window");
  });

  it("cuts a repeat and stops", async () => {
    const { result, calls } = await decodeWith([ts(0), THE, THE, THE, GO, FORWARD]);
    expect(result.stopReason).toBe("repetition");
    expect(result.tokens.map((t) => t.id)).toEqual([ts(0), THE]);
    expect(calls.length).toBe(5);
  });

  it("stops at the token cap", async () => {
    const { result, calls } = await decodeWith([ts(0), GO, FORWARD, TEN, METERS], {
      maxTokens: 3,
    });
    expect(result.stopReason).toBe("max-tokens");
    expect(result.tokens.length).toBe(3);
    expect(calls.length).toBe(3);
  });

  it("detects the language from the first position and reads the no-speech probability", async () => {
    // Position 0 favours <|de|>; <|nocaptions|> gets probability 1/2 before the other tokens'
    // mass: e^a = (V − 2) + e^10 makes p = e^a / (e^a + (V − 2) + e^10) = 1/2.
    const noSpeechLogit = Math.log(mini.vocabSize - 2 + Math.exp(10));
    const fake = fakeDecoder([undefined, undefined, ts(0), GO, EOT], (logits) => {
      logits[13] = 10;
      logits[18] = noSpeechLogit;
    });
    const result = await greedyDecode(
      { decoder: fake.session, tokenizer: mini, rules },
      encoderStates,
      { language: "multi", audioSeconds: 3, windowSeconds: 4 },
    );
    expect(result.language).toBe("de");
    expect(result.noSpeechProbability).toBeCloseTo(0.5, 6);
    expect(fake.calls.map((c) => c.ids)).toEqual([[11], [13], [15], [ts(0)], [GO]]);
    expect(fake.calls.map((c) => c.useCache)).toEqual([false, true, true, true, true]);
    expect(result.tokens.map((t) => t.id)).toEqual([ts(0), GO]);
  });
});

/**
 * A stand-in decoder that is a small language model: the logits of each row depend on the tokens
 * that row has sampled, which it keeps in its own self-attention cache (one token id + 1 per
 * position of head 0, 0 for the prompt). A beam whose cache rows were gathered from the wrong
 * parent would therefore read the wrong history. `next` maps a history ("" for none, else ids
 * joined by ",") to logits; anything unlisted scores 0.
 */
function historyDecoder(next: Record<string, Record<number, number>>): {
  session: InferenceSession;
  calls: { rows: number; useCache: boolean; crossRows: number[] }[];
} {
  const calls: { rows: number; useCache: boolean; crossRows: number[] }[] = [];
  const vocabSize = mini.vocabSize;
  const run = async (feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> => {
    const input = feeds.input_ids;
    const past = feeds["past_key_values.0.decoder.key"];
    const cross = feeds["past_key_values.0.encoder.key"];
    const cacheFlag = feeds.use_cache_branch;
    if (!input || !past || !cross || !cacheFlag) throw new Error("missing feed");
    const useCache = Boolean((cacheFlag.data as ArrayLike<unknown>)[0]);
    const [rows = 1, length = 1] = input.dims;
    const ids = Array.from(input.data as BigInt64Array, Number);
    calls.push({ rows, useCache, crossRows: [cross.dims[0] ?? -1, cross.dims[2] ?? -1] });
    const pastLength = past.dims[2] ?? 0;
    const pastData = past.data as Float32Array;
    const selfLength = pastLength + length;
    const present = new Float32Array(rows * 6 * selfLength * 64);
    const logits = new Float32Array(rows * length * vocabSize);
    for (let r = 0; r < rows; r++) {
      const history: number[] = [];
      for (let t = 0; t < pastLength; t++) {
        const stored = pastData[r * 6 * pastLength * 64 + t * 64] ?? 0;
        if (stored > 0) history.push(stored - 1);
        present[r * 6 * selfLength * 64 + t * 64] = stored;
      }
      if (useCache) {
        const id = ids[r] ?? -1;
        history.push(id);
        present[r * 6 * selfLength * 64 + pastLength * 64] = id + 1;
      }
      const scores = next[history.join(",")] ?? {};
      const row = logits.subarray(
        (r * length + length - 1) * vocabSize,
        (r * length + length) * vocabSize,
      );
      for (const [id, logit] of Object.entries(scores)) row[Number(id)] = logit;
    }
    const out: Record<string, Tensor> = {
      logits: new Tensor("float32", logits, [rows, length, vocabSize]),
    };
    return { ...out, ...presentCaches(present, rows, selfLength, useCache) };
  };
  return { session: { run } as unknown as InferenceSession, calls };
}

/**
 * Greedy takes GO (logit 2 against TEN's 1.6) and then finds nothing likely; TEN leads to a
 * near-certain "ten meters". 12 text tokens tie after GO, so that path averages far lower.
 */
const GARDEN_PATH: Record<string, Record<number, number>> = {
  "": { [ts(0)]: 10 },
  [`${ts(0)}`]: { [GO]: 2, [TEN]: 1.6 },
  [`${ts(0)},${TEN}`]: { [METERS]: 10 },
  [`${ts(0)},${TEN},${METERS}`]: { [ts(1)]: 10 },
  [`${ts(0)},${TEN},${METERS},${ts(1)}`]: { [EOT]: 10 },
  [`${ts(0)},${GO}`]: { [ts(1)]: 1 },
  [`${ts(0)},${GO},${ts(1)}`]: { [EOT]: 10 },
};

describe("Whisper beam search (scripted decoder)", () => {
  const decode = (beamSize: number | undefined) => {
    const fake = historyDecoder(GARDEN_PATH);
    return greedyDecode({ decoder: fake.session, tokenizer: mini, rules }, encoderStates, {
      language: "en",
      audioSeconds: 3,
      windowSeconds: 4,
      ...(beamSize === undefined ? {} : { beamSize }),
    }).then((result) => ({ result, calls: fake.calls }));
  };

  it("finds the likelier sequence that greedy decoding walks past", async () => {
    const greedy = await decode(undefined);
    expect(greedy.result.tokens.map((t) => t.id)).toEqual([ts(0), GO, ts(1)]);
    const beams = await decode(3);
    expect(beams.result.tokens.map((t) => t.id)).toEqual([ts(0), TEN, METERS, ts(1)]);
    expect(beams.result.stopReason).toBe("endoftext");
    // Its scores are the model's own: TEN's probability at its step, and the average per token
    // (EOT included) of the path's log-probabilities.
    const ten = beams.result.tokens[1];
    const sum = beams.result.tokens.reduce((total, t) => total + t.logprob, 0);
    expect(ten?.probability).toBeLessThan(0.5);
    expect(beams.result.avgLogprob).toBeLessThan(sum / 5 + 0.01);
    expect(beams.result.avgLogprob).toBeGreaterThan(greedy.result.avgLogprob);
    expect(beams.result.avgLogprob).toBeGreaterThan(-1);
  });

  it("runs the beams as rows of one decoder run, all rows on one cross cache row", async () => {
    const { calls, result } = await decode(3);
    expect(calls[0]).toEqual({ rows: 1, useCache: false, crossRows: [1, 0] });
    for (const call of calls.slice(1)) {
      expect(call.useCache).toBe(true);
      expect(call.rows).toBeGreaterThan(0);
      expect(call.rows).toBeLessThanOrEqual(3);
      expect(call.crossRows).toEqual([1, ENCODER_ROWS]);
    }
    // One run per position after the prompt, whatever the number of beams; and it stops once
    // "ten meters" has ended and beats every live beam, not when three sequences have ended
    // (13 runs here): the prompt, then <|0.00|>, TEN, METERS, <|1.00|>.
    expect(result.decoderSteps).toBe(calls.length);
    expect(calls.some((call) => call.rows > 1)).toBe(true);
    expect(calls.length).toBe(5);
  });

  it("shares one prompt run between a window's greedy decode and its beams", async () => {
    const alone = { greedy: await decode(undefined), beams: await decode(3) };
    const fake = historyDecoder(GARDEN_PATH);
    const model = { decoder: fake.session, tokenizer: mini, rules };
    const options = { language: "en", audioSeconds: 3, windowSeconds: 4 };
    const prompt = new SharedPrompt();
    const greedy = await greedyDecode(model, encoderStates, options, prompt);
    const runsAfterGreedy = fake.calls.length;
    const beams = await greedyDecode(model, encoderStates, { ...options, beamSize: 3 }, prompt);
    // The same results as each decode running its own prompt (the greedy decode's logit rules
    // edited its copy of the prompt's logits, not the one the beams start from) …
    const { promptMs: _greedyMs, ...greedyResult } = greedy;
    const { promptMs: _aloneMs, ...aloneResult } = alone.greedy.result;
    expect(greedyResult).toEqual(aloneResult);
    expect(beams.tokens).toEqual(alone.beams.result.tokens);
    expect(beams.avgLogprob).toBe(alone.beams.result.avgLogprob);
    expect(beams.noSpeechProbability).toBe(alone.beams.result.noSpeechProbability);
    // … for one run fewer: only the first decode ran the prompt (a run without the cache).
    expect(fake.calls.filter((call) => !call.useCache)).toHaveLength(1);
    expect(fake.calls.length - runsAfterGreedy).toBe(alone.beams.calls.length - 1);
    expect(beams.decoderSteps).toBe(alone.beams.result.decoderSteps - 1);
    // Each decode gets logits of its own to edit: a later one starts from the model's.
    const ids = [0, 1, 2];
    const first = await prompt.run(model, ids, encoderStates, [0, 2]);
    const pristine = Array.from(first.step.rows[1] ?? []);
    first.step.rows[1]?.fill(-1);
    const second = await prompt.run(model, ids, encoderStates, [0, 2]);
    expect(second.ran).toBe(false);
    expect(Array.from(second.step.rows[1] ?? [])).toEqual(pristine);
    // Other audio (other encoder states) is not served the window's prompt.
    const other = new Tensor("float32", new Float32Array(encoderStates.data.length), [
      ...encoderStates.dims,
    ]);
    await greedyDecode(model, other, options, prompt);
    expect(fake.calls.filter((call) => !call.useCache)).toHaveLength(3);
  });

  it("is greedy decoding with one beam", async () => {
    const one = await decode(1);
    expect(one.result.tokens.map((t) => t.id)).toEqual([ts(0), GO, ts(1)]);
    expect(one.calls.every((call) => call.rows === 1)).toBe(true);
  });
});

describe("Whisper windows", () => {
  it("pads an utterance by 1 s to an even frame count, up to 30 s", () => {
    expect(windowFrames(16_000, true)).toBe(200);
    expect(windowFrames(16_001, true)).toBe(202);
    expect(windowFrames(29.5 * 16_000, true)).toBe(3000);
    expect(windowFrames(16_000, false)).toBe(3000);
  });
});

/*
 * End to end with the stock 8-bit files (../shared/models/whisper-tiny through WHISPER_FILES).
 * The stock encoder takes only full 30-s windows.
 */
describe("Whisper tiny end to end (stock files, 30-s window)", () => {
  let model: WhisperModel;

  beforeAll(async () => {
    const encoder = await createSession(await whisperFile("onnx/encoder_model_quantized.onnx"));
    const decoder = await createSession(
      await whisperFile("onnx/decoder_model_merged_quantized.onnx"),
    );
    model = createWhisperModel({
      encoder,
      decoder,
      vocab: await whisperJson<Vocab>("vocab.json"),
      addedTokens: await whisperJson<AddedTokens>("added_tokens.json"),
      generationConfig: await whisperJson<GenerationConfig>("generation_config.json"),
      variableLength: false,
    });
  }, 180_000);

  const clips = [
    { file: "psx_goforward.wav", reference: "go forward ten meters" },
    { file: "sb_spk1_snt1.wav", reference: "the child almost hurt the small dog" },
    { file: "sb_spk1_snt3.wav", reference: "at that high level the air is pure" },
  ];

  it("transcribes short clips with WER ≤ 0.15 and sane timings", async () => {
    let errors = 0;
    let words = 0;
    for (const clip of clips) {
      const audio = pcm16ToFloat((await wavFixture(clip.file)).pcm);
      const seconds = audio.length / 16_000;
      const result = await transcribe(model, audio, { language: "en" });
      const score = wordErrorRate(clip.reference, result.text);
      errors += score.errors;
      words += score.referenceWords;

      expect(result.language).toBe("en");
      expect(result.likelyNoSpeech).toBe(false);
      expect(result.segments.length).toBeGreaterThan(0);
      let previousEnd = 0;
      for (const word of result.words) {
        expect(word.start).toBeGreaterThanOrEqual(previousEnd - 1e-9);
        expect(word.end).toBeGreaterThanOrEqual(word.start);
        expect(word.end).toBeLessThanOrEqual(seconds + 1e-9);
        expect(word.confidence).toBeGreaterThan(0);
        expect(word.confidence).toBeLessThanOrEqual(1);
        previousEnd = word.end;
      }
      expect(result.confidence).toBeGreaterThan(0.3);
      expect(result.tokens.every((t) => t.probability > 0 && t.probability <= 1)).toBe(true);
    }
    expect(words).toBe(19);
    expect(errors / words).toBeLessThanOrEqual(0.15);
  }, 300_000);

  it("detects English when asked for 'multi'", async () => {
    const audio = pcm16ToFloat((await wavFixture("psx_goforward.wav")).pcm);
    const result = await transcribe(model, audio, { language: "multi" });
    expect(result.language).toBe("en");
    expect(wordErrorRate("go forward ten meters", result.text).errors).toBeLessThanOrEqual(1);
  }, 120_000);

  it("flags digital silence as no speech", async () => {
    const audio = pcm16ToFloat((await wavFixture("ns_generated_silence_5s.wav")).pcm);
    const result = await transcribe(model, audio, { language: "en" });
    expect(result.noSpeechProbability).toBeGreaterThan(0.6);
    expect(result.likelyNoSpeech).toBe(true);
  }, 120_000);
});
