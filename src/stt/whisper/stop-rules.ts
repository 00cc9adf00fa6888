/**
 * Why decoding stops after a sampled token (`stopAfter`): the model's <|endoftext|>, a timestamp
 * at or past the end of the audio (less END_MARGIN_S) or past the window, a repetition the guard
 * cuts, or the sampled-token cap. Greedy decoding and beam search both apply it.
 */

import type { DecodeOptions, SampledToken, StopReason } from "./decode-types.ts";
import { findRepetition } from "./repetition.ts";
import type { WhisperTokenizer } from "./tokenizer.ts";

/**
 * A timestamp this close to the end of the audio ends decoding: on a window padded with silence
 * nothing real follows, and what Whisper writes there is invented (see WHISPER-NOTES.md).
 */
export const END_MARGIN_S = 0.5;

/**
 * Why decoding stops after the token just sampled (the last of `sampled`), if it does; `ended` is
 * "endoftext" when the model ended it (<|endoftext|> is not in `sampled`). `sampled` opens with
 * the decode's forced tokens (DecodeOptions.forced), `picks` holds only what was sampled after
 * them; the guard and the cap look at the sampled part alone. Cuts a repetition off `sampled`
 * and `picks` in place. The opening timestamp never ends decoding: an utterance shorter than
 * END_MARGIN_S still deserves its words.
 */
export function stopAfter(
  sampled: number[],
  picks: SampledToken[],
  tokenizer: WhisperTokenizer,
  options: DecodeOptions,
  maxTokens: number,
  ended: StopReason | undefined,
): StopReason | undefined {
  let stop = ended;
  const base = options.forced?.length ?? 0;
  const id = sampled.length > base ? sampled.at(-1) : undefined;
  if (stop === undefined && id !== undefined && tokenizer.isTimestamp(id) && picks.length > 1) {
    const seconds = tokenizer.timestampSeconds(id);
    if (seconds > options.windowSeconds) stop = "past-window";
    else if (seconds >= options.audioSeconds - END_MARGIN_S) stop = "timestamp-at-end";
  }
  // Once decoding ends, the last word is complete too.
  const cut = findRepetition(base === 0 ? sampled : sampled.slice(base), tokenizer, {
    final: stop !== undefined,
    ...(options.speechBursts === undefined ? {} : { speechBursts: options.speechBursts }),
  });
  if (cut) {
    sampled.length = base + cut.at;
    picks.length = cut.at;
    stop = "repetition";
  }
  if (stop === undefined && picks.length >= maxTokens) stop = "max-tokens";
  return stop;
}
