/**
 * Was a decoded segment speech at all, and what did the VAD hear in it? The evidence (Whisper's
 * no-speech probability and average log-probability, the compression ratio, Silero's per-frame
 * probabilities summarised by `vadEvidence`, including the bursts of speech the repetition guard
 * reads) and the no-speech verdict over it. Pure; fitted and measured in
 * test/whisper-session-no-speech.test.ts and docs/accuracy.md.
 */

/**
 * Whisper's defaults for dropping a window as silence (openai/whisper transcribe: no_speech
 * threshold 0.6, logprob threshold −1): both must hold, because either alone also fires on quiet
 * or unusual speech.
 */
export const NO_SPEECH_THRESHOLD = 0.6;
export const LOGPROB_THRESHOLD = -1;
/**
 * A decode this unsure (average log-probability) is no speech only if other evidence agrees
 * (noSpeechVerdict). Whisper's rule alone kept "Oh," and "Thank you." on two of the four
 * no-speech dev clips (noise at no-speech 0.51, music at 0.10), averaging −1.51 … −2.44; the 12
 * speech clips on whole-clip windows averaged −0.18 … −0.84, but a short segment of real speech
 * scores as low ("ask not" alone: −1.28, no-speech 0.0076), so log-probability alone never drops.
 */
export const HALLUCINATION_LOGPROB_THRESHOLD = -1.2;

/** The VAD's view of one utterance: Silero's per-frame speech probabilities, summarised. */
export interface VadEvidence {
  /** Frames fed (pre-roll included). */
  frames: number;
  /** Frames at or above 0.5, Silero's speech threshold. */
  speechFrames: number;
  /** Mean probability over all frames. */
  meanProbability: number;
  /**
   * Mean probability from the first to the last speech frame (0 without one): how solid the
   * speech is, whatever the pre-roll and trailing silence around it. Speech holds steady;
   * music and noise that Silero mistakes for speech flicker.
   */
  spanProbability: number;
  /** Index of the first frame at or above 0.5 (−1 without one): where speech begins. */
  firstSpeechFrame?: number;
  /**
   * Bursts of speech, in order: runs of frames from one speech frame to the next, apart from the
   * neighbouring bursts by at least BURST_GAP_FRAMES frames below 0.5; each burst's length in
   * frames. Words said with a pause between them are bursts of their own ("five five" is two of
   * 13 and 11 frames; a sentence said in one breath is one). The repetition guard reads them
   * (repetition.ts).
   */
  speechBursts: number[];
}

/**
 * Frames below Silero's threshold that part two bursts of speech: 3 (96 ms). A pause between two
 * words said apart is longer (psx_cards_004's "five five": 5 frames), while the dips inside a
 * phrase said in one go are 1–2 frames ("seven of clubs": one frame).
 */
export const BURST_GAP_FRAMES = 3;

const VAD_SPEECH_PROBABILITY = 0.5;
/**
 * VAD evidence strong enough to keep a low-log-probability decode: the mean speech probability
 * between the first and last speech frame. Measured (test/whisper-session-no-speech.test.ts,
 * docs/accuracy.md): words and word pairs cut from real speech 0.60 … 1.00 (0.86 … 1.00 where
 * Whisper got them right); 2-s windows of noise, music and silence 0.00 … 0.65.
 */
export const VAD_SOLID_SPEECH = 0.75;
/**
 * A no-speech probability below this is Whisper itself sure there is speech, whatever its words
 * score. Measured: every noise, music or silence window that decoded to text had ≥ 0.13, and
 * the only one that could pass the session's VAD gate (music, 17 speech frames) 0.17. Real
 * speech the VAD opened and Whisper doubted: JFK's quiet "ask not" cut short by a 300-ms
 * endpoint 0.008, and through the browser demo (Chromium's fake microphone, the worklet's
 * resampler) 0.011–0.080 at avg log-probability −1.28 … −1.63, VAD span 0.58 (the phrase and
 * the pause after it). It was 0.05, and the demo lost the phrase whenever its decode scored
 * 0.054 (1 run in 3). 0.1 sits between 0.080 and 0.13, about the geometric middle of the
 * speech kept (≤ 0.08) and the gated music (0.17).
 */
