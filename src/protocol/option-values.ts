/**
 * How each single value of a `/v1/listen` option is read: one parser per kind of value, returning
 * the typed value or the refusal's text (options.ts prefixes the option's name). The values'
 * ranges and defaults are in option-schema.ts; which option uses which parser, in option-table.ts.
 */

import { LANGUAGE_DETECT, normalizeLanguage } from "./languages";
import { ACCEPTED_MODEL_FORMS, DEFAULT_MODEL, isAcceptedModel } from "./models";
import {
  DEFAULT_ENDPOINTING_MS,
  ENDPOINTING_MAX_MS,
  ENDPOINTING_MIN_MS,
  type ListenOptions,
  SAMPLE_RATE_MAX_HZ,
  SAMPLE_RATE_MIN_HZ,
  type StreamEncoding,
  UTTERANCE_END_MAX_MS,
  UTTERANCE_END_MIN_MS,
} from "./option-schema";
import { quote } from "./quote";

export type Step<T> = { ok: true; value: T } | { ok: false; message: string };

export const ok = <T>(value: T): Step<T> => ({ ok: true, value });
export const fail = <T>(message: string): Step<T> => ({ ok: false, message });

/**
 * A non-negative decimal integer with no sign, fraction, exponent, unit or whitespace: "16000",
 * never "16000.5", "16k", "1e4", " 16000" or "+16000". Number() alone would accept most of those.
 * At most 9 digits, far past every range here, so the result is always a safe integer.
 */
function parseDecimalInteger(value: string): number | null {
  return /^[0-9]{1,9}$/.test(value) ? Number(value) : null;
}

/** Exactly "true" or "false": what the SDK sends (it stringifies JS booleans into the URL). */
export function parseBoolean(value: string): Step<boolean> {
  if (value === "true") return ok(true);
  if (value === "false") return ok(false);
  return fail(`must be "true" or "false", got ${quote(value)}`);
}

export function parseEncoding(value: string): Step<StreamEncoding> {
  if (
    value === "linear16" ||
    value === "linear32" ||
    value === "mulaw" ||
    value === "alaw" ||
    value === "ogg-opus"
  ) {
    return ok(value);
  }
  const containers =
    "Ogg or WebM Opus (MediaRecorder's) is decoded when sent with no encoding and no sample_rate " +
    "(detected from the stream), or Ogg Opus with encoding=ogg-opus";
  if (value === "opus") {
    return fail(`"opus" (raw Opus packets, no container) is not supported: ${containers}`);
  }
  return fail(
    `${quote(value)} is not supported: Earshot takes raw encoding=linear16 (16-bit signed ` +
      "little-endian PCM), linear32 (32-bit float little-endian PCM), mulaw or alaw (G.711); " +
      `${containers}; decode other codecs such as flac to raw PCM before sending`,
  );
}

export function parseSampleRate(value: string): Step<number> {
  const hz = parseDecimalInteger(value);
  if (hz === null || hz < SAMPLE_RATE_MIN_HZ || hz > SAMPLE_RATE_MAX_HZ) {
    return fail(
      `must be a whole number of Hz from ${SAMPLE_RATE_MIN_HZ} to ${SAMPLE_RATE_MAX_HZ} ` +
        `(e.g. 16000), got ${quote(value)}`,
    );
  }
  return ok(hz);
}

export function parseChannels(value: string): Step<1> {
  const n = parseDecimalInteger(value);
  if (n === null) return fail(`must be the integer 1, got ${quote(value)}`);
  if (n !== 1) {
    return fail(
      `must be 1, got ${n}: Earshot transcribes one mono stream; downmix to mono before sending`,
    );
  }
  return ok(1);
}

export function parseEndpointing(value: string): Step<number | false> {
  if (value === "false") return ok(false);
  // Deepgram documents endpointing as "enabled by default"; an explicit "true" asks for that.
  if (value === "true") return ok(DEFAULT_ENDPOINTING_MS);
  const ms = parseDecimalInteger(value);
  if (ms === null || ms < ENDPOINTING_MIN_MS || ms > ENDPOINTING_MAX_MS) {
    return fail(
      `must be "false", "true" (${DEFAULT_ENDPOINTING_MS} ms) or a whole number of ` +
        `milliseconds from ${ENDPOINTING_MIN_MS} to ${ENDPOINTING_MAX_MS}, got ${quote(value)}`,
    );
  }
  return ok(ms);
}

export function parseUtteranceEnd(value: string): Step<number> {
  const ms = parseDecimalInteger(value);
  if (ms === null || ms < UTTERANCE_END_MIN_MS || ms > UTTERANCE_END_MAX_MS) {
    return fail(
      `must be a whole number of milliseconds from ${UTTERANCE_END_MIN_MS} to ` +
        `${UTTERANCE_END_MAX_MS}, got ${quote(value)}`,
    );
  }
  return ok(ms);
}

export function parseLanguage(value: string): Step<string> {
  const code = normalizeLanguage(value);
  if (code === null) {
    return fail(
      `${quote(value)} is not a language Whisper knows: use one of its 99 language codes ` +
        `(e.g. en, es, fr, de, zh, ja; a region such as en-US is accepted and ignored) ` +
        `or "${LANGUAGE_DETECT}" to detect it`,
    );
  }
  return ok(code);
}

export function parseModel(value: string): Step<ListenOptions["model"]> {
  if (!isAcceptedModel(value)) {
    return fail(
      `${quote(value)} is not a model Earshot accepts; every accepted name runs whisper-tiny: ` +
        ACCEPTED_MODEL_FORMS,
    );
  }
  return ok({ requested: value, name: DEFAULT_MODEL });
}
