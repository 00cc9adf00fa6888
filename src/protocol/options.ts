/**
 * The query options of `GET /v1/listen`, validated into one typed object before the upgrade.
 *
 * Earshot honours the subset of Deepgram's live options that a Whisper-tiny pipeline can mean
 * honestly, and refuses everything else by name (HTTP 400 from the route), so a client never
 * believes an option took effect when it did not. Sources for Deepgram's rules are cited next to
 * each option; where Deepgram is silent the choice is Earshot's and says why.
 */

import { LANGUAGE_DETECT, normalizeLanguage } from "./languages";
import { ACCEPTED_MODEL_FORMS, DEFAULT_MODEL, isAcceptedModel } from "./models";
import { bounded, quote } from "./quote";
import { parseResume, RESUME_PARAMS, type ResumeRequest } from "./resume-params";

/** Deepgram's raw encodings that Earshot decodes (src/audio/pcm-decoder.ts). */
export type Encoding = "linear16" | "linear32" | "mulaw" | "alaw";

export interface ListenOptions {
  encoding: Encoding;
  /** Hz, integer 8000..48000; the session resamples to Whisper's 16 kHz. */
  sampleRate: number;
  /**
   * Neither `encoding` nor `sample_rate` was given: the stream's first bytes decide between a
   * container (WAV, Ogg, WebM) and the raw default (src/audio/audio-format.ts).
   */
  detectContainer: boolean;
  channels: 1;
  interimResults: boolean;
  /** ms of trailing silence that ends an utterance; false = never by silence (Finalize only). */
  endpointingMs: number | false;
  /** ms gap after the last final word before `UtteranceEnd`; null when not requested. */
  utteranceEndMs: number | null;
  vadEvents: boolean;
  /** Accepted for compatibility; Whisper punctuates regardless. */
  punctuate: boolean;
  /**
   * Whisper already writes cased, punctuated text; as on Deepgram, smart formatting includes
   * numerals (spoken numbers as digits, src/stt/numerals.ts).
   */
  smartFormat: boolean;
  /** Spoken numbers as digits (English; src/stt/numerals.ts). */
  numerals: boolean;
  /** One of WHISPER_LANGUAGES, or "multi" (let Whisper detect the language). */
  language: string;
  /** What the client asked for, and what actually runs (reported in Metadata). */
  model: { requested: string; name: "whisper-tiny" };
  /**
   * Earshot extension: the session survives a dropped connection for RESUME_WINDOW_MS and can be
   * resumed (README "Resumable sessions"). Off by default, so Deepgram clients see Deepgram's
   * behaviour: their SDK reconnects into a new session, and an old one waiting would hold a slot.
   */
  resumable: boolean;
  /**
   * Deepgram's `keyterm` (Nova-3), in the order given: words and phrases whose tokens the decoder
   * favours (KEYTERM_BONUS in src/stt/whisper-transcriber.ts; the README's "Keyterms").
   */
  keyterms: string[];
  /**
   * Deepgram's `keywords` (Nova-2: `word:intensifier`), words only, in the order given: favoured
   * like keyterms, every accepted intensifier (> 0) alike.
   */
  keywords: string[];
}

export type OptionsResult =
  | {
      ok: true;
      options: ListenOptions;
      /** The options the query named explicitly (a resume's must equal the session's). */
      given: ListenOptionName[];
      resume: ResumeRequest | null;
    }
  | { ok: false; option: string; message: string };

/**
 * Earshot's default `endpointing`, in ms of trailing silence. Deepgram's default is 10 ms
 * (developers.deepgram.com/docs/endpointing: "enabled by default and set to 10 milliseconds"),
 * tuned for a model that streams words as they are heard. Whisper transcribes whole segments and
 * guesses badly on fragments, so ending an utterance at every 10 ms breath would cut phrases in
 * half. Deepgram's own guide recommends 300–500 ms "for conversations where speakers pause
 * mid-thought" (docs/understand-endpointing-interim-results); Earshot takes the top of that range:
 * 500 ms ≈ 15.6 VAD frames of 32 ms, i.e. the segmenter waits 16 frames (512 ms).
 */
