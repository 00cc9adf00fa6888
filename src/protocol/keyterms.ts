/**
 * Deepgram's `keyterm` and `keywords` options: both repeat (one term per value), both become
 * terms the decoder favours, and they share one cap (MAX_KEYTERMS, MAX_KEYTERM_BYTES in
 * option-schema.ts), so they are read together here rather than through option-table.ts.
 */

import { MAX_KEYTERM_BYTES, MAX_KEYTERMS } from "./option-schema";
import { fail, ok, type Step } from "./option-values";
import { quote } from "./quote";

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

/** keyterm and keywords as read: every term in query order, or the first one refused and why. */
export type TermsResult =
  | { ok: true; keyterms: string[]; keywords: string[] }
  | { ok: false; option: "keyterm" | "keywords"; message: string };

/**
 * Reads every `keyterm`, then every `keywords` value; the first value refused is returned, then
 * the cap on both together. A refusal's message comes without the option's name (options.ts
 * prefixes it, as for every option).
 */
export function readTerms(params: URLSearchParams): TermsResult {
  const terms = { keyterm: [] as string[], keywords: [] as string[] };
  let termBytes = 0;
  for (const name of ["keyterm", "keywords"] as const) {
    for (const raw of params.getAll(name)) {
      const step = name === "keyterm" ? parseTerm(raw) : parseKeyword(raw);
      if (!step.ok) return { ok: false, option: name, message: step.message };
      terms[name].push(step.value);
      termBytes += new TextEncoder().encode(step.value).byteLength;
    }
  }
  const termCount = terms.keyterm.length + terms.keywords.length;
  if (termCount > MAX_KEYTERMS || termBytes > MAX_KEYTERM_BYTES) {
    const option = terms.keywords.length > 0 ? "keywords" : "keyterm";
    return {
      ok: false,
      option,
      message:
        `allows at most ${MAX_KEYTERMS} terms of ${MAX_KEYTERM_BYTES} UTF-8 bytes in all, ` +
        "keyterm and keywords together (each one can replace a right word), got " +
        `${termCount} terms of ${termBytes} bytes`,
    };
  }
  return { ok: true, keyterms: terms.keyterm, keywords: terms.keywords };
}
