/**
 * The languages Earshot accepts in `language`: Whisper tiny's own 99 codes, the standard spellings
 * that differ from Whisper's, and Deepgram's "multi" (detect). Read by the option parser
 * (options.ts) and the session (which applies numerals to English only).
 */

/**
 * The 99 language codes Whisper tiny (multilingual) knows, in language-token order: the token of
 * `WHISPER_LANGUAGES[i]` is `<|code|>` with id 50259 + i. Copied from the `lang_to_id` table of the
 * model's own generation_config.json (../shared/models/whisper-tiny, ids 50259..50357), so the list
 * is exactly what the loaded model accepts. (`yue` arrived with large-v3 and is not in tiny.)
 * Note Whisper's non-standard `jw` for Javanese (ISO 639-1 is `jv`; see LANGUAGE_ALIASES).
 */
// biome-ignore format: sixteen codes per row reads as a table
export const WHISPER_LANGUAGES = [
  "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it",
  "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur",
  "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn",
  "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si",
  "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
  "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha",
  "ba", "jw", "su",
] as const;

const WHISPER_LANGUAGE_SET: ReadonlySet<string> = new Set(WHISPER_LANGUAGES);

/**
 * Standard (or formerly standard) primary subtags whose Whisper spelling differs. Clients send
 * BCP-47; Whisper's table predates some of it.
 */
const LANGUAGE_ALIASES: Readonly<Record<string, string>> = {
  jv: "jw", // Javanese: ISO 639-1 `jv`, Whisper `jw`
  nb: "no", // Norwegian Bokmål: Whisper's `no` is Bokmål (Nynorsk is `nn`)
  iw: "he", // Hebrew's deprecated ISO code, still emitted by old Java/Android locales
  in: "id", // Indonesian's deprecated ISO code, same origin
  tgl: "tl", // Tagalog's ISO 639-2 code (Deepgram lists `tl`; some clients send `tgl`/`fil`)
  fil: "tl", // Filipino, standardised Tagalog
};

/** Deepgram's "detect the language" value (Nova-3 multilingual); Earshot lets Whisper detect. */
export const LANGUAGE_DETECT = "multi";

/**
 * BCP-47-ish: a 2–3 letter primary subtag, optionally followed by subtags ("en-US", "zh-Hant-TW",
 * "es-419"); `_` is accepted as a separator because POSIX locales ("en_US") leak into clients.
 * Case-insensitive. Only the primary subtag matters to Whisper, so region and script are dropped.
 */
export function normalizeLanguage(value: string): string | null {
  const lower = value.toLowerCase();
  if (lower === LANGUAGE_DETECT) return LANGUAGE_DETECT;
  if (!/^[a-z]{2,3}(?:[-_][a-z0-9]{1,8})*$/.test(lower)) return null;
  const primary = lower.split(/[-_]/, 1)[0] ?? "";
  const code = LANGUAGE_ALIASES[primary] ?? primary;
  return WHISPER_LANGUAGE_SET.has(code) ? code : null;
}
