/**
 * End of speech → final per session (src/session/final-latency.ts): which speech end a final
 * answers, the histogram's percentiles and its caps. The session's use of it (receipt times,
 * finals, the metrics point) is in metrics.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  FinalLatencies,
  LATENCY_MAX_MS,
  PENDING_SPEECH_ENDS_CAP,
} from "../src/session/final-latency";

const SECOND = 16_000;

describe("final latency", () => {
  it("times a final from the receipt of the speech end inside it", () => {
    const latencies = new FinalLatencies();
    latencies.speechEnded(2 * SECOND, 1_000);
    // A final that ends before the speech end (a max-length cut would) does not answer it…
    expect(latencies.finalSent(0, 1.5 * SECOND, 1_100)).toBeNull();
    // …the final that covers it does, measured from the speech's arrival, not from the end event.
    expect(latencies.finalSent(0, 2.2 * SECOND, 1_245)).toBe(245);
    // Answered once.
    expect(latencies.finalSent(0, 2.2 * SECOND, 1_300)).toBeNull();
    expect(latencies.summary()).toEqual({ timed: 1, p50Ms: 250, p95Ms: 250, overflowed: 0 });
  });

  it("drops speech ends whose final never came, and keeps later ones for later finals", () => {
    const latencies = new FinalLatencies();
    latencies.speechEnded(1 * SECOND, 100); // its utterance had no final
    latencies.speechEnded(3 * SECOND, 300);
    latencies.speechEnded(5 * SECOND, 500);
    expect(latencies.finalSent(2 * SECOND, 3 * SECOND, 420)).toBe(120);
    expect(latencies.finalSent(4 * SECOND, 5.5 * SECOND, 530)).toBe(30);
    expect(latencies.summary().timed).toBe(2);
  });

  it("reports nearest-rank percentiles as bucket upper edges", () => {
    const latencies = new FinalLatencies();
    // 1, 11, 21, … 191 ms: 20 finals, one per 10-ms bucket.
    for (let i = 0; i < 20; i++) {
      latencies.speechEnded(i * SECOND, 0);
      latencies.finalSent(i * SECOND, i * SECOND, 1 + 10 * i);
    }
    // Rank 10 is 91 ms (bucket [90, 100)), rank 19 is 181 ms (bucket [180, 190)).
    expect(latencies.summary()).toEqual({ timed: 20, p50Ms: 100, p95Ms: 190, overflowed: 0 });
    expect(new FinalLatencies().summary()).toEqual({
      timed: 0,
      p50Ms: null,
      p95Ms: null,
      overflowed: 0,
    });
  });

  it("caps what it holds: latencies past the last bucket, and pending speech ends", () => {
    const latencies = new FinalLatencies();
    latencies.speechEnded(SECOND, 0);
    expect(latencies.finalSent(0, SECOND, 10 * LATENCY_MAX_MS)).toBe(10 * LATENCY_MAX_MS);
    expect(latencies.summary().p95Ms).toBe(LATENCY_MAX_MS);

    const full = new FinalLatencies();
    for (let i = 0; i <= PENDING_SPEECH_ENDS_CAP; i++) full.speechEnded(i * SECOND, i);
    // The oldest was dropped: a final over it finds the next one instead.
    expect(full.finalSent(0, 1 * SECOND, 100)).toBe(99);
    expect(full.summary().overflowed).toBe(1);
  });
});
