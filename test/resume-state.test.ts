import { describe, expect, it } from "vitest";
import {
  KeptAudio,
  parseResumeMessage,
  ResumeState,
  type SessionAnswer,
} from "../public/resume-state.js";
import { pseudoRandomBytes } from "../tools/eval/random";

const FRAME = 640;

/** A stream of `frames` 640-byte frames with distinct contents. */
function stream(frames: number, seed = 1): Uint8Array {
  return pseudoRandomBytes(frames * FRAME, seed);
}

function produce(audio: KeptAudio, bytes: Uint8Array, from: number, to: number): void {
  for (let at = from; at < to; at += FRAME) audio.append(bytes.subarray(at, at + FRAME));
}

function session(overrides: Partial<SessionAnswer> = {}): SessionAnswer {
  return {
    type: "EarshotSession",
    sessionId: "3f0c2b1a-0000-4000-8000-000000000001",
    resumed: false,
    audioBytes: 0,
    finals: 0,
    resumeWindowMs: 30_000,
    ...overrides,
  };
}

describe("KeptAudio", () => {
  it("keeps everything from the ack on, forgets below it, and re-sends exactly from an offset", () => {
    const bytes = stream(10);
    const audio = new KeptAudio(1 << 20);
    produce(audio, bytes, 0, 6 * FRAME);
    const sent = audio.takeForWire(Number.POSITIVE_INFINITY);
    expect(sent).toEqual({ offset: 0, bytes: bytes.subarray(0, 6 * FRAME) });
    audio.ack(3 * FRAME + 100); // an ack need not fall on a frame boundary
    expect(audio.keptFrom).toBe(3 * FRAME + 100);
    expect(audio.keptBytes).toBe(3 * FRAME - 100);
    // The connection drops; the source goes on producing.
    produce(audio, bytes, 6 * FRAME, 10 * FRAME);
    audio.rewind(audio.acked);
    const resent: Uint8Array[] = [];
    while (audio.backlog > 0) resent.push(audio.takeForWire(FRAME).bytes);
    const joined = new Uint8Array(resent.reduce((n, b) => n + b.byteLength, 0));
    let at = 0;
    for (const piece of resent) {
      joined.set(piece, at);
      at += piece.byteLength;
    }
    expect(joined).toEqual(bytes.subarray(3 * FRAME + 100));
    expect(() => audio.rewind(3 * FRAME)).toThrow(/forgotten/);
  });

  it("never forgets audio at or above the wire offset, even when an ack runs ahead of it", () => {
    const bytes = stream(8, 2);
    const audio = new KeptAudio(1 << 20);
    produce(audio, bytes, 0, 8 * FRAME);
    audio.takeForWire(8 * FRAME);
    audio.ack(2 * FRAME);
    audio.rewind(2 * FRAME); // a resume re-sends from the last ack…
    audio.ack(6 * FRAME); // …and the server turns out to hold more: still re-sent contiguously
    expect(audio.keptFrom).toBe(2 * FRAME);
    expect(audio.takeForWire(FRAME).bytes).toEqual(bytes.subarray(2 * FRAME, 3 * FRAME));
    expect(audio.keptFrom).toBe(2 * FRAME);
    audio.ack(6 * FRAME);
    expect(audio.keptFrom).toBe(3 * FRAME);
  });

  it("throws on acks a server must not send", () => {
    const audio = new KeptAudio(1 << 20);
    produce(audio, stream(4, 3), 0, 4 * FRAME);
    audio.takeForWire(2 * FRAME);
    expect(() => audio.ack(2 * FRAME + 1)).toThrow(/exceeds/);
    audio.ack(FRAME);
    expect(() => audio.ack(FRAME - 2)).toThrow(/backwards/);
    expect(() => audio.ack(1.5)).toThrow(/byte count/);
    expect(audio.acked).toBe(FRAME);
  });

  it("refuses to grow past its cap instead of dropping audio", () => {
    const audio = new KeptAudio(3 * FRAME);
    produce(audio, stream(3, 4), 0, 3 * FRAME);
    expect(() => audio.append(new Uint8Array(1))).toThrow(/exceed/);
    audio.takeForWire(FRAME);
    audio.ack(FRAME);
    audio.append(new Uint8Array(FRAME));
    expect(audio.produced).toBe(4 * FRAME);
  });
});

