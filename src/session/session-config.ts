/**
 * What a live session is given and what it reports (live-session.ts), and how its listen options
 * become the VAD's and the transcript's settings.
 */

import { LANGUAGE_DETECT } from "../protocol/languages";
import type { ListenOptions } from "../protocol/option-schema";
import { withNumerals } from "../stt/numerals";
import { withProfanityFiltered } from "../stt/profanity";
import type { Transcript } from "../stt/transcriber";
import {
  DEFAULT_VAD_OPTIONS,
  PHRASE_PAUSE_FRAMES,
  VAD_FRAME_MS,
  type VadOptions,
} from "../vad/vad-machine";
import { MAX_UTTERANCE_SECONDS, MAX_UTTERANCE_SOFT_SECONDS } from "./caps";
import type { LatencySummary } from "./final-latency";

export interface LiveSessionConfig {
  sessionId: string;
  accountId: string;
  /** The API key the session was opened with (operator-end.ts ends a revoked key's sessions). */
  keyId: string;
  options: ListenOptions;
  createdAt: number;
  idleTimeoutMs: number;
  /** How long a resumable session waits for its client after a drop (RESUME_WINDOW_MS). */
  resumeWindowMs: number;
  maxSessionSeconds: number;
  /** Utterances this long are cut at their next quiet frame (MAX_UTTERANCE_SOFT_SECONDS). */
  softCutSeconds: number;
}

/** How a session ended, for its hooks. */
export interface SessionEnding {
  closeCode: number;
  closeReason: string;
  /** Finals sent (or kept for a resume), empty ones included. */
  finals: number;
  /** End of speech → final over the session's utterances (final-latency.ts). */
  finalLatency: LatencySummary;
}

export interface LiveSessionHooks {
  /** Called once, after the session has ended and its last final is stored. */
  ended(ending: SessionEnding): void;
}

/**
 * The least silence that ends an utterance, whatever `endpointing` asks: a pause between phrases
 * (PHRASE_PAUSE_FRAMES, 256 ms). Deepgram's default of 10 ms suits a model that streams words as
 * it hears them; Earshot's final is Whisper reading the utterance alone, and cut at a gap inside
 * a phrase it guesses the words on either side without their phrase ("is not" for "ask not",
 * "this small dog" for "the small dog"). Accuracy suite, errors in 206 words at endpointing=10:
 * docs/accuracy.md. A client that wants its final sooner sends Finalize, which this never delays.
 */
export const MIN_ENDPOINTING_MS = PHRASE_PAUSE_FRAMES * VAD_FRAME_MS;

export function vadOptionsFor(options: ListenOptions): VadOptions {
  const { endpointingMs } = options;
  return {
    ...DEFAULT_VAD_OPTIONS,
    minSilenceMs: endpointingMs === false ? false : Math.max(endpointingMs, MIN_ENDPOINTING_MS),
    utteranceEndMs: options.utteranceEndMs,
  };
}

/**
 * How the session's transcripts are written before they are sent: numbers as digits
 * (src/stt/numerals.ts; Deepgram applies numerals with smart_format too), then profanity masked
 * (src/stt/profanity.ts). English only: both read English words ("multi" mostly hears English,
 * and other languages' words never match).
 */
export function transcriptFormat(options: ListenOptions): (transcript: Transcript) => Transcript {
  const english = options.language === "en" || options.language === LANGUAGE_DETECT;
  const numerals = english && (options.numerals || options.smartFormat);
  const profanity = english && options.profanityFilter;
  return (transcript) => {
    const written = numerals ? withNumerals(transcript) : transcript;
    return profanity ? withProfanityFiltered(written) : written;
  };
}

/** A positive whole number of ms from a var, or the default. */
export function msVar(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : fallback;
}

/**
 * EARSHOT_SOFT_CUT_SECONDS: a whole number of seconds from 1 to MAX_UTTERANCE_SECONDS after which an
 * utterance is cut at its next quiet frame; anything else (unset included) is the default,
 * MAX_UTTERANCE_SOFT_SECONDS.
 */
export function softCutVar(value: string | undefined): number {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed >= 1 && parsed <= MAX_UTTERANCE_SECONDS
    ? parsed
    : MAX_UTTERANCE_SOFT_SECONDS;
}
