import { describe, expect, it } from "vitest";
import { pseudoRandomBytes } from "../tools/eval/random";
import {
  BYTES_PER_SECOND,
  buildPrograms,
  type Clip,
  clientPauseMs,
  ProgramAudio,
  UNIT_BYTES,
} from "../tools/load/soak/programs.ts";
import { FAST_LEAD_S, IDLE_PROCESSING_RATE, SoloGate } from "../tools/load/soak/solo-gate.ts";
import {
  type ComparableFinal,
  compareFinals,
  joinedText,
  percentile,
  splitSessions,
  tally,
} from "../tools/load/soak/verdict.ts";

function final(
  start: number,
  duration: number,
  transcript: string,
  speechFinal = true,
): ComparableFinal {
  return { start, duration, transcript, speechFinal, fromFinalize: false };
}

describe("compareFinals", () => {
  const reference = [final(0.5, 2, "Ask not."), final(3, 1.5, ""), final(5, 4, "What you can do.")];

  it("accepts only the same finals, in order, with the same boundaries and flags", () => {
    expect(
      compareFinals(
        reference,
        reference.map((f) => ({ ...f })),
      ),
    ).toEqual({
      sameText: true,
      sameFinals: true,
      truncated: false,
      detail: null,
    });
  });

  it("tells a transcript mismatch (cross-talk) from a boundary-only difference", () => {
    const swapped = [reference[0], final(3, 1.5, ""), final(5, 4, "Go forward ten meters.")];
    const crossTalk = compareFinals(reference, swapped as ComparableFinal[]);
    expect(crossTalk.sameText).toBe(false);
    expect(crossTalk.sameFinals).toBe(false);
    expect(crossTalk.detail).toContain("final #3");
    expect(crossTalk.truncated).toBe(false);

    const shifted = reference.map((f, i) => (i === 2 ? { ...f, start: 5.032 } : f));
    expect(compareFinals(reference, shifted)).toMatchObject({ sameText: true, sameFinals: false });
    const flagged = reference.map((f, i) => (i === 0 ? { ...f, speechFinal: false } : f));
    expect(compareFinals(reference, flagged).sameFinals).toBe(false);
  });

  it("counts a missing or duplicated final as a difference", () => {
    expect(compareFinals(reference, reference.slice(0, 2))).toMatchObject({
      sameText: false,
      sameFinals: false,
      truncated: true, // every final received was right: the session stopped early
    });
    const wrongThenMissing = [final(0.5, 2, "Ask not?")];
    expect(compareFinals(reference, wrongThenMissing).truncated).toBe(false);
    const duplicated = [...reference, reference[2] as ComparableFinal];
    expect(compareFinals(reference, duplicated)).toMatchObject({
      sameFinals: false,
      truncated: false,
    });
    // An extra empty final keeps the joined text but is still a different transcript.
    const extraEmpty = [...reference, final(9, 0, "")];
    expect(compareFinals(reference, extraEmpty)).toMatchObject({
      sameText: true,
      sameFinals: false,
    });
  });

  it("joins non-empty finals with single spaces", () => {
    expect(joinedText(reference)).toBe("Ask not. What you can do.");
  });
});

describe("soak statistics", () => {
  it("takes nearest-rank percentiles", () => {
    const values = [50, 10, 40, 20, 30];
    expect(percentile(values, 0.5)).toBe(30);
    expect(percentile(values, 0.95)).toBe(50);
    expect(percentile(values, 0)).toBe(10);
    expect(percentile([], 0.5)).toBeNull();
  });

  it("splits sessions over three accounts with different limits", () => {
    expect(splitSessions(34)).toEqual([17, 11, 6]);
    for (const n of [3, 4, 5, 6, 9, 30, 31, 50]) {
      const limits = splitSessions(n);
      expect(limits.reduce((a, b) => a + b, 0)).toBe(n);
      expect(Math.min(...limits)).toBeGreaterThanOrEqual(1);
      if (n >= 6) expect(new Set(limits).size).toBe(3);
    }
    expect(() => splitSessions(2)).toThrow();
  });

  it("tallies reasons, most frequent first", () => {
    expect(Object.entries(tally(["429 A", "503 B", "429 A"]))).toEqual([
      ["429 A", 2],
      ["503 B", 1],
    ]);
  });
});

