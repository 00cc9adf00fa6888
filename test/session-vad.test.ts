/**
 * Speech detection through the protocol, on every clip of ../shared/eval/dev: speech clips yield
 * utterances inside the clip (SpeechStarted, a speech_final result, UtteranceEnd after the last
 * final word, carrying its end), noise and
 * silence yield no event at all; and endpointing below a phrase's pause acts at that pause.
 */
import { describe, expect, it } from "vitest";
import { MIN_ENDPOINTING_MS } from "../src/session/session-config";
import { frames, TestClient } from "./helpers/client";
import { manifest, SILERO_HEARS_SPEECH_IN, wavFixture } from "./helpers/fixtures";
import { concat } from "./helpers/typed-arrays";

const rows = await manifest();
const Q =
  "?encoding=linear16&sample_rate=16000&vad_events=true&interim_results=true&utterance_end_ms=1000";

describe.each(rows)("$file ($category)", ({ file, duration, category }) => {
  const title =
    category === "speech"
      ? "yields utterances inside the clip"
      : SILERO_HEARS_SPEECH_IN.has(file)
        ? "yields events only inside the clip"
        : "yields nothing";
  it(title, async () => {
    const { pcm, sampleRate } = await wavFixture(file);
    expect(sampleRate).toBe(16_000);
    const client = await TestClient.open(Q);
    for (const frame of frames(pcm, 640)) client.sendAudio(frame);
    // 1.2 s of silence after the clip, so the endpoint and UtteranceEnd can happen.
    for (const frame of frames(new Uint8Array(38_400), 640)) client.sendAudio(frame);
    await client.finish();
    const started = client.of("SpeechStarted");
    const finals = client
      .of("Results")
      .filter((m) => m.is_final === true && m.from_finalize !== true);
    // With the fingerprint transcriber, only where the music clip's events fall is checked.
    if (SILERO_HEARS_SPEECH_IN.has(file)) {
      for (const m of started) expect(m.timestamp as number).toBeLessThan(duration);
      for (const m of finals) expect(m.start as number).toBeLessThan(duration);
      return;
    }
    if (category !== "speech") {
      expect(started).toEqual([]);
      expect(finals).toEqual([]);
      expect(client.of("UtteranceEnd")).toEqual([]);
      return;
    }
    expect(started.length).toBeGreaterThan(0);
    expect(finals.length).toBeGreaterThan(0);
    expect(finals.some((m) => m.speech_final === true)).toBe(true);
    for (const m of started) expect(m.timestamp as number).toBeLessThan(duration);
    for (const m of finals) {
      expect(m.start as number).toBeGreaterThanOrEqual(0);
      // Speech ends inside the clip; the final may include the trailing silence that ended it.
      expect(m.start as number).toBeLessThan(duration);
    }
    const ends = client.of("UtteranceEnd");
    expect(ends.length).toBeGreaterThan(0);
    // Deepgram's gap is "after the last finalized word": each UtteranceEnd carries the end of the
    // last word of the finals since the one before, and follows at least one word.
    let lastWordEnd: number | null = null;
    for (const m of client.messages) {
      if (m.type === "UtteranceEnd") {
        expect(lastWordEnd).not.toBeNull();
        expect(m.last_word_end).toBe(lastWordEnd);
        lastWordEnd = null;
      }
      const words = (m.channel as { alternatives?: { words: { end: number }[] }[] } | undefined)
        ?.alternatives?.[0]?.words;
      const last = words?.at(-1);
      if (m.type === "Results" && m.is_final === true && last !== undefined) {
        lastWordEnd = Math.max(lastWordEnd ?? 0, last.end);
      }
    }
  });
});

describe("endpointing shorter than a phrase's pause (MIN_ENDPOINTING_MS)", () => {
  /** Utterances ended by silence at endpointing=10: sb_spk1_snt1 with `pause` s put in at 1.696 s. */
  async function endpointFinals(pause: number) {
    const { pcm } = await wavFixture("sb_spk1_snt1.wav");
    const at = Math.round(1.696 * 16_000) * 2; // after "hurt": the clip's own gap there is short
    const gap = new Uint8Array(Math.round(pause * 16_000) * 2);
    const audio = concat([pcm.subarray(0, at), gap, pcm.subarray(at), new Uint8Array(38_400)]);
    const client = await TestClient.open(`${Q}&endpointing=10`);
    for (const frame of frames(audio, 640)) client.sendAudio(frame);
    await client.finish();
    return client.of("Results").filter((m) => m.speech_final === true);
  }

  it(`acts at ${MIN_ENDPOINTING_MS} ms: a gap inside a phrase does not end the utterance`, async () => {
    // Cut here at a one-frame endpoint before the floor: "this small dog" (docs/accuracy.md).
    expect(await endpointFinals(0)).toHaveLength(1);
  });

  it("a pause longer than that does", async () => {
    const finals = await endpointFinals(0.4);
    expect(finals).toHaveLength(2);
    // Cut in the pause put in (1.696–2.096 s): the first ends after "hurt", the second starts
    // before "the small dog".
    const [first, second] = finals.map((m) => [m.start as number, m.duration as number]);
    expect((first?.[0] ?? 0) + (first?.[1] ?? 0)).toBeGreaterThan(1.696);
    expect((first?.[0] ?? 0) + (first?.[1] ?? 0)).toBeLessThanOrEqual(second?.[0] ?? 0);
    expect(second?.[0]).toBeLessThan(2.096);
  });
});
