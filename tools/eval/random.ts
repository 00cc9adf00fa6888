/** Deterministic pseudo-random sources for tests, seeded so a failure reproduces. */
import { seeded } from "../../src/stt/whisper/decode.ts";

/** Pseudo-random bytes (xorshift32; a seed of 0 is taken as 1, which xorshift needs). */
export function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Pseudo-random numbers in [0, 1) (mulberry32), e.g. for "random" frame sizes. */
export const seededRandom = seeded;
