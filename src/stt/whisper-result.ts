/**
 * From one Whisper decode to the Transcript a session emits: nothing when it has no text or the
 * no-speech verdict drops it, else its words on the session's timeline, the first segment's words
 * moved to where the VAD heard speech begin.
 */
import type { Logger } from "../runtime/log";
import { VAD_FRAME_SAMPLES } from "../vad/silero";
import { TRANSCRIBER_SAMPLE_RATE, type Transcript, type TranscriptWord } from "./transcriber";
import { noSpeechVerdict, type VadEvidence } from "./whisper/speech-evidence";
import type { transcribe } from "./whisper/transcribe";

export type WhisperResult = Awaited<ReturnType<typeof transcribe>>;

/** Seconds of one VAD frame: the evidence's frame indices count these from the utterance start. */
const VAD_FRAME_SECONDS = VAD_FRAME_SAMPLES / TRANSCRIBER_SAMPLE_RATE;

interface TimedWord {
  word: string;
  punctuatedWord: string;
  start: number;
  end: number;
  confidence: number;
}

/**
 * Whisper opens an utterance's first segment at <|0.00|> even when the pre-roll's silence
 * (speechPadMs, 300 ms) comes before the first word, and shares the segment's span among its
 * words by characters, so every word of that segment came out early. The VAD knows where speech
 * begins: the first segment's words are moved into [onset, segment end], keeping their order and
 * proportions (measured on the aligned LibriVox clips, test/whisper-session-word-timing.test.ts).
 */
function fromOnset(
  words: readonly TimedWord[],
  firstSegment: { start: number; end: number } | undefined,
  onset: number,
): readonly TimedWord[] {
  if (firstSegment === undefined) return words;
  const { start: s0, end: s1 } = firstSegment;
  if (onset <= s0 || onset >= s1) return words;
  const scale = (s1 - onset) / (s1 - s0);
  const move = (t: number) => (t <= s1 ? onset + (Math.max(t, s0) - s0) * scale : t);
  return words.map((w) => (w.start < s1 ? { ...w, start: move(w.start), end: move(w.end) } : w));
}

/** Words of a Whisper transcript on the session's timeline, clamped into [start, end]. */
function sessionWords(words: readonly TimedWord[], offset: number, end: number): TranscriptWord[] {
  return words.map((w) => {
    const start = Math.min(end, offset + Math.max(0, w.start));
    return {
      word: w.word,
      punctuatedWord: w.punctuatedWord,
      start,
      end: Math.min(end, Math.max(start, offset + w.end)),
      confidence: w.confidence,
    };
  });
}

/** Whether a decode shows no words: empty, or dropped as no speech (see toTranscript). */
export function noText(
  result: WhisperResult,
  audio: Float32Array,
  vad: VadEvidence | undefined,
): boolean {
  return result.text === "" || verdictOf(result, audio.length, vad).noSpeech;
}

/**
 * The session's Transcript of a decode of `samples` samples from `startSample`, with the
 * utterance's VAD evidence; a decode dropped as no speech is logged (debug) to `log`.
 */
export function toTranscript(
  log: Logger,
  result: WhisperResult,
  startSample: number,
  samples: number,
  flags: Pick<Transcript, "isFinal" | "speechFinal" | "fromFinalize">,
  vad?: VadEvidence,
): Transcript {
  const start = startSample / TRANSCRIBER_SAMPLE_RATE;
  const end = (startSample + samples) / TRANSCRIBER_SAMPLE_RATE;
  if (result.text === "") return { ...empty(start, flags), end };
  const verdict = verdictOf(result, samples, vad);
  if (verdict.noSpeech) {
    log.debug("dropped as no speech", {
      final: flags.isFinal,
      rule: verdict.rule,
      noSpeech: result.noSpeechProbability,
      avgLogprob: result.avgLogprob,
      compressionRatio: result.compressionRatio,
      seconds: samples / TRANSCRIBER_SAMPLE_RATE,
      vad,
    });
    return { ...empty(start, flags), end };
  }
  return {
    start,
    end,
    text: result.text,
    confidence: result.confidence,
    words: sessionWords(fromOnset(result.words, result.segments[0], onsetSeconds(vad)), start, end),
    ...flags,
  };
}

/** The no-speech decision on a decode of `samples` samples, with the utterance's VAD evidence. */
function verdictOf(result: WhisperResult, samples: number, vad: VadEvidence | undefined) {
  return noSpeechVerdict({
    noSpeechProbability: result.noSpeechProbability,
    avgLogprob: result.avgLogprob,
    compressionRatio: result.compressionRatio,
    seconds: samples / TRANSCRIBER_SAMPLE_RATE,
    ...(vad ? { vad } : {}),
  });
}

/** Where speech begins in the utterance, by its VAD frames (0 when unknown). */
function onsetSeconds(vad: VadEvidence | undefined): number {
  const frame = vad?.firstSpeechFrame ?? -1;
  return frame > 0 ? frame * VAD_FRAME_SECONDS : 0;
}

/** A transcript with no words, at `at`. */
export function empty(
  at: number,
  flags: Pick<Transcript, "isFinal" | "speechFinal" | "fromFinalize">,
): Transcript {
  return { start: at, end: at, text: "", confidence: 0, words: [], ...flags };
}
