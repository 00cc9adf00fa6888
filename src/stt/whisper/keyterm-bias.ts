/**
 * Keyterm bias: a session's keyterms as the token sequences the decoder favours (`keytermBias`,
 * by KEYTERM_BONUS), and the tokens those sequences favour at each decoding step (`favoured`),
 * which greedy decoding and beam search both add the bonus to.
 */

import type { WhisperTokenizer } from "./tokenizer.ts";

export interface TokenBias {
  /** Each a keyterm's text tokens, in every spelling to favour (" clubs", " Clubs"). */
  sequences: readonly (readonly number[])[];
  /** Added to a favoured token's logit (natural log units: e^bonus times as likely). */
  bonus: number;
}

/**
 * Tokens `bias` favours after `sampled`: the first token of every sequence, and the next token
 * of every sequence whose beginning `sampled` ends with (so a keyterm of several tokens, once
 * started, is favoured to its end).
 */
export function favoured(sampled: readonly number[], bias: TokenBias): Set<number> {
  const ids = new Set<number>();
  for (const sequence of bias.sequences) {
    for (let k = Math.min(sequence.length - 1, sampled.length); k >= 0; k--) {
      let matches = true;
      for (let i = 0; i < k && matches; i++) {
        matches = sampled[sampled.length - k + i] === sequence[i];
      }
      const next = sequence[k];
      if (matches && next !== undefined) ids.add(next);
    }
  }
  return ids;
}

/**
 * How much a keyterm's tokens are favoured: +3 on the logit, e^3 ≈ 20 times as likely. Measured
 * in Node on every dev and short clip (docs/accuracy.md, "Keyterms"): at +2 and +3 `clubs` turns
 * "4 Queen of Clothes" into "4 Queen of clubs" and changes no other transcript; at +4 a keyterm's
 * first piece (" Cl") starts words it is not ("The Cluster"), at +6 it replaces right words.
 */
export const KEYTERM_BONUS = 3;

/**
 * A session's keyterms as the token sequences the decoder favours: each as given, with a leading
 * space (Whisper's words start with one), and with its first letter raised and lowered, since a
 * keyterm may start a sentence or sit inside one. Empty for no keyterms. A term in a script that
 * takes no spaces (its spaced spelling begins with a lone space token) is favoured as written.
 */
export function keytermBias(tokenizer: WhisperTokenizer, keyterms: readonly string[]): TokenBias {
  const spellings = new Set<string>();
  for (const term of keyterms) {
    const first = term.charAt(0);
    const rest = term.slice(1);
    for (const variant of [term, first.toUpperCase() + rest, first.toLowerCase() + rest]) {
      spellings.add(` ${variant}`);
    }
  }
  const sequences = [...spellings].map((spelling) => {
    const tokens = tokenizer.encode(spelling);
    // Scripts whose words take no leading space (CJK): the space is a token of its own, and
    // favouring it would favour a space at every step. Such a term is favoured as written.
    // (By its bytes: a space and the first byte of a character, as Korean's often start, is not
    // a bare space, though it decodes to one alone.)
    const first = tokens[0];
    const bytes = first === undefined ? [] : [...tokenizer.tokenBytes(first)];
    return bytes.length > 0 && bytes.every((byte) => byte === 0x20)
      ? tokenizer.encode(spelling.trimStart())
      : tokens;
  });
  return { sequences: sequences.filter((tokens) => tokens.length > 0), bonus: KEYTERM_BONUS };
}
