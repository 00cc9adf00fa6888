/**
 * Deepgram's `profanity_filter=true` for English: a profane word is masked with asterisks, one per
 * letter ("shit," → "****,"; Deepgram: "filtered results will appear in the transcript as ****",
 * developers.deepgram.com/docs/profanity-filter), in `word`, `punctuated_word` and the text.
 * Applied to interims and finals alike (after numerals), so an unmasked word never flashes by.
 *
 * What counts: the words below and their inflections, matched on a whole run of Latin letters
 * (a word, or a part of one between hyphens and quotes), so "Scunthorpe", "cocktail" and
 * "assessment" are left alone. Words that are profane only in some senses (dick, cock, pussy,
 * hell, damn) are not masked: a filter that hides "Moby Dick" is wrong more often than it helps. English only (with `multi`, as numerals): Deepgram filters other
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

/** Runs of Latin letters: the list is English, and a run ends at any hyphen, quote or script. */
const LATIN_RUN = /\p{Script=Latin}+/gu;

/**
 * `text` with each profane run of letters masked, everything around it kept: "'fuck" → "'****",
 * "bitch's" → "*****'s", "fucked-up" → "******-up", "マジでfuckだ" → "マジで****だ".
 */
function masked(text: string): string {
  return text.replace(LATIN_RUN, (run) =>
    profane(run.toLowerCase()) ? "*".repeat(run.length) : run,
  );
}

/** The word with its profane parts masked, in `word` and `punctuated_word` alike. */
function filtered(word: TranscriptWord): TranscriptWord {
  const plain = masked(word.word);
  const punctuated = masked(word.punctuatedWord);
  if (plain === word.word && punctuated === word.punctuatedWord) return word;
  return { ...word, word: plain, punctuatedWord: punctuated };
}

/**
 * The transcript with its profane words masked in its words and in its text, in place (the text's
 * own spacing kept: Chinese or Japanese with an English word in it gets no spaces added); the same
 * object when nothing was.
 */
export function withProfanityFiltered(transcript: Transcript): Transcript {
  const text = masked(transcript.text);
  const words = transcript.words.map(filtered);
  if (text === transcript.text && words.every((w, k) => w === transcript.words[k])) {
    return transcript;
  }
  return { ...transcript, text, words };
}