describe("parseResumeMessage", () => {
  it("reads EarshotSession and EarshotAck, ignores other types, refuses malformed ones", () => {
    expect(parseResumeMessage({ type: "EarshotAck", audio_bytes: 32_000 })).toEqual({
      type: "EarshotAck",
      audioBytes: 32_000,
    });
    expect(
      parseResumeMessage({
        type: "EarshotSession",
        session_id: "s1",
        resumed: true,
        audio_bytes: 64_000,
        finals: 3,
        resume_window_ms: 30_000,
      }),
    ).toEqual({
      type: "EarshotSession",
      sessionId: "s1",
      resumed: true,
      audioBytes: 64_000,
      finals: 3,
      resumeWindowMs: 30_000,
    });
    expect(parseResumeMessage({ type: "Results", is_final: true })).toBeNull();
    expect(() => parseResumeMessage({ type: "EarshotAck", audio_bytes: -1 })).toThrow();
    expect(() => parseResumeMessage({ type: "EarshotSession", session_id: "s1" })).toThrow();
  });
});

describe("ResumeState", () => {
  it("asks to resume from the last ack with the finals counted, and flags the replays", () => {
    const state = new ResumeState(1 << 20);
    state.started(session());
    produce(state.audio, stream(5, 5), 0, 5 * FRAME);
    state.audio.takeForWire(5 * FRAME);
    state.ack({ type: "EarshotAck", audioBytes: 4 * FRAME });
    expect(state.final()).toBe(false);
    expect(state.resumeParams()).toEqual({
      session_id: session().sessionId,
      resume_offset: String(4 * FRAME),
      finals_received: "1",
    });
    const plan = state.resumed(session({ resumed: true, audioBytes: 5 * FRAME, finals: 3 }));
    expect(plan).toEqual({ replays: 2, resendFrom: 4 * FRAME, serverDrops: FRAME });
    expect(state.audio.wire).toBe(4 * FRAME);
    expect([state.final(), state.final(), state.final()]).toEqual([true, true, false]);
    expect(state.finalsReceived).toBe(4);
  });

  it("refuses resume answers that would lose or duplicate audio or finals", () => {
    const ready = () => {
      const state = new ResumeState(1 << 20);
      state.started(session());
      produce(state.audio, stream(4, 6), 0, 4 * FRAME);
      state.audio.takeForWire(4 * FRAME);
      state.ack({ type: "EarshotAck", audioBytes: 2 * FRAME });
      state.final();
      state.final();
      state.resumeParams();
      return state;
    };
    const bad: Partial<SessionAnswer>[] = [
      { resumed: false, audioBytes: 2 * FRAME, finals: 2 },
      { resumed: true, sessionId: "another", audioBytes: 2 * FRAME, finals: 2 },
      { resumed: true, audioBytes: FRAME, finals: 2 }, // holds less than it acknowledged
      { resumed: true, audioBytes: 5 * FRAME, finals: 2 }, // more than was ever sent
      { resumed: true, audioBytes: 2 * FRAME, finals: 1 }, // fewer finals than the client has
    ];
    for (const answer of bad) expect(() => ready().resumed(session(answer))).toThrow();
    expect(ready().resumed(session({ resumed: true, audioBytes: 2 * FRAME, finals: 2 }))).toEqual({
      replays: 0,
      resendFrom: 2 * FRAME,
      serverDrops: 0,
    });
  });

  it("refuses a first EarshotSession that claims history, and a resume never asked for", () => {
    expect(() => new ResumeState(1024).started(session({ finals: 1 }))).toThrow();
    expect(() => new ResumeState(1024).started(session({ resumed: true }))).toThrow();
    const state = new ResumeState(1024);
    expect(() => state.resumeParams()).toThrow(/never arrived/);
    state.started(session());
    expect(() => state.resumed(session({ resumed: true }))).toThrow(/never asked/);
  });
});
