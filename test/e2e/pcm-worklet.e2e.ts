/**
 * The page's audio thread (public/pcm-worklet.js), run in Node with the two globals an
 * AudioWorkletGlobalScope provides (`sampleRate`, `registerProcessor`) and a stub port: downmix,
 * resampling to 16 kHz (frequency and length kept, content above 8 kHz removed rather than folded
 * into the speech band), PCM16 framing and the flush that Stop relies on.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { describe, expect, it } from "vitest";

const SOURCE = readFileSync(
  path.resolve(import.meta.dirname, "../../public/pcm-worklet.js"),
  "utf8",
);
const RENDER_QUANTUM = 128;
const OUT_RATE = 16_000;
const FRAME_SAMPLES = 800; // 50 ms at 16 kHz

interface Posted {
  type: string;
  pcm?: ArrayBuffer;
  rms?: number;
  peak?: number;
}

interface Processor {
  process(inputs: Float32Array[][]): boolean;
  port: { onmessage: ((event: { data: unknown }) => void) | null };
}

/** A processor as the browser would create it at `rate` Hz, and what it posts. */
function createProcessor(rate: number): { processor: Processor; posted: Posted[] } {
  const posted: Posted[] = [];
  let Registered: (new () => Processor) | undefined;
  class AudioWorkletProcessor {
    port = {
      onmessage: null,
      postMessage: (message: Posted) => posted.push(message),
    };
  }
  const scope = vm.createContext({
    sampleRate: rate,
    AudioWorkletProcessor,
    registerProcessor: (_name: string, processor: new () => Processor) => {
      Registered = processor;
    },
  });
  vm.runInContext(SOURCE, scope);
  if (Registered === undefined) throw new Error("pcm-worklet.js registered no processor");
  return { processor: new Registered(), posted };
}

/** Feeds `seconds` of per-channel signals in render quanta, then flushes; returns the samples. */
function run(
  rate: number,
  channels: ((t: number) => number)[],
  seconds: number,
): { samples: Int16Array; frames: Posted[] } {
  const { processor, posted } = createProcessor(rate);
  const total = Math.round(rate * seconds);
  for (let at = 0; at < total; at += RENDER_QUANTUM) {
    const n = Math.min(RENDER_QUANTUM, total - at);
    const input = channels.map((signal) => {
      const block = new Float32Array(n);
      for (let i = 0; i < n; i++) block[i] = signal((at + i) / rate);
      return block;
    });
    expect(processor.process([input])).toBe(true);
  }
  processor.port.onmessage?.({ data: { type: "flush" } });
  expect(posted.at(-1)?.type).toBe("flushed");
  const frames = posted.filter((m) => m.type === "frame");
  const parts = frames.map((m) => new Int16Array(m.pcm ?? new ArrayBuffer(0)));
  const samples = new Int16Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    samples.set(part, offset);
    offset += part.length;
  }
  return { samples, frames };
}

const sine = (hz: number, amplitude: number) => (t: number) =>
  amplitude * Math.sin(2 * Math.PI * hz * t);

function rms(samples: Int16Array, from = 0, to = samples.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += ((samples[i] ?? 0) / 32768) ** 2;
  return Math.sqrt(sum / (to - from));
}

/** Frequency from upward zero crossings over the middle of the signal (edges skipped). */
function frequency(samples: Int16Array): number {
  const from = Math.floor(samples.length * 0.1);
  const to = Math.floor(samples.length * 0.9);
  const crossings: number[] = [];
  for (let i = from + 1; i < to; i++) {
    if ((samples[i - 1] ?? 0) < 0 && (samples[i] ?? 0) >= 0) crossings.push(i);
  }
  const first = crossings[0] ?? 0;
  const last = crossings.at(-1) ?? 0;
  return ((crossings.length - 1) * OUT_RATE) / (last - first);
}

describe("pcm-worklet.js", () => {
  for (const rate of [48_000, 44_100, 16_000]) {
    it(`turns ${rate} Hz into 16 kHz: same length in time, same pitch, same level`, () => {
      const { samples } = run(rate, [sine(440, 0.5)], 2);
      // 2 s at 16 kHz; the filter holds back at most its half-width (< 30 input samples).
      expect(samples.length).toBeLessThanOrEqual(2 * OUT_RATE);
      expect(samples.length).toBeGreaterThanOrEqual(2 * OUT_RATE - 12);
      expect(frequency(samples)).toBeCloseTo(440, 0);
      // A sine of amplitude 0.5 has an RMS of 0.5 / √2.
      expect(rms(samples, 1000, samples.length - 1000)).toBeCloseTo(0.5 / Math.SQRT2, 2);
    });
  }

  it("removes content above 8 kHz instead of folding it into the speech band", () => {
    // 12 kHz at 48 kHz input: plain decimation would alias it to 4 kHz at full level.
    const { samples } = run(48_000, [sine(12_000, 0.5)], 1);
    expect(rms(samples, 500, samples.length - 500)).toBeLessThan(0.5 / Math.SQRT2 / 100); // −40 dB
  });

  it("keeps speech-band content just under the cutoff", () => {
    const { samples } = run(48_000, [sine(6_000, 0.5)], 1);
    expect(rms(samples, 500, samples.length - 500)).toBeGreaterThan((0.5 / Math.SQRT2) * 0.9);
  });

  it("downmixes channels by averaging them", () => {
    const opposite = run(48_000, [sine(440, 0.5), sine(440, -0.5)], 1);
    expect(rms(opposite.samples)).toBeLessThan(1e-4);
    const leftOnly = run(48_000, [sine(440, 0.5), () => 0], 1);
    expect(rms(leftOnly.samples, 1000, leftOnly.samples.length - 1000)).toBeCloseTo(
      0.25 / Math.SQRT2,
      2,
    );
  });

  it("posts 50 ms frames with their level, and the partial last frame on flush", () => {
    const { frames } = run(16_000, [sine(440, 0.5)], 0.33);
    // 0.33 s = 5 280 samples: six 800-sample frames and a 480-sample remainder.
    const lengths = frames.map((f) => (f.pcm?.byteLength ?? 0) / 2);
    expect(lengths).toEqual([800, 800, 800, 800, 800, 800, 480]);
    expect(lengths.slice(0, -1).every((n) => n === FRAME_SAMPLES)).toBe(true);
    for (const frame of frames) {
      expect(frame.rms).toBeCloseTo(0.5 / Math.SQRT2, 1);
      expect(frame.peak).toBeCloseTo(0.5, 1);
    }
  });

  it("clips out-of-range input to full scale instead of wrapping around", () => {
    const { samples } = run(16_000, [() => 1.5], 0.05);
    expect(Math.min(...samples)).toBe(32767);
    const negative = run(16_000, [() => -1.5], 0.05);
    expect(Math.max(...negative.samples)).toBe(-32768);
  });
});
