/**
 * How many beams finals decode with: the default, the cap, and the reading of EARSHOT_BEAM_SIZE
 * (WhisperEnv in whisper-transcriber.ts).
 */

/**
 * Beam search for finals of utterances up to BEAM_MAX_AUDIO_SECONDS whose greedy decode is unsure
 * (src/stt/whisper/transcribe.ts BEAM_BELOW_LOGPROB), 3 beams by default. Measured through the
 * session on the 18 dev and short speech clips (test/whisper-session-accuracy.test.ts,
 * docs/accuracy.md), errors of 206 words at endpointing 10 / 300 / 500: greedy 23 / 19 / 19, 3
 * beams 18 / 16 / 16 (on every final up to 5 s: 20 / 14 / 13, for a Finalize p50 1.39× greedy's).
 * 5 beams in one run scored worse than 3: the beams share one decoder run, whose activations are
 * quantized per run, not per beam.
 */
export const DEFAULT_BEAM_SIZE = 3;
/** Beams beyond this cost heap (a cross-attention cache copy each) for no measured gain. */
export const MAX_BEAM_SIZE = 5;

/**
 * EARSHOT_BEAM_SIZE: a whole number of beams from 1 (greedy) to MAX_BEAM_SIZE; anything else
 * (unset included) is DEFAULT_BEAM_SIZE.
 */
export function beamSizeVar(value: string | undefined): number {
  const parsed = Number(value);
  return value !== undefined &&
    value.trim() !== "" &&
    Number.isInteger(parsed) &&
    parsed >= 1 &&
    parsed <= MAX_BEAM_SIZE
    ? parsed
    : DEFAULT_BEAM_SIZE;
}
