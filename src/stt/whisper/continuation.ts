/**
 * Decoding an utterance as the continuation of the one before it. Cut at a short pause (Deepgram's
 * default `endpointing=10`, or a pause inside a sentence at 300 ms), an utterance often starts
 * mid-sentence: alone, Whisper hears "ask not" without "and so my fellow Americans" and writes
 * "s", or "in his power" as "and is power". Whisper reads a long recording the same way: each
 * 30-s window continues the text before it. Here the window opens with the previous utterance's
 * audio (and the pause between them), and the decoder reads the previous decode's own tokens,
 * timestamps included, as if it had just produced them (DecodeOptions.forced); what it writes
 * after them is this utterance's text, timed on the window and moved back onto the utterance.
 *
 * Bounded: only a previous utterance of the same session, decoded as a final with text, at most
 * CONTEXT_MAX_SECONDS long, ending at most CONTEXT_MAX_GAP_SECONDS before this one starts, and
 * only for utterances up to CONTINUE_MAX_SECONDS (a long utterance carries its own context, and
 * the window's encoder pass grows with the context). Pure.
 */
import { TIMESTAMP_COUNT, TIMESTAMP_STEP_S, type WhisperTokenizer } from "./tokenizer.ts";

/** Utterances longer than this are decoded alone: they have context enough of their own. */
export const CONTINUE_MAX_SECONDS = 5;
/**
 * A previous utterance longer than this is not read again: its audio would cost the encoder
 * (~linear in the window) more than a short utterance gains from it.
 */
export const CONTEXT_MAX_SECONDS = 5;
/**
 * A pause longer than this between the two utterances ends the sentence: the next one is a new
 * turn, decoded alone. The pause goes into the window as silence.
 */
export const CONTEXT_MAX_GAP_SECONDS = 1;
/** Tokens of the previous decode read again, at most (5 s of speech is ~20 words, ~40 tokens). */
export const MAX_FORCED_TOKENS = 96;

/** A final's decode, as kept for the next utterance of the same session. */
export interface DecodedUtterance {
  /** Session sample where the decoded audio starts. */
  startSample: number;
  audio: Float32Array;
  /** Its tokens (timestamps and text), timed from the start of `audio`. */
  tokens: readonly number[];
}

/** What the next decode opens with: the context's audio, and the tokens read for it. */
export interface Continuation {
  /** The previous utterance's audio and the pause after it, as silence. */
  audio: Float32Array;
  /**
   * Its tokens, closed by a timestamp, then the timestamp that opens this utterance's segment where
   * its audio starts in the window: the decoder writes this utterance's words from there on
   * instead of reading the context's audio again.
   */
  tokens: number[];
}

/**
 * The continuation an utterance of `samples` samples starting at `startSample` decodes with, or
 * null when it decodes alone (see the bounds above).
 */
export function continuationFor(
  previous: DecodedUtterance | null,
  startSample: number,
  samples: number,
  sampleRate: number,
  tokenizer: WhisperTokenizer,
): Continuation | null {
  if (previous === null || samples > CONTINUE_MAX_SECONDS * sampleRate) return null;
  if (previous.audio.length > CONTEXT_MAX_SECONDS * sampleRate) return null;
  const gap = startSample - (previous.startSample + previous.audio.length);
  if (gap > CONTEXT_MAX_GAP_SECONDS * sampleRate) return null;
  // The utterance's pre-roll may reach back into the previous one's trailing audio: that part is
  // read once, as this utterance's.
  const kept = Math.min(previous.audio.length, startSample - previous.startSample);
  if (kept <= 0) return null;
  const audio = new Float32Array(kept + Math.max(0, gap));
  audio.set(previous.audio.subarray(0, kept));
  const tokens = forcedTokens(
    previous.tokens,
    kept / sampleRate,
    audio.length / sampleRate,
    tokenizer,
  );
  return tokens === null ? null : { audio, tokens };
}

/**
 * The previous decode's tokens as a prefix: its segments, the last one closed at or before
 * `seconds` (where its kept audio ends), then the timestamp that opens a new segment at `opensAt`
 * (where this utterance's audio starts in the window), after which Whisper's rules let text or
 * <|endoftext|> follow. Null without text, or when too long.
 */