export const DEFAULT_ENDPOINTING_MS = 500;

/**
 * Valid `endpointing` range, ms. Deepgram documents no bounds; 10 ms is its own default so it must
 * be accepted. A value below one VAD frame (512 samples at 16 kHz = 32 ms) still means one frame:
 * the VAD cannot observe silence at a finer grain. Above 10 s, the idle timeout (10 s, as Deepgram)
 * and Whisper's 30-s window make a longer wait meaningless; use `endpointing=false` instead.
 */
export const ENDPOINTING_MIN_MS = 10;
export const ENDPOINTING_MAX_MS = 10_000;
/**
 * One Silero frame: 512 samples ÷ 16 000 Hz = 32 ms, the granularity at which endpointing can act
 * (VAD_FRAME_SAMPLES in src/vad/silero.ts; not imported so the stateless Worker's option parsing
 * does not pull in the ONNX runtime; a test keeps the two in step).
 */
export const VAD_FRAME_MS = 32;

/**
 * `utterance_end_ms` range. Deepgram's docs (docs/utterance-end) use 1000 as the smallest value
 * and explain it relies on interim results, which arrive about once a second, so a shorter gap
 * cannot be measured. The cap matches ENDPOINTING_MAX_MS for the same reason.
 */
export const UTTERANCE_END_MIN_MS = 1000;
export const UTTERANCE_END_MAX_MS = 10_000;

/**
 * Caps on `keyterm` and `keywords` together. Every term's first token is favoured at every decoder
 * step (in up to three spellings), so every term is one more chance to replace a word that was
 * right, and its tokens are checked against the text so far at every step. 20 terms of a word or
 * two is what a voice application names (its product, its people, its jargon); 200 UTF-8 bytes
 * bound the tokens at 200 in any script (a byte-level BPE token is at least one byte). Deepgram
 * allows more (500 tokens for keyterm); a tiny Whisper is measured here with two.
 */
export const MAX_KEYTERMS = 20;
export const MAX_KEYTERM_BYTES = 200;

/** Deepgram's documented live range for raw audio, and Earshot's resampler's. */
export const SAMPLE_RATE_MIN_HZ = 8000;
export const SAMPLE_RATE_MAX_HZ = 48_000;
/**
 * With neither `encoding` nor `sample_rate`, Deepgram sniffs a container format (WAV, Ogg, …);
 * Earshot does too (detectContainer), and when the first bytes are no container it assumes what
 * its own demo page sends: 16-bit PCM at 16 kHz, Whisper's native rate (no resampling).
 */
export const DEFAULT_ENCODING: Encoding = "linear16";
export const DEFAULT_SAMPLE_RATE_HZ = 16_000;

/** Every option parseListenOptions understands, in the order errors are reported. */
export const LISTEN_OPTION_NAMES = [
  "encoding",
  "sample_rate",
  "channels",
  "interim_results",
  "endpointing",
  "utterance_end_ms",
  "vad_events",
  "punctuate",
  "smart_format",
  "language",
  "model",
  "resumable",
  "keyterm",
  "keywords",
  "numerals",
] as const;

/** Options a query may repeat, one value each (Deepgram's SDKs send arrays this way). */
const REPEATABLE: ReadonlySet<string> = new Set(["keyterm", "keywords"]);

export type ListenOptionName = (typeof LISTEN_OPTION_NAMES)[number];

