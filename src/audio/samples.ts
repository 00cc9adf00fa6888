/** Float sample chunks joined end to end into one new array. */
export function joinSamples(...chunks: readonly Float32Array[]): Float32Array {
  return copyInto(new Float32Array(totalLength(chunks)), chunks);
}

/**
 * Byte chunks joined end to end. When all the bytes are in one chunk, that chunk itself comes back
 * (no copy: held audio, demuxer packets and token bytes are only read after joining).
 */
export function joinBytes(...chunks: readonly Uint8Array[]): Uint8Array {
  const length = totalLength(chunks);
  const whole = chunks.find((chunk) => chunk.length === length);
  if (whole !== undefined) return whole;
  return copyInto(new Uint8Array(length), chunks);
}

function totalLength(chunks: readonly { length: number }[]): number {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  return length;
}

/** `chunks` copied end to end into `out`, which holds exactly their total length. */
function copyInto<T extends Float32Array | Uint8Array>(out: T, chunks: readonly T[]): T {
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
