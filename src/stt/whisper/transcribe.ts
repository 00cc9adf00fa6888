/**
 * One utterance in, one transcript out: log-mel features → encoder → greedy decoding →
 * segments and words. The model sessions are shared by every session of the isolate and hold no
 * per-call state; everything per call lives in the call.
 *
 * Window: the utterance plus PAD_SECONDS of silence when the encoder takes variable lengths (the
 * prepared encoder: any even number of frames ≤ 3000), else the full 30 s (the stock encoder
 * adds a fixed [1500, 384] positional table, so it only accepts 3000 frames). The padded window
 * was as accurate as the full one on the dev clips (WHISPER-NOTES.md) and several times cheaper.
 */
import { Tensor } from "onnxruntime-web/wasm";
import { joinSamples } from "../../audio/samples.ts";
import { runExclusive } from "../../runtime/inference-lock.ts";
import { type Continuation, shiftTimestamps } from "./continuation.ts";
import { greedyDecode } from "./decode.ts";
import type { SampledToken } from "./decode-types.ts";
import { beforeRun, runControl } from "./decoder-run.ts";
import type { TokenBias } from "./keyterm-bias.ts";
import { HOP_LENGTH, logMelSpectrogram, MAX_FRAMES, N_MELS, WHISPER_SAMPLE_RATE } from "./mel.ts";
import type { WhisperModel } from "./model.ts";
import {
  type Attempt,
  BEAM_BELOW_LOGPROB,
  BEAM_MAX_AUDIO_SECONDS,
  FALLBACK_MAX_AUDIO_SECONDS,
  FALLBACK_TEMPERATURES,
  looped,
  needsFallback,
} from "./retry-policy.ts";
import { SharedPrompt } from "./shared-prompt.ts";
import { LOGPROB_THRESHOLD } from "./speech-evidence.ts";
import { buildTranscript, compressionRatio, type Transcript } from "./transcript.ts";

/**
 * Isolate-wide counts of decodes, of those that fell back, and of beam searches run (read by the
 * accuracy suite).
 */
export const decodeCounters = { decodes: 0, fallbacks: 0, retries: 0, improved: 0, beams: 0 };

/** Silence appended to an utterance before features: 1 s × 16 000 = 16 000 samples. */
export const PAD_SECONDS = 1;
const FRAMES_PER_SECOND = WHISPER_SAMPLE_RATE / HOP_LENGTH;

/**
 * Encoder frames for `samples` of audio: the audio plus PAD_SECONDS, rounded up to an even count
 * (the encoder's stride-2 convolution halves it), at most MAX_FRAMES; MAX_FRAMES when the encoder
 * only takes full windows.
 */
export function windowFrames(samples: number, variableLength: boolean): number {
  if (!variableLength) return MAX_FRAMES;
  const frames = Math.ceil((samples + PAD_SECONDS * WHISPER_SAMPLE_RATE) / HOP_LENGTH);
  return Math.min(MAX_FRAMES, frames + (frames % 2));
}