/** Which ListenOptions field each query option sets (for comparing a resume with its session). */
const OPTION_FIELDS: Record<ListenOptionName, (options: ListenOptions) => unknown> = {
  encoding: (o) => o.encoding,
  sample_rate: (o) => o.sampleRate,
  channels: (o) => o.channels,
  interim_results: (o) => o.interimResults,
  endpointing: (o) => o.endpointingMs,
  utterance_end_ms: (o) => o.utteranceEndMs,
  vad_events: (o) => o.vadEvents,
  punctuate: (o) => o.punctuate,
  smart_format: (o) => o.smartFormat,
  language: (o) => o.language,
  model: (o) => o.model.requested,
  // A resume is resumable by definition; repeating resumable=true is fine, false contradicts it.
  resumable: (o) => o.resumable,
  keyterm: (o) => JSON.stringify(o.keyterms),
  keywords: (o) => JSON.stringify(o.keywords),
  numerals: (o) => o.numerals,
};

/**
 * The first option a resume's query names whose value differs from the session's, or null. Only
 * named options count: a resume may repeat the original URL or leave the options out.
 */
export function differingOption(
  given: readonly ListenOptionName[],
  requested: ListenOptions,
  session: ListenOptions,
): ListenOptionName | null {
  for (const name of given) {
    if (name === "resumable" && requested.resumable) continue;
    if (OPTION_FIELDS[name](requested) !== OPTION_FIELDS[name](session)) return name;
  }
  return null;
}

/**
 * Deepgram live options that exist but Earshot cannot honour. They get a clearer refusal than a
 * typo does. (Names from the SDK v5 `listen.v1.connect` arguments, deepgram-js-sdk
 * src/api/resources/listen/resources/v1/client/Client.ts.)
 */
const DEEPGRAM_UNSUPPORTED = new Set([
  "callback",
  "callback_method",
  "detect_entities",
  "diarize",
  "diarize_model",
  "dictation",
  "extra",
  "mip_opt_out",
  "multichannel",
  "profanity_filter",
  "redact",
  "replace",
  "search",
  "tag",
  "version",
]);

const KNOWN_PARAMS: ReadonlySet<string> = new Set<string>([
  ...LISTEN_OPTION_NAMES,
  ...RESUME_PARAMS,
]);

type Step<T> = { ok: true; value: T } | { ok: false; message: string };

const ok = <T>(value: T): Step<T> => ({ ok: true, value });
const fail = <T>(message: string): Step<T> => ({ ok: false, message });

/**
 * A non-negative decimal integer with no sign, fraction, exponent, unit or whitespace: "16000",
 * never "16000.5", "16k", "1e4", " 16000" or "+16000". Number() alone would accept most of those.
 * At most 9 digits, far past every range here, so the result is always a safe integer.
 */
function parseDecimalInteger(value: string): number | null {
  return /^[0-9]{1,9}$/.test(value) ? Number(value) : null;
}

/** Exactly "true" or "false": what the SDK sends (it stringifies JS booleans into the URL). */
function parseBoolean(value: string): Step<boolean> {
  if (value === "true") return ok(true);
  if (value === "false") return ok(false);
  return fail(`must be "true" or "false", got ${quote(value)}`);
}

function parseEncoding(value: string): Step<Encoding> {
  if (value === "linear16" || value === "linear32" || value === "mulaw" || value === "alaw") {
    return ok(value);
  }
  return fail(
    `${quote(value)} is not supported: Earshot takes raw encoding=linear16 (16-bit signed ` +
      "little-endian PCM), linear32 (32-bit float little-endian PCM), mulaw or alaw (G.711); " +
      "decode other codecs such as opus or flac to raw PCM before sending",
  );
}

function parseSampleRate(value: string): Step<number> {
  const hz = parseDecimalInteger(value);
  if (hz === null || hz < SAMPLE_RATE_MIN_HZ || hz > SAMPLE_RATE_MAX_HZ) {
    return fail(
      `must be a whole number of Hz from ${SAMPLE_RATE_MIN_HZ} to ${SAMPLE_RATE_MAX_HZ} ` +
        `(e.g. 16000), got ${quote(value)}`,
    );
  }
  return ok(hz);
}

