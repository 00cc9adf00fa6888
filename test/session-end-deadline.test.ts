/**
 * A session whose ending hangs (a final that never comes) is released at FINISH_DEADLINE_MS, and
 * its end is recorded then: a resume that arrives after must find an ended session, not one whose
 * object was reset (which releases the slot a second time and tells the client its server
 * restarted). The clock is faked; the ending's parts are stubs but for the real queue and input.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { AudioInput } from "../src/audio/audio-input";
import { CLOSE, type CloseSpec } from "../src/protocol/close-codes";
import { createLogger } from "../src/runtime/log";
import { SerialQueue } from "../src/session/serial-queue";
import { type EndingParts, FINISH_DEADLINE_MS, SessionEnd } from "../src/session/session-end";

afterEach(() => {
  vi.useRealTimers();
});

function hangingEnd() {
  const recorded: { code: number; reason: string }[] = [];
  const ended: CloseSpec[] = [];
  const closes: CloseSpec[] = [];
  let finishFinal: () => void = () => {};
  const finalDone = new Promise<void>((resolve) => {
    finishFinal = resolve;
  });
  const parts = {
    sessionId: "s-deadline",
    createdAt: Date.now(),
    model: { name: "fake", version: "0", arch: "fake", uuid: "0" },
    link: { close: (close: CloseSpec) => closes.push(close), send: () => {} },
    queue: new SerialQueue(() => {}),
    audio: new AudioInput("linear16", 16_000),
    pipeline: { push: async () => {}, finalize: () => finalDone },
    transcriber: { close: () => {} },
    store: {
      end: (_bytes: number, code: number, reason: string) => recorded.push({ code, reason }),
    },
    log: createLogger({ sessionId: "s-deadline", accountId: "a-deadline" }),
    finalLatency: () => ({ count: 0 }),
    ended: (close: CloseSpec) => ended.push(close),
  } as unknown as EndingParts;
  return { end: new SessionEnd(parts), recorded, ended, closes, finishFinal };
}

describe(`a session whose ending hangs past FINISH_DEADLINE_MS (${FINISH_DEADLINE_MS / 1000} s)`, () => {
  it("is released and recorded as ended 1011 at the deadline, and recorded once", async () => {
    vi.useFakeTimers();
    const { end, recorded, ended, closes, finishFinal } = hangingEnd();
    end.begin({ kind: "graceful", close: CLOSE.NORMAL });
    await vi.advanceTimersByTimeAsync(FINISH_DEADLINE_MS - 1);
    expect(ended).toEqual([]);
    expect(recorded).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(ended).toEqual([CLOSE.INTERNAL]);
    expect(closes).toContainEqual(CLOSE.INTERNAL);
    expect(recorded).toEqual([{ code: CLOSE.INTERNAL.code, reason: CLOSE.INTERNAL.reason }]);
    // The hung final comes after all: the deadline's record stands, `ended` is not called again.
    finishFinal();
    await vi.runAllTimersAsync();
    expect(recorded).toHaveLength(1);
    expect(ended).toHaveLength(1);
  });
});