export interface TranscribeOptions {
  /** Language code, or "multi" to detect it. */
  language: string;
  /**
   * Allow the temperature fallback (default true). Interims pass false: a preview is replaced a
   * second later anyway, and retries would delay the finals queued behind it.
   */
  fallback?: boolean;
  /** Force the full 30-s window even with a variable-length encoder (for comparisons). */
  fullWindow?: boolean;
  /**
   * Abandons the transcription (throwing the signal's reason) before the encoder and before each
   * decoder step: an early final that speech made useless stops costing the isolate.
   */
  signal?: AbortSignal;
  /**
   * Awaited before every model run, the encoder's and each decoder run (decoder-run.ts
   * `beforeRun` says why): a session passes a turn of the event loop, so its socket and VAD go on
   * while it decodes, and `signal` can be aborted between runs. Absent (Node scripts): none.
   */
  yieldTurn?: () => Promise<void>;
  /**
   * Text tokens read before the audio (decode-types.ts DecodeOptions.context): keyterms, prior
   * text.
   */
  context?: readonly number[];
  /** Keyterm token sequences to favour (keyterm-bias.ts TokenBias). */
  bias?: TokenBias;
  /**
   * Decode `audio` as the continuation of the previous utterance (continuation.ts): the window
   * opens with its audio, the decoder reads its tokens first. The transcript covers `audio` only,
   * timed from its start. Whisper's no-speech probability at the window's start is the
   * context's, so the utterance's own is measured alone where the no-speech decision needs it
   * (average log-probability below LOGPROB_THRESHOLD), and null elsewhere. Ignored with "multi".
   */
  continueFrom?: Continuation;
  /**
   * Beams for a second temperature-0 decode of audio up to BEAM_MAX_AUDIO_SECONDS whose greedy
   * decode averaged below BEAM_BELOW_LOGPROB (beam-search.ts beamSearch); the beams' result
   * replaces the greedy one. 1 or absent: greedy only. Fallback retries at higher temperatures
   * sample, as Whisper's.
   */
  beamSize?: number;
  /**
   * Lengths of the bursts of speech the VAD heard in the audio (speech-evidence.ts VadEvidence): let
   * the repetition guard keep a word said twice (repetition.ts).
   */
  speechBursts?: readonly number[];
}

export interface TranscribeStats {
  frames: number;
  /** Wall-clock milliseconds. In workerd the clock only advances across I/O, so these read 0. */
  melMs: number;
  encoderMs: number;
  decoderMs: number;
  /** Part of decoderMs spent on the prompt (see DecodeResult.promptMs). */
  promptMs: number;
  decoderSteps: number;
  stopReason: string;
  /** Decodes run: 1, or more when the temperature fallback retried. */
  attempts: number;
  /** Temperature of the decode kept. */
  temperature: number;
}

/**
 * Transcribes 16 kHz mono float audio. Audio beyond the 30-s window is not transcribed: the
 * utterance segmenter keeps utterances shorter than that.
 */
