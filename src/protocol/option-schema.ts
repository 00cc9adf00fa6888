/**
 * The schema of `GET /v1/listen`'s query: the ListenOptions it is read into, the names Earshot
 * accepts (and the Deepgram names it refuses), and every default, range and cap with the reason
 * for its value. No parsing here: option-values.ts reads each value, options.ts the whole query.
 */

/** Deepgram's raw encodings that Earshot decodes (src/audio/pcm-decoder.ts). */
export type Encoding = "linear16" | "linear32" | "mulaw" | "alaw";
/**
 * What `encoding` may name: a raw encoding, or Deepgram's `ogg-opus` (an Ogg Opus stream, its pages
 * as an encoder writes them; the stream's OpusHead gives its rate, and `sample_rate`, which
 * Deepgram requires with every encoding, is not used).
 */
export type StreamEncoding = Encoding | "ogg-opus";

export interface ListenOptions {
  encoding: StreamEncoding;
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
  /** Profanity masked with asterisks (English; src/stt/profanity.ts). */
  profanityFilter: boolean;
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
   * favours (KEYTERM_BONUS in src/stt/whisper/keyterm-bias.ts; the README's "Keyterms").
   */
  keyterms: string[];
  /**
   * Deepgram's `keywords` (Nova-2: `word:intensifier`), words only, in the order given: favoured
   * like keyterms, every accepted intensifier (> 0) alike.
   */
  keywords: string[];
}

/**
 * Earshot's default `endpointing`, in ms of trailing silence. Deepgram's default is 10 ms
 * (developers.deepgram.com/docs/endpointing: "enabled by default and set to 10 milliseconds"),
 * tuned for a model that streams words as they are heard. Whisper transcribes whole segments and
 * guesses badly on fragments, so ending an utterance at every 10 ms breath would cut phrases in
 * half. Deepgram's own guide recommends 300–500 ms "for conversations where speakers pause
 * mid-thought" (docs/understand-endpointing-interim-results); Earshot takes the top of that range:
 * 500 ms ≈ 15.6 VAD frames of 32 ms, i.e. the segmenter waits 16 frames (512 ms). The bottom, 300
 * (10 frames), was tried as the default (2026-12-05) and taken back: a phrase's pause as a browser
 * captures it reaches 10 frames (JFK's "ask | not" through the demo page, vad-machine.ts
 * misfireMs), all that 300 ms waits for. (The page's "is not not." first blamed on 300 showed at
 * 500 too, in a later run on a loaded machine: that duplicated word is not endpointing's.)
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

/** Every option parseListenOptions understands, as the refusal of an unknown option lists them. */
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
  "profanity_filter",
] as const;

/** Options a query may repeat, one value each (Deepgram's SDKs send arrays this way). */
export const REPEATABLE: ReadonlySet<string> = new Set(["keyterm", "keywords", "tag", "extra"]);

/**
 * Deepgram options that ask for nothing Earshot would not do anyway, accepted so that clients
 * which always send them connect: Pipecat's DeepgramSTTService sends `multichannel`, `diarize`,
 * `dictation` and `detect_entities` as "false" on every connection (pipecat-ai/pipecat,
 * services/deepgram/stt.py), and takes a 400 at the handshake as permanent. Each is honoured as
 * given, and none changes a session (nor is compared on resume):
 * - `off`: a feature Earshot lacks, asked to stay off; "true" is refused as unsupported.
 * - `boolean`: `mip_opt_out`, opting out of Deepgram's model improvement programme; Earshot keeps
 *   no audio for training, so either value holds.
 * - `label`: `tag` and `extra` label Deepgram's usage records (not live results: the SDK's Results
 *   type has no `extra`); `version` picks a model version and, like `model`, every value runs
 *   whisper-tiny.
 */
export const DEEPGRAM_NO_EFFECT: Readonly<Record<string, "off" | "boolean" | "label">> = {
  multichannel: "off",
  diarize: "off",
  dictation: "off",
  detect_entities: "off",
  mip_opt_out: "boolean",
  tag: "label",
  extra: "label",
  version: "label",
};

export type ListenOptionName = (typeof LISTEN_OPTION_NAMES)[number];

/**
 * Deepgram live options that exist but Earshot cannot honour, whatever their value (for those
 * it can honour when off, see DEEPGRAM_NO_EFFECT). They get a clearer refusal than a typo does.
 * (Names from the SDK v5 `listen.v1.connect` arguments, deepgram-js-sdk
 * src/api/resources/listen/resources/v1/client/Client.ts.)
 */
export const DEEPGRAM_UNSUPPORTED = new Set([
  "callback",
  "callback_method",
  "diarize_model",
  "redact",
  "replace",
  "search",
]);