describe("soak programs", () => {
  const clips: Clip[] = Array.from({ length: 6 }, (_, i) => ({
    id: `clip${i}`,
    pcm: pseudoRandomBytes((2 + i) * BYTES_PER_SECOND + 101, i + 1),
    speech: i % 3 !== 0,
  }));
  const options = { clips, sessionsPerAccount: [6, 4, 2], seconds: 60, seed: 7, resume: true };

  it("are reproducible from the seed and all different", () => {
    const programs = buildPrograms(options);
    expect(buildPrograms(options)).toEqual(programs);
    expect(programs).toHaveLength(12);
    const keys = programs.map((p) => JSON.stringify([p.segments, p.query]));
    expect(new Set(keys).size).toBe(12);
    expect(buildPrograms({ ...options, seed: 8 })).not.toEqual(programs);
    expect(new Set(programs.map((p) => p.behaviour))).toEqual(
      new Set(["realtime", "fast", "pauses", "resume"]),
    );
    expect(programs.filter((p) => p.account === 2)).toHaveLength(2);
  });

  it("last as long as the run at their pace, and drop in speech or just after its endpoint", () => {
    let afterEndpoint = 0;
    for (const program of buildPrograms(options)) {
      const wallSeconds =
        program.totalBytes / BYTES_PER_SECOND / program.pace +
        program.pauses.reduce((n, p) => n + p.ms / 1000, 0);
      expect(wallSeconds).toBeGreaterThanOrEqual(60);
      expect(wallSeconds).toBeLessThan(60 + 15);
      expect(program.totalBytes % UNIT_BYTES).toBe(0);
      if (program.behaviour !== "resume") expect(program.drops).toEqual([]);
      else expect(program.drops).toHaveLength(2);
      const endpointingMs = Number(program.query.endpointing ?? 500);
      let at = 0;
      const speech: [number, number][] = [];
      const clipStarts: number[] = [];
      for (const segment of program.segments) {
        if (segment.kind === "clip") clipStarts.push(at);
        if (segment.kind === "clip" && Number(segment.clip.slice(4)) % 3 !== 0) {
          speech.push([at, at + segment.bytes]);
        }
        at += segment.bytes;
      }
      for (const drop of program.drops) {
        if (drop.kind === "mid-utterance") {
          expect(speech.some(([from, to]) => drop.atByte > from && drop.atByte < to)).toBe(true);
        } else {
          afterEndpoint += 1;
          const end = speech.find(
            ([, to]) => drop.atByte > to && drop.atByte - to < BYTES_PER_SECOND * 2,
          );
          expect(end).toBeDefined();
          const msAfter = ((drop.atByte - (end?.[1] ?? 0)) / BYTES_PER_SECOND) * 1000;
          expect(msAfter).toBeGreaterThanOrEqual(endpointingMs);
          // Still in the silence after it: the next clip starts later.
          expect(clipStarts.find((start) => start >= (end?.[1] ?? 0)) ?? Infinity).toBeGreaterThan(
            drop.atByte,
          );
        }
      }
    }
    expect(afterEndpoint).toBeGreaterThan(0);
    expect(
      buildPrograms({ ...options, resume: false }).every((p) => p.behaviour !== "resume"),
    ).toBe(true);
  });

  it("stream exactly their segments: clip bytes and silence, at any read size", () => {
    const [program] = buildPrograms(options);
    if (program === undefined) throw new Error("no program");
    const audio = new ProgramAudio(program, clips);
    const whole = audio.read(0, audio.totalBytes);
    let at = 0;
    for (const segment of program.segments) {
      const piece = whole.subarray(at, at + segment.bytes);
      if (segment.kind === "silence") expect(piece.every((b) => b === 0)).toBe(true);
      else {
        const clip = clips.find((c) => c.id === segment.clip);
        expect(piece).toEqual(clip?.pcm.subarray(0, segment.bytes));
      }
      at += segment.bytes;
    }
    const pieces: number[] = [];
    for (let offset = 0; offset < audio.totalBytes; offset += 3_331) {
      pieces.push(...audio.read(offset, 3_331));
    }
    expect(new Uint8Array(pieces)).toEqual(whole);
  });
});

