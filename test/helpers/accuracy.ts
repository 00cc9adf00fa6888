/**
 * Accuracy runs through the real session: stream a clip into `/v1/listen`, collect its finals,
 * score them, and summarise many clips as a table (WER, deletions vs insertions, per category).
 * Used by test/whisper-session-accuracy.test.ts; pure apart from `streamClip`.
 */
import { expect } from "vitest";
import { deletionRuns, type WerResult, wordErrorRate } from "../../tools/eval/wer";
import { frames, type ServerJson, TestClient } from "./client";
import { concat } from "./typed-arrays";

export { deletionRuns };

/** 1.5 s of silence after the clip: enough for the longest endpoint tested (500 ms) and VAD lag. */
const TRAILING_SILENCE = new Uint8Array(1.5 * 32_000);

interface Alternative {
  transcript: string;
  words: { word: string }[];
}

export function alternative(m: ServerJson): Alternative {
  return (m.channel as { alternatives: [Alternative] }).alternatives[0];
}

export function finalText(client: TestClient): string {
  return client
    .of("Results")
    .filter((m) => m.is_final === true)
    .map((m) => alternative(m).transcript)
    .filter((t) => t !== "")
    .join(" ");
}

/** Every word the session sent, interims included (a no-speech clip must have none at all). */
export function allWords(client: TestClient): string[] {
  return client.of("Results").flatMap((m) => alternative(m).words.map((w) => w.word));
}

/**
 * Streams 16-bit PCM (16 kHz mono) followed by TRAILING_SILENCE in 100-ms frames, as fast as the
 * session takes it (the clips are shorter than the session's 20-s queue cap), then closes.
 */
export async function streamClip(pcm: Uint8Array, query: string): Promise<TestClient> {
  const client = await TestClient.open(query);
  for (const frame of frames(concat([pcm, TRAILING_SILENCE]), 3200)) client.sendAudio(frame);
  const { closed } = await client.finish();
  expect(closed.code).toBe(1000);
  return client;
}

export interface ClipScore {
  id: string;
  category: string;
  hypothesis: string;
  score: WerResult;
}

export interface Totals {
  clips: number;
  words: number;
  errors: number;
  substitutions: number;
  deletions: number;
  insertions: number;
  wer: number;
}

export function totals(scores: readonly ClipScore[]): Totals {
  const sum = (f: (s: WerResult) => number) => scores.reduce((a, s) => a + f(s.score), 0);
  const words = sum((s) => s.referenceWords);
  const errors = sum((s) => s.errors);
  return {
    clips: scores.length,
    words,
    errors,
    substitutions: sum((s) => s.substitutions),
    deletions: sum((s) => s.deletions),
    insertions: sum((s) => s.insertions),
    wer: words > 0 ? errors / words : 0,
  };
}

function row(label: string, t: Totals): string {
  return `| ${label} | ${t.clips} | ${t.words} | ${t.wer.toFixed(3)} | ${t.substitutions} | ${t.deletions} | ${t.insertions} |`;
}

/** A Markdown table: all clips, then one row per category. */
export function report(title: string, scores: readonly ClipScore[]): string {
  const categories = [...new Set(scores.map((s) => s.category))];
  const lines = [
    `### ${title}`,
    "| clips | n | words | WER | sub | del | ins |",
    "|---|---|---|---|---|---|---|",
    row("all", totals(scores)),
    ...categories.map((c) => row(c, totals(scores.filter((s) => s.category === c)))),
    "",
    ...scores.map(
      (s) =>
        `${s.id}: ${s.score.errors}/${s.score.referenceWords} (del ${s.score.deletions}, ins ${s.score.insertions}) "${s.hypothesis}"`,
    ),
  ];
  return lines.join("\n");
}

export function scoreClip(
  id: string,
  category: string,
  reference: string,
  hypothesis: string,
): ClipScore {
  return { id, category, hypothesis, score: wordErrorRate(reference, hypothesis) };
}