export function forcedTokens(
  tokens: readonly number[],
  seconds: number,
  opensAt: number,
  tokenizer: WhisperTokenizer,
): number[] | null {
  const { timestampBegin } = tokenizer.special;
  // The timestamp at or before `s` (the epsilon keeps 2.3 s at <|2.30|>, not <|2.28|>).
  const at = (s: number) =>
    timestampBegin + Math.min(TIMESTAMP_COUNT - 1, Math.floor(s / TIMESTAMP_STEP_S + 1e-6));
  const last = at(seconds);
  const out = tokens
    .filter((id) => tokenizer.isText(id) || tokenizer.isTimestamp(id))
    .map((id) => (tokenizer.isTimestamp(id) ? Math.min(id, last) : id));
  // A continued decode's own tokens open with text (its opening timestamp was forced): it opened
  // at the start of its audio.
  if (out.length > 0 && !tokenizer.isTimestamp(out[0] as number)) out.unshift(timestampBegin);
  // A segment opened after the last one closed, with nothing in it: drop its opening.
  const timestampAt = (i: number) => tokenizer.isTimestamp(out.at(i) ?? -1);
  while (out.length >= 2 && timestampAt(-1) && timestampAt(-2)) out.pop();
  if (!out.some((id) => tokenizer.isText(id))) return null;
  let end = out.at(-1) as number;
  if (!tokenizer.isTimestamp(end)) {
    const opened = [...out].reverse().find((id) => tokenizer.isTimestamp(id)) ?? timestampBegin;
    end = Math.max(last, opened + 1);
    out.push(end);
  }
  out.push(Math.max(end, at(opensAt)));
  return out.length <= MAX_FORCED_TOKENS ? out : null;
}

/**
 * Timestamp tokens of a continued decode moved from the window's time to the utterance's:
 * `offsetSeconds` earlier, none before 0.
 */
export function shiftTimestamps(
  tokens: readonly number[],
  offsetSeconds: number,
  tokenizer: WhisperTokenizer,
): number[] {
  const shift = Math.round(offsetSeconds / TIMESTAMP_STEP_S);
  const { timestampBegin } = tokenizer.special;
  return tokens.map((id) =>
    tokenizer.isTimestamp(id) ? Math.max(timestampBegin, id - shift) : id,
  );
}

/**
 * One session's side of continuation: its last final decoded with text, which only its next
 * utterance may continue, and how often finals continued. One per WhisperSession, so no session
 * ever reads another's.
 */
export class SessionContinuation {
  /**
   * The latest decode with words of each recent utterance, by utterance number: an early final
   * of utterance N that speech then voided may have finished and been kept, and N's own later
   * decodes must still find N − 1. Kept: N − 1 and N only.
   */
  readonly #decoded = new Map<number, DecodedUtterance>();
  /** Finals that continued the utterance before them, and those decoded again alone. */
  readonly counts = { decodes: 0, decodedAlone: 0 };

  readonly #enabled: boolean;

  constructor(enabled: boolean) {
    this.#enabled = enabled;
  }

  /**
   * Decodes the final of `final.utterance` (`audio` from session sample `final.start`) with
   * `decode`, continuing the utterance just before when its latest final decode had words and it
   * is within continuationFor's bounds. A continuation whose result `shows` no words, or that reads the
   * context's words again (`rereads`), is not trusted (Whisper, having just read a whole sentence,
   * may end where a short phrase follows, or start over): the utterance is decoded alone, so
   * continuing never loses what the decode alone shows. The result is kept for the next
   * utterance if it has words, and forgotten if not: finals of a session decode in order, so an
   * utterance's last decode is the one its final showed.
   */
  async decode<R extends { text: string; tokens: readonly { id: number }[] }>(
    final: { utterance: number; start: number },
    audio: Float32Array,
    sampleRate: number,
    tokenizer: WhisperTokenizer,
    decode: (continueFrom?: Continuation) => Promise<R>,
    shows: (result: R) => boolean,
  ): Promise<R> {
    const before = this.#decoded.get(final.utterance - 1);
    const continueFrom =
      this.#enabled && before !== undefined
        ? continuationFor(before, final.start, audio.length, sampleRate, tokenizer)
        : null;
    let result = await decode(continueFrom ?? undefined);
    if (continueFrom) {
      this.counts.decodes += 1;
      const context = tokenizer.decode(continueFrom.tokens.filter((id) => tokenizer.isText(id)));
      if (!shows(result) || rereads(context, result.text)) {
        this.counts.decodedAlone += 1;
        result = await decode();
      }
    }
    for (const utterance of this.#decoded.keys()) {
      if (utterance < final.utterance - 1) this.#decoded.delete(utterance);
    }
    if (shows(result)) {
      const tokens = result.tokens.map((t) => t.id);
      this.#decoded.set(final.utterance, { startSample: final.start, audio, tokens });
    } else {
      this.#decoded.delete(final.utterance);
    }
    return result;
  }
}

/** Lowercase words without punctuation, for comparing texts. */
function words(text: string): string[] {
  return text
    .toLowerCase()
    .split(/\s+/)
    .map((w) => w.replace(/[^\p{L}\p{N}']/gu, ""))
    .filter((w) => w !== "");
}

/**
 * Whether a continued decode's text opens by reading the context again: its first two words
 * occur together in the context's text. Seen with a 0.6-s pause: after "He was not", the next
 * utterance came back as "He was not, and he'll dispose young man." A sentence that really
 * repeats two words across a pause is decoded alone, which costs a decode, never words.
 */
export function rereads(context: string, text: string): boolean {
  const [first, second] = words(text);
  if (first === undefined || second === undefined) return false;
  const before = words(context);
  return before.some((w, i) => w === first && before[i + 1] === second);
}