function parseChannels(value: string): Step<1> {
  const n = parseDecimalInteger(value);
  if (n === null) return fail(`must be the integer 1, got ${quote(value)}`);
  if (n !== 1) {
    return fail(
      `must be 1, got ${n}: Earshot transcribes one mono stream; downmix to mono before sending`,
    );
  }
  return ok(1);
}

function parseEndpointing(value: string): Step<number | false> {
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

function parseUtteranceEnd(value: string): Step<number> {
  const ms = parseDecimalInteger(value);
  if (ms === null || ms < UTTERANCE_END_MIN_MS || ms > UTTERANCE_END_MAX_MS) {
    return fail(
      `must be a whole number of milliseconds from ${UTTERANCE_END_MIN_MS} to ` +
        `${UTTERANCE_END_MAX_MS}, got ${quote(value)}`,
    );
  }
  return ok(ms);
}

function parseLanguage(value: string): Step<string> {
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

function parseModel(value: string): Step<ListenOptions["model"]> {
  if (!isAcceptedModel(value)) {
    return fail(
      `${quote(value)} is not a model Earshot accepts; every accepted name runs whisper-tiny: ` +
        ACCEPTED_MODEL_FORMS,
    );
  }
  return ok({ requested: value, name: DEFAULT_MODEL });
}

/** A keyterm or keyword: trimmed, not empty, no control characters (they would reach Whisper). */
function parseTerm(value: string): Step<string> {
  const term = value.trim();
  if (term === "") return fail("must not be empty");
  if (/\p{Cc}/u.test(term)) return fail(`must not contain control characters, got ${quote(value)}`);
  return ok(term);
}

/**
 * A `keywords` value: `word` or `word:intensifier` (Deepgram). The intensifier is a decimal
 * number; a positive one is accepted and favours the word like any other, zero or a negative one
 * (Deepgram: suppress the word) is refused: Earshot only favours.
 */
function parseKeyword(value: string): Step<string> {
  const colon = value.lastIndexOf(":");
  const suffix = colon >= 0 ? value.slice(colon + 1).trim() : "";
  const hasIntensifier = colon >= 0 && /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/.test(suffix);
  const term = parseTerm(hasIntensifier ? value.slice(0, colon) : value);
  if (!term.ok) return term;
  if (hasIntensifier && !(Number(suffix) > 0)) {
    return fail(
      `intensifier must be above 0, got ${quote(suffix)}: Earshot gives keywords to Whisper as ` +
        "words to expect, which can favour a word but not suppress it",
    );
  }
  return term;
}

function unknownMessage(name: string): string {
  const accepted = `Earshot accepts: ${LISTEN_OPTION_NAMES.join(", ")}`;
  if (DEEPGRAM_UNSUPPORTED.has(name)) {
    return `${quote(name)} is a Deepgram option Earshot does not support; ${accepted}`;
  }
  return `unknown option ${quote(name)}; ${accepted}`;
}

/**
 * Validates the query of a `/v1/listen` handshake. The first problem found is returned, naming
 * the option, so the route can answer HTTP 400 before any audio is accepted.
 */
export function parseListenOptions(params: URLSearchParams): OptionsResult {
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (!KNOWN_PARAMS.has(name)) {
      return { ok: false, option: bounded(name), message: unknownMessage(name) };
    }
    // A repeated option is ambiguous (which one wins differs between servers); refuse it.
    if (seen.has(name) && !REPEATABLE.has(name)) {
      return { ok: false, option: name, message: `${quote(name)} is given more than once` };
    }
    seen.add(name);
  }

  const error = (option: string, message: string): OptionsResult => ({
    ok: false,
    option,
    message: `${option} ${message}`,
  });
  /** The first option refused while reading, if any: every option below reads through `read`. */
  let refused: OptionsResult | null = null;
  /** Option `name` through its parser, or `fallback` when absent; a refusal is kept, first wins. */
  const read = <T>(name: ListenOptionName, parse: (raw: string) => Step<T>, fallback: T): T => {
    const raw = params.get(name);
    if (raw === null || refused !== null) return fallback;
    const step = parse(raw);
    if (step.ok) return step.value;
    refused = error(name, step.message);
    return fallback;
  };

  const rawEncoding = params.get("encoding");
  const rawRate = params.get("sample_rate");
  const encoding = read("encoding", parseEncoding, DEFAULT_ENCODING);
  // Deepgram: "sample_rate is required when encoding is set" for raw audio; without it the
  // bytes cannot be interpreted. Guessing would transcribe at the wrong speed, silently.
  if (refused === null && rawEncoding !== null && rawRate === null) {
    return {
      ok: false,
      option: "sample_rate",
      message: `sample_rate is required with encoding=${encoding} (e.g. sample_rate=16000)`,
    };
  }
  // sample_rate alone implies linear16, the raw format every mic pipeline produces.
  const sampleRate = read("sample_rate", parseSampleRate, DEFAULT_SAMPLE_RATE_HZ);
  const channels = read("channels", parseChannels, 1);
  const interimResults = read("interim_results", parseBoolean, false);
  const vadEvents = read("vad_events", parseBoolean, false);
  const punctuate = read("punctuate", parseBoolean, false);
  const smartFormat = read("smart_format", parseBoolean, false);
  const resumable = read("resumable", parseBoolean, false);
  const numerals = read("numerals", parseBoolean, false);
  const endpointingMs = read("endpointing", parseEndpointing, DEFAULT_ENDPOINTING_MS);
  const utteranceEndMs = read<number | null>("utterance_end_ms", parseUtteranceEnd, null);
  // Deepgram's rule (docs/utterance-end): the gap is measured on interim results, so the
  // feature requires interim_results=true.
  if (refused === null && utteranceEndMs !== null && !interimResults) {
    refused = error("utterance_end_ms", "requires interim_results=true");
  }
  const language = read("language", parseLanguage, "en");
  const model = read<ListenOptions["model"]>("model", parseModel, {
    requested: DEFAULT_MODEL,
    name: "whisper-tiny",
  });
  if (refused !== null) return refused;

  const terms = { keyterm: [] as string[], keywords: [] as string[] };
  let termBytes = 0;
  for (const name of ["keyterm", "keywords"] as const) {
    for (const raw of params.getAll(name)) {
      const step = name === "keyterm" ? parseTerm(raw) : parseKeyword(raw);
      if (!step.ok) return error(name, step.message);
      terms[name].push(step.value);
      termBytes += new TextEncoder().encode(step.value).byteLength;
    }
  }
  const termCount = terms.keyterm.length + terms.keywords.length;
  if (termCount > MAX_KEYTERMS || termBytes > MAX_KEYTERM_BYTES) {
    const option = terms.keywords.length > 0 ? "keywords" : "keyterm";
    return error(
      option,
      `allows at most ${MAX_KEYTERMS} terms of ${MAX_KEYTERM_BYTES} UTF-8 bytes in all, keyterm ` +
        `and keywords together (each one can replace a right word), got ${termCount} ` +
        `terms of ${termBytes} bytes`,
    );
  }

  const resume = parseResume(params);
  if (!resume.ok) return resume;

  return {
    ok: true,
    given: LISTEN_OPTION_NAMES.filter((name) => seen.has(name)),
    resume: resume.resume,
    options: {
      encoding,
      sampleRate,
      detectContainer: rawEncoding === null && rawRate === null,
      channels,
      interimResults,
      endpointingMs,
      utteranceEndMs,
      vadEvents,
      punctuate,
      smartFormat,
      language,
      model,
      resumable,
      keyterms: terms.keyterm,
      keywords: terms.keywords,
      numerals,
    },
  };
}