export const NO_SPEECH_CONFIDENT = 0.1;
/**
 * Whisper's low no-speech probability vouches for a decode only if its words are not guesses
 * either: average log-probability at or above −2.0. The no-speech probability alone is not
 * enough: the instrumental ns_librosa_vibeace_10_25s.wav, opened as an utterance by the VAD
 * (vad-machine.ts: Silero scores it as speech), decoded at endpointing=10 to "the" at no-speech
 * 0.099 and log-probability −2.72 (VAD span 0.50); its 2-s windows score −2.66 … −2.88. The
 * decodes this side keeps are JFK's "ask not" (−1.28 … −1.63); no speech cut measured relies on
 * it below −1.4 (test/whisper-session-no-speech.test.ts). −2.0 sits between.
 */
export const WHISPER_SURE_LOGPROB_FLOOR = -2;

export function vadEvidence(probabilities: readonly number[]): VadEvidence | undefined {
  if (probabilities.length === 0) return undefined;
  let speechFrames = 0;
  let sum = 0;
  let first = -1;
  let last = -1;
  probabilities.forEach((p, i) => {
    sum += p;
    if (p >= VAD_SPEECH_PROBABILITY) {
      speechFrames++;
      if (first < 0) first = i;
      last = i;
    }
  });
  let span = 0;
  for (let i = first; first >= 0 && i <= last; i++) span += probabilities[i] ?? 0;
  const speechBursts: number[] = [];
  let gap = Number.POSITIVE_INFINITY;
  for (const p of probabilities) {
    if (p < VAD_SPEECH_PROBABILITY) {
      gap++;
      continue;
    }
    if (gap >= BURST_GAP_FRAMES) speechBursts.push(1);
    else speechBursts[speechBursts.length - 1] = (speechBursts.at(-1) ?? 0) + gap + 1;
    gap = 0;
  }
  return {
    frames: probabilities.length,
    speechFrames,
    meanProbability: sum / probabilities.length,
    spanProbability: first < 0 ? 0 : span / (last - first + 1),
    firstSpeechFrame: first,
    speechBursts,
  };
}

/** Everything known about a decoded segment when deciding whether it was speech at all. */
export interface SpeechEvidence {
  /** Null when unknown (a decode that continued the previous utterance): only the VAD can vouch. */
  noSpeechProbability: number | null;
  avgLogprob: number;
  /** Bytes of the text over bytes of its deflate stream (Whisper's compression ratio). */
  compressionRatio: number;
  /** Seconds of audio decoded (before padding). */
  seconds: number;
  /** Absent where no VAD ran (offline scripts): Whisper's evidence alone decides. */
  vad?: VadEvidence;
}

export interface NoSpeechVerdict {
  noSpeech: boolean;
  /** Which rule dropped the text, null when kept. */
  rule: "whisper" | "low-logprob" | null;
}

/**
 * No speech, from all the evidence:
 * - Whisper's own rule: no-speech probability > 0.6 and average log-probability < −1;
 * - or a decode below HALLUCINATION_LOGPROB_THRESHOLD that neither Whisper (no-speech
 *   probability < NO_SPEECH_CONFIDENT with log-probability ≥ WHISPER_SURE_LOGPROB_FLOOR) nor the
 *   VAD (spanProbability ≥ VAD_SOLID_SPEECH) is sure is speech. Without VAD evidence (offline
 *   scripts) only Whisper's side can keep it.
 * Compression ratio and duration are logged with each verdict but decide nothing yet: no
 * no-speech window measured repeated itself (ratios ≤ 0.80), and short speech and short noise
 * overlap in duration.
 */
export function noSpeechVerdict(e: SpeechEvidence): NoSpeechVerdict {
  const noSpeech = e.noSpeechProbability;
  if (noSpeech !== null && noSpeech > NO_SPEECH_THRESHOLD && e.avgLogprob < LOGPROB_THRESHOLD) {
    return { noSpeech: true, rule: "whisper" };
  }
  if (e.avgLogprob < HALLUCINATION_LOGPROB_THRESHOLD) {
    const whisperSure =
      noSpeech !== null &&
      noSpeech < NO_SPEECH_CONFIDENT &&
      e.avgLogprob >= WHISPER_SURE_LOGPROB_FLOOR;
    const vadSure = e.vad !== undefined && e.vad.spanProbability >= VAD_SOLID_SPEECH;
    if (!whisperSure && !vadSure) return { noSpeech: true, rule: "low-logprob" };
  }
  return { noSpeech: false, rule: null };
}