export async function transcribe(
  model: WhisperModel,
  audio: Float32Array,
  options: TranscribeOptions,
): Promise<Transcript & { stats: TranscribeStats }> {
  const before = options.language === "multi" ? undefined : options.continueFrom;
  const window = before ? joinSamples(before.audio, audio) : audio;
  const offsetSeconds = before ? before.audio.length / WHISPER_SAMPLE_RATE : 0;
  const frames = windowFrames(window.length, model.variableLength && !options.fullWindow);
  const windowSeconds = frames / FRAMES_PER_SECOND;
  const audioSeconds = Math.min(window.length / WHISPER_SAMPLE_RATE, windowSeconds);
  const utteranceSeconds = audioSeconds - offsetSeconds;

  let clock = performance.now();
  const features = logMelSpectrogram(window, frames);
  const melMs = performance.now() - clock;

  await beforeRun(options);
  clock = performance.now();
  const states = await encode(model, features, frames);
  const encoderMs = performance.now() - clock;

  clock = performance.now();
  let best: Attempt | undefined;
  let attempts = 0;
  // Every decode below starts with the same prompt over the same states: it runs once.
  const prompt = new SharedPrompt();
  const temperatures =
    options.fallback !== false && utteranceSeconds <= FALLBACK_MAX_AUDIO_SECONDS
      ? FALLBACK_TEMPERATURES
      : FALLBACK_TEMPERATURES.slice(0, 1);
  for (const [i, temperature] of temperatures.entries()) {
    const decodeOptions = {
      language: options.language,
      audioSeconds,
      windowSeconds,
      temperature,
      seed: i,
      ...runControl(options),
      ...(options.context ? { context: options.context } : {}),
      ...(before ? { forced: before.tokens } : {}),
      ...(options.bias ? { bias: options.bias } : {}),
      ...(options.speechBursts === undefined ? {} : { speechBursts: options.speechBursts }),
    };
    let result = await greedyDecode(model, states, decodeOptions, prompt);
    if (
      temperature === 0 &&
      // The window's length (a continuation's context included) bounds the beams' cost.
      audioSeconds <= BEAM_MAX_AUDIO_SECONDS &&
      (options.beamSize ?? 1) > 1 &&
      result.avgLogprob < BEAM_BELOW_LOGPROB
    ) {
      decodeCounters.beams++;
      const beams = { ...decodeOptions, beamSize: options.beamSize };
      result = await greedyDecode(model, states, beams, prompt);
    }
    attempts++;
    const text = model.tokenizer.decode(
      result.tokens.filter((t) => model.tokenizer.isText(t.id)).map((t) => t.id),
    );
    const attempt = { result, ratio: await compressionRatio(text.trim()) };
    const bad = needsFallback(attempt);
    // A retry replaces the greedy decode only if it passes Whisper's checks, or if the greedy
    // one looped and the retry did not: a sampled decode that merely stops early also scores a
    // higher average (it drops the hard words), so a better average alone is not enough.
    if (!best || !bad || (looped(best) && !looped(attempt))) best = attempt;
    if (!bad) break;
  }
  const decoderMs = performance.now() - clock;
  if (!best) throw new Error("no decoding attempt");
  decodeCounters.decodes++;
  if (attempts > 1) {
    decodeCounters.fallbacks++;
    decodeCounters.retries += attempts - 1;
    if (best.result.temperature > 0) decodeCounters.improved++;
  }
  const { result, ratio } = best;
  // A continued decode is timed on the window: moved back onto the utterance.
  const own = before
    ? {
        ...result,
        tokens: shiftTimestamps(
          result.tokens.map((t) => t.id),
          offsetSeconds,
          model.tokenizer,
        ).map((id, i) => ({ ...(result.tokens[i] as SampledToken), id })),
      }
    : result;
  // The window's no-speech probability is the context's: the decision reads this utterance's
  // own, measured alone, where it can decide (speech-evidence.ts: below LOGPROB_THRESHOLD).
  const noSpeech =
    before === undefined
      ? result.noSpeechProbability
      : result.avgLogprob < LOGPROB_THRESHOLD && own.tokens.length > 0
        ? await ownNoSpeechProbability(model, audio, options)
        : null;
  return {
    ...buildTranscript(own, model.tokenizer, utteranceSeconds, ratio, noSpeech),
    stats: {
      frames,
      melMs,
      encoderMs,
      decoderMs,
      promptMs: result.promptMs,
      decoderSteps: result.decoderSteps,
      stopReason: result.stopReason,
      attempts,
      temperature: result.temperature,
    },
  };
}

/**
 * Whisper's no-speech probability of `audio` alone (an encoder pass and the prompt run): for a
 * continued decode, whose own window opens with the previous utterance's speech.
 */
async function ownNoSpeechProbability(
  model: WhisperModel,
  audio: Float32Array,
  options: TranscribeOptions,
): Promise<number> {
  const frames = windowFrames(audio.length, model.variableLength && !options.fullWindow);
  await beforeRun(options);
  const states = await encode(model, logMelSpectrogram(audio, frames), frames);
  const windowSeconds = frames / FRAMES_PER_SECOND;
  const probe = await greedyDecode(model, states, {
    ...runControl(options),
    language: options.language,
    audioSeconds: Math.min(audio.length / WHISPER_SAMPLE_RATE, windowSeconds),
    windowSeconds,
    maxTokens: 0,
  });
  return probe.noSpeechProbability;
}

/** The encoder's `last_hidden_state` [1, frames / 2, 384] for log-mel `features`. */
async function encode(model: WhisperModel, features: Float32Array, frames: number) {
  const input = new Tensor("float32", features, [1, N_MELS, frames]);
  const encoded = await runExclusive(
    () => model.encoder.run({ input_features: input }, ["last_hidden_state"]),
    true,
  );
  const states = encoded.last_hidden_state;
  if (!(states instanceof Tensor)) throw new Error("Whisper encoder returned no last_hidden_state");
  return states;
}
