/** Client text echoed back in refusals, cut short so a huge value cannot bloat the reply. */

/**
 * Longest piece of a client's text echoed back in a refusal: 40 characters, longer than any
 * option name or value Earshot knows, so an attacker's 10 KB name costs a reply of ~1 KB.
 */
const MAX_QUOTED_CHARS = 40;

/** `value` cut to MAX_QUOTED_CHARS (with an ellipsis when cut). */
export function bounded(value: string): string {
  return value.length > MAX_QUOTED_CHARS ? `${value.slice(0, MAX_QUOTED_CHARS)}…` : value;
}

/** `value` as a JSON string literal, cut to MAX_QUOTED_CHARS. */
export function quote(value: string): string {
  return JSON.stringify(bounded(value));
}
