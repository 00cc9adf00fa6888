/**
 * Deepgram's `profanity_filter=true` for English: a profane word is masked with asterisks, one per
 * letter ("shit," → "****,"; Deepgram: "filtered results will appear in the transcript as ****",
 * developers.deepgram.com/docs/profanity-filter), in `word`, `punctuated_word` and the text.
 * Applied to interims and finals alike (after numerals), so an unmasked word never flashes by.
 *
 * What counts: the words below and their inflections, matched on the whole lowercase word, so
 * "Scunthorpe", "cocktail" and "assessment" are left alone. Words that are profane only in some
 * senses (dick, cock, pussy, hell, damn) are not masked: a filter that hides "Moby Dick" is wrong
 * more often than it helps. English only (with `multi`, as numerals): Deepgram filters other
 * languages too; Earshot has no lists for them.
 */
import type { Transcript, TranscriptWord } from "./transcriber";

/** Stems and the endings that may follow them ("" for the stem alone). */
const PROFANE: readonly (readonly [RegExp, readonly string[]])[] = [
  [/^(mother)?f+u+c+k/, ["", "s", "ed", "er", "ers", "in", "ing", "ings", "face", "head", "wit"]],
  [/^(bull|horse|dip|ape)?shit/, ["", "s", "ty", "tier", "ting", "ted", "head", "heads", "hole"]],
  [/^bitch/, ["", "es", "y", "ing", "ed"]],
  [/^cunt/, ["", "s"]],
  [/^(ass|arse)hole/, ["", "s"]],
  [/^bastard/, ["", "s"]],
  [/^(slut|whore|twat|wanker|dickhead|cocksucker)/, ["", "s"]],
  [/^(nigger|nigga|faggot)/, ["", "s"]],
];

function profane(word: string): boolean {
  for (const [stem, endings] of PROFANE) {
    const match = stem.exec(word);
    if (match !== null && endings.includes(word.slice(match[0].length))) return true;
  }
  return false;
}

/** What comes before an apostrophe ("shit's" → "shit", "fuckin'" → "fuckin"), and the rest. */
function split(text: string): [string, string] {
  const at = text.search(/['’]/u);
  return at < 0 ? [text, ""] : [text.slice(0, at), text.slice(at)];
}

/** The letters of `text` before any apostrophe as asterisks; the rest kept ("Shit's," → "****'s,"). */
function mask(text: string): string {
  const [head, tail] = split(text);
  return head.replace(/\p{L}/gu, "*") + tail;
}

/** The word masked if it is profane, else the word itself. */
function filtered(word: TranscriptWord): TranscriptWord {
  const letters = split(word.word.toLowerCase())[0].replace(/[^\p{L}]/gu, "");
  if (!profane(letters)) return word;
  return { ...word, word: mask(word.word), punctuatedWord: mask(word.punctuatedWord) };
}

/**
 * The transcript with its profane words masked, its text rebuilt from the words when any was (an
 * English text is its words joined by spaces); the same object when none was.
 */
export function withProfanityFiltered(transcript: Transcript): Transcript {
  const words = transcript.words.map(filtered);
  if (words.every((w, k) => w === transcript.words[k])) return transcript;
  return { ...transcript, words, text: words.map((w) => w.punctuatedWord).join(" ") };
}
