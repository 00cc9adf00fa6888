/**
 * When a decode is tried again, and how: Whisper's temperature fallback (a decode that loops or
 * scores badly is sampled again at a higher temperature) and beam search for the finals greedy
 * decoding is unsure of. transcribe.ts applies them.
 */
import type { DecodeResult } from "./decode-types.ts";
import { NO_SPEECH_THRESHOLD } from "./speech-evidence.ts";

/**
 * Whisper's temperature fallback (openai/whisper transcribe: temperatures 0, 0.2 … 1.0, retry
 * while the compression ratio > 2.4 or the average log-probability < −1 unless the window is
 * silence), bounded here to two retries: each costs a whole decode (prompt pass plus ~15–25 ms a
 * token), the encoder pass is shared. Sampling is seeded by the attempt, so a clip always
 * decodes the same way. The first attempt that passes is kept; if none does, the greedy decode,
 * unless it looped and a retry did not.
 */
export const FALLBACK_TEMPERATURES: readonly number[] = [0, 0.2, 0.4];
/**
 * Only utterances up to this long are retried: short turns are where a bad greedy decode loses
 * the most (a digit string, "five five") and where a retry is cheap (a few dozen tokens at
 * ~15–25 ms); a long utterance's retry would add seconds to a final. On the accuracy suite the
 * bound changed no transcript.
 */
export const FALLBACK_MAX_AUDIO_SECONDS = 5;
export const COMPRESSION_RATIO_THRESHOLD = 2.4;
export const FALLBACK_LOGPROB_THRESHOLD = -1;

/**
 * Beam search (beam-search.ts beamSearch) only for audio up to this long: the beams' extra cost
 * per step (three rows through the decoder, each projected over every id) matters most where
 * there are many steps, and short turns are where greedy decoding loses words.
 */
export const BEAM_MAX_AUDIO_SECONDS = 5;
/**
 * A greedy decode averaging below this log-probability per token is decoded again with beams
 * (when `beamSize` > 1); a surer one is kept as it is, at greedy's cost. Beams on every final up
 * to 5 s made the Finalize-200ms p50 1.39× greedy's (265 → 368 ms, side by side in one bench run)
 * for 20 / 14 / 13 errors at endpointing 10 / 300 / 500; beams below −0.4 ran on 2 in 3 of those
 * finals for the same errors; below −0.7 on 1 in 3 of them, for 18 / 16 / 16 (greedy: 23 / 19 /
 * 19). Whisper's own retry line (FALLBACK_LOGPROB_THRESHOLD) is −1.
 */
export const BEAM_BELOW_LOGPROB = -0.7;
/**
 * A decode the repetition guard cut (stop reason "repetition") is not retried when it is this sure
 * (BEAM_BELOW_LOGPROB: the line below which a decode is unsure enough for beams) and its kept
 * text does not compress like a loop: the guard already dropped the repeat, and what is left is
 * Whisper having read the speech and then starting over ("If the reader will excuse me, If the
 * reader will"). In the accuracy suite every such retry sampled the same words again (two
 * clips: the same tokens at 0, 0.2 and 0.4) and cost a whole decode each (~100–150 ms on a short
 * turn); an unsure cut one ("It had then leasert," at −0.90) is still retried, and that retry is
 * where "leisure" came back.
 */
export const SURE_AFTER_CUT_LOGPROB = BEAM_BELOW_LOGPROB;

/** A decode and its text's compression ratio: what the fallback judges. */
export interface Attempt {
  result: DecodeResult;
  ratio: number;
}

/** Whisper's reasons to decode again at a higher temperature. */
export function needsFallback({ result, ratio }: Attempt): boolean {
  if (looped({ result, ratio })) return !sureAfterCut({ result, ratio });
  // A window Whisper thinks is silence is left to the no-speech decision, not retried.
  if (result.noSpeechProbability > NO_SPEECH_THRESHOLD) return false;
  return result.avgLogprob < FALLBACK_LOGPROB_THRESHOLD;
}

/** A decode that repeated itself: cut by the guard, at the token cap, or compressing too well. */
export function looped({ result, ratio }: Attempt): boolean {
  return (
    result.stopReason === "repetition" ||
    result.stopReason === "max-tokens" ||
    ratio > COMPRESSION_RATIO_THRESHOLD
  );
}

/** A guard-cut decode sure enough to keep without a retry (SURE_AFTER_CUT_LOGPROB says why). */
function sureAfterCut({ result, ratio }: Attempt): boolean {
  return (
    result.stopReason === "repetition" &&
    ratio <= COMPRESSION_RATIO_THRESHOLD &&
    result.avgLogprob >= SURE_AFTER_CUT_LOGPROB
  );
}
