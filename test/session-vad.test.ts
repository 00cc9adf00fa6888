/**
 * Speech detection through the protocol, on every clip of ../shared/eval/dev: speech clips yield
 * utterances inside the clip (SpeechStarted, a speech_final result, UtteranceEnd), clips without
 * speech yield no event at all.
 */
import { describe, expect, it } from "vitest";
import { frames, TestClient } from "./helpers/client";
import { manifest, wavFixture } from "./helpers/fixtures";

const rows = await manifest();
const Q =
  "?encoding=linear16&sample_rate=16000&vad_events=true&interim_results=true&utterance_end_ms=1000";

describe.each(rows)("$file ($category)", ({ file, duration, category }) => {
  it(category === "speech" ? "yields utterances inside the clip" : "yields nothing", async () => {
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
    for (const m of ends) expect(m.last_word_end as number).toBeLessThanOrEqual(duration + 0.1);
  });
});
