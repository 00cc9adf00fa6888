type NumericArray = Uint8Array | Float32Array;

/**
 * Joins typed arrays end to end into a new one: bytes by default (audio frames), or of the
 * `Type` given (`Float32Array` for samples). The type is passed, not guessed from the parts, so
 * joining no parts still gives an empty array of the right type.
 */
export function concat(parts: readonly Uint8Array[]): Uint8Array;
export function concat<T extends NumericArray>(
  parts: readonly T[],
  Type: new (length: number) => T,
): T;
export function concat(
  parts: readonly NumericArray[],
  Type: new (length: number) => NumericArray = Uint8Array,
): NumericArray {
  const out = new Type(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