describe("SoloGate", () => {
  const results = (start: number, duration: number, isFinal: boolean, speechFinal: boolean) => ({
    type: "Results",
    start,
    duration,
    is_final: isFinal,
    speech_final: speechFinal,
  });

  it("goes fast while the server is visibly close behind, real time when it is not", () => {
    const gate = new SoloGate(16);
    expect(gate.pace(0, 0)).toBe(16);
    expect(gate.pace(FAST_LEAD_S - 0.1, 0)).toBe(16);
    expect(gate.pace(FAST_LEAD_S, 0)).toBe(1);
    gate.observe({ type: "SpeechStarted", timestamp: 4 });
    expect(gate.pending).toBe(1);
    expect(gate.pace(4 + FAST_LEAD_S - 0.1, 0)).toBe(16);
    expect(gate.pace(4 + FAST_LEAD_S, 0)).toBe(1);
    gate.observe(results(4, 2, false, false)); // an interim moves the watermark, not the count
    expect(gate.watermark).toBe(6);
    expect(gate.pending).toBe(1);
    gate.observe({ type: "SpeechStarted", timestamp: 7 });
    expect(gate.pending).toBe(2);
    expect(gate.pace(7.5, 0)).toBe(1); // two utterances waiting: Whisper is behind
    gate.observe(results(3.9, 3, true, true));
    expect(gate.pending).toBe(1);
    expect(gate.pace(7.5, 0)).toBe(16);
    gate.observe(results(7, 15, true, false)); // a max-length cut: not the end of the utterance
    expect(gate.pending).toBe(1);
    expect(gate.watermark).toBe(22);
    gate.observe(results(22, 1, true, true));
    gate.observe({ type: "UtteranceEnd", last_word_end: 23.5 });
    expect(gate.pending).toBe(0);
    expect(gate.watermark).toBe(23.5);
    expect(gate.pace(30, 0)).toBe(16);
  });

  it("ignores messages without positions", () => {
    const gate = new SoloGate(8);
    gate.observe({ type: "Metadata", duration: 99 });
    gate.observe({ type: "SpeechStarted", timestamp: "soon" });
    expect(gate.watermark).toBe(0);
    expect(gate.pending).toBe(1);
  });

  it("lets time stand for progress between utterances, never while one is pending", () => {
    const gate = new SoloGate(32);
    expect(gate.pace(9, 0)).toBe(32);
    expect(gate.pace(12, 0)).toBe(1); // 12 s sent, nothing reported yet
    // Half a second later the idle server has processed 0.5 × IDLE_PROCESSING_RATE more seconds.
    expect(gate.processed(12, 500)).toBeCloseTo(0.5 * IDLE_PROCESSING_RATE);
    expect(gate.pace(12, 1_000)).toBe(32);
    expect(gate.processed(12, 60_000)).toBe(12); // never past what was sent
    gate.observe({ type: "SpeechStarted", timestamp: 12.5 });
    expect(gate.processed(30, 120_000)).toBe(12.5); // pending: the clock means nothing
    expect(gate.pace(23, 120_000)).toBe(1);
  });
});

describe("clientPauseMs", () => {
  // A pause of 5.2 s before byte 52.6 s, as seed 1's s03 had at 8 sessions.
  const pauses = [{ atByte: 52.6 * BYTES_PER_SECOND, ms: 5_200 }];

  it("counts a pause of the program's between a final's last byte and its endpoint's decision", () => {
    const lastByte = 52.352 * BYTES_PER_SECOND;
    expect(clientPauseMs({ pauses, query: {} }, lastByte)).toBe(5_200); // the default endpointing
    expect(clientPauseMs({ pauses, query: { endpointing: "300" } }, lastByte)).toBe(5_200);
  });

  it("does not count a pause before the final's end, or after its decision", () => {
    expect(clientPauseMs({ pauses, query: {} }, 52.7 * BYTES_PER_SECOND)).toBe(0);
    expect(clientPauseMs({ pauses, query: { endpointing: "300" } }, 52.2 * BYTES_PER_SECOND)).toBe(
      0,
    );
    expect(clientPauseMs({ pauses, query: {} }, 52.0 * BYTES_PER_SECOND)).toBe(0);
    expect(clientPauseMs({ pauses: [], query: {} }, 52.352 * BYTES_PER_SECOND)).toBe(0);
  });
});
