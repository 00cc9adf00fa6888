/** Float sample chunks joined end to end into one new array. */
export function joinSamples(...chunks: readonly Float32Array[]): Float32Array {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const out = new Float32Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Byte chunks joined end to end. When all the bytes are in one chunk, that chunk itself comes back
 * (no copy: held audio, demuxer packets and token bytes are only read after joining).
 */
export function joinBytes(...chunks: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const whole = chunks.find((chunk) => chunk.length === length);
  if (whole !== undefined) return whole;
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
