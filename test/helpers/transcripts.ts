import { plainWord } from "../../src/protocol/messages";
import type { TranscriptWord } from "../../src/stt/transcriber";

/** A sentence's words as the transcriber gives them: one a second, `word` as Whisper's (plainWord). */
export function words(sentence: string): TranscriptWord[] {
  return sentence.split(" ").map((punctuatedWord, i) => ({
    word: plainWord(punctuatedWord),
    punctuatedWord,
    start: i,
    end: i + 0.8,
    confidence: 0.9,
  }));
}
