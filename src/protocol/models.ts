/**
 * The `model` names Earshot accepts: Deepgram's (Nova, Base, Enhanced, bare domains) and
 * Whisper's, all of which run whisper-tiny, so a client written for Deepgram keeps its `model=`.
 */

/** What a session runs whatever `model` asked for, and what it reports. */
export const DEFAULT_MODEL = "whisper-tiny";

/** Whisper's multilingual sizes, the names Deepgram's hosted Whisper uses (`whisper-<size>`). */
const WHISPER_SIZES = new Set(["tiny", "base", "small", "medium", "large"]);

/**
 * Bare domain names, which Deepgram resolves to its base tier. Taken from the SDK v5 model type
 * (deepgram-js-sdk src/api/types/ListenV1Model.ts); `custom` is left out: a custom-trained model
 * is something Earshot cannot pretend to run.
 */
const BARE_DOMAINS = new Set([
  "general",
  "meeting",
  "phonecall",
  "finance",
  "conversationalai",
  "voicemail",
  "video",
]);

/**
 * Model names Earshot accepts. All of them run whisper-tiny: a client written for Deepgram keeps
 * its `model=` and still works, and Metadata/Results report the model that actually ran.
 * A `<domain>` is one lowercase word starting with a letter (general, meeting, phonecall,
 * medical, drivethru, …); Deepgram adds domains over time, so any word is accepted rather than a
 * list that would go stale. It must start with a letter so that an unknown generation such as
 * `nova-4` is refused instead of read as a domain. `nova-<domain>` (Nova-1: nova-general,
 * nova-phonecall, nova-medical) is in the SDK's model type, so it is accepted too.
 */
const MODEL_PATTERNS: readonly RegExp[] = [
  /^nova(?:-[23])?(?:-[a-z][a-z0-9]*)?$/,
  /^base(?:-[a-z][a-z0-9]*)?$/,
  /^enhanced(?:-[a-z][a-z0-9]*)?$/,
  /^whisper$/,
];

export const ACCEPTED_MODEL_FORMS =
  "nova, nova-2, nova-3, nova-<domain>, nova-2-<domain>, nova-3-<domain>, base, " +
  "base-<domain>, enhanced, enhanced-<domain>, a bare domain (general, meeting, phonecall, " +
  "finance, conversationalai, voicemail, video), whisper, whisper-tiny, whisper-base, " +
  "whisper-small, whisper-medium, whisper-large";

/** Whether `model` (any case) is a name Earshot accepts. */
export function isAcceptedModel(model: string): boolean {
  // Deepgram's names are lowercase; matching case-insensitively costs nothing and spares a
  // client that capitalised "Nova-3" a refused handshake.
  const lower = model.toLowerCase();
  const whisperSize = lower.startsWith("whisper-") ? lower.slice("whisper-".length) : null;
  return (
    MODEL_PATTERNS.some((pattern) => pattern.test(lower)) ||
    BARE_DOMAINS.has(lower) ||
    (whisperSize !== null && WHISPER_SIZES.has(whisperSize))
  );
}
