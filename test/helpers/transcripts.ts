import type { TranscriptWord } from "../../src/stt/transcriber";

/** A sentence's words as the transcriber gives them: one a second, `word` lowercase, unpunctuated. */
export function words(sentence: string): TranscriptWord[] {
  return sentence.split(" ").map((punctuatedWord, i) => ({
    word: punctuatedWord.toLowerCase().replace(/[^\p{L}\p{N}'’]/gu, ""),
    punctuatedWord,
    start: i,
    end: i + 0.8,
    confidence: 0.9,
  }));
}
