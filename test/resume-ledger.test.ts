/**
 * The resume ledger alone (src/session/resume-ledger.ts): the rules a resumable session keeps
 * across sockets, without a socket. The same rules end to end, with real sockets and a broken
 * connection, are in session-resume.test.ts and whisper-session-resume.test.ts.
 */
import { describe, expect, it } from "vitest";
import { type ResumeConditions, ResumeLedger } from "../src/session/resume-ledger";

const RAW: ResumeConditions = {
  ending: false,
  resumable: true,
  container: null,
  formatKnown: true,
};

function resume(resumeOffset: number, finalsReceived = 0) {
  return { sessionId: "s", resumeOffset, finalsReceived };
}

/** A ledger that has accepted `bytes` and numbered `finals`, on its first socket. */
function ledgerWith(bytes: number, finals = 0, ackEveryBytes = 1000) {
  const ledger = new ResumeLedger({ resumable: true, ackEveryBytes });
  ledger.attached(null);
  ledger.accept(bytes);
  for (let i = 0; i < finals; i++) ledger.numberFinal();
  return ledger;
}

describe("which resumes may attach", () => {
  it("accepts any offset up to the bytes held and any count up to the finals produced", () => {
    const ledger = ledgerWith(5000, 3);
    for (const offset of [0, 1, 4999, 5000]) {
      for (const finals of [0, 3]) expect(ledger.refusal(resume(offset, finals), RAW)).toBeNull();
    }
  });

  it("refuses an offset past the bytes held: 409 RESUME_GAP naming both numbers", () => {
    const refusal = ledgerWith(5000).refusal(resume(5001), RAW);
    expect(refusal).toMatchObject({ status: 409, errCode: "RESUME_GAP" });
    expect(refusal?.message).toContain("resume_offset 5001 is past the 5000 audio bytes");
  });

  it("refuses more finals than were produced", () => {
    const refusal = ledgerWith(5000, 2).refusal(resume(0, 3), RAW);
    expect(refusal).toMatchObject({ status: 409, errCode: "RESUME_GAP" });
    expect(refusal?.message).toContain("finals_received 3 is more than the 2 finals");
  });

  it("refuses an ended session 410, a session not opened resumable 409", () => {
    const ledger = ledgerWith(10);
    expect(ledger.refusal(resume(0), { ...RAW, ending: true })).toMatchObject({
      status: 410,
      errCode: "SESSION_ENDED",
    });
    expect(ledger.refusal(resume(0), { ...RAW, resumable: false })).toMatchObject({
      status: 409,
      errCode: "NOT_RESUMABLE",
    });
  });

  it("refuses a container, and audio whose format is not settled once bytes arrived", () => {
    const ledger = ledgerWith(10);
    const wav = ledger.refusal(resume(0), { ...RAW, container: "wav" });
    expect(wav).toMatchObject({ status: 409, errCode: "NOT_RESUMABLE" });
    expect(wav?.message).toContain("WAV container");
    const sniffing = ledger.refusal(resume(0), { ...RAW, formatKnown: false });
    expect(sniffing?.message).toContain("not settled");
    // Nothing received yet: nothing to decode wrongly, so the resume may attach.
    const fresh = new ResumeLedger({ resumable: true, ackEveryBytes: 100 });
    expect(fresh.refusal(resume(0), { ...RAW, formatKnown: false })).toBeNull();
  });
});

describe("the audio a resumed client re-sends", () => {
  it("is dropped up to the bytes held, across frames, and what follows is new", () => {
    const ledger = ledgerWith(1000);
    ledger.attached(resume(700)); // 300 bytes re-sent before new audio
    const frames = [new Uint8Array(120), new Uint8Array(120), new Uint8Array(120)];
    frames.forEach((frame, i) => {
      frame.fill(i + 1);
    });
    const fresh = frames.map((frame) => ledger.fresh(frame));
    expect(fresh.map((f) => f.byteLength)).toEqual([0, 0, 60]);
    // The new part is the frame's tail, not a copy of its head.
    expect([...new Set(fresh[2])]).toEqual([3]);
    expect(ledger.fresh(new Uint8Array(50)).byteLength).toBe(50);
  });

  it("is all new when the client resumes from exactly the bytes held", () => {
    const ledger = ledgerWith(1000);
    ledger.attached(resume(1000));
    expect(ledger.fresh(new Uint8Array(10)).byteLength).toBe(10);
  });

  it("cannot attach from an offset refusal() would refuse", () => {
    expect(() => ledgerWith(1000).attached(resume(1001))).toThrow(RangeError);
  });
});

describe("EarshotAck and final numbers", () => {
  it("acks every ackEveryBytes of accepted audio, counted from each attach, with the stream offset", () => {
    const ledger = new ResumeLedger({ resumable: true, ackEveryBytes: 1000 });
    ledger.attached(null);
    const acks = [400, 400, 400, 900, 100].map((bytes) => ledger.accept(bytes));
    expect(acks).toEqual([null, null, 1200, null, 2200]);
    ledger.attached(resume(2200));
    expect(ledger.accept(900)).toBeNull();
    expect(ledger.accept(100)).toBe(3200);
  });

  it("never acks a session that is not resumable, yet counts its bytes", () => {
    const ledger = new ResumeLedger({ resumable: false, ackEveryBytes: 10 });
    ledger.attached(null);
    expect([ledger.accept(100), ledger.accept(100)]).toEqual([null, null]);
    expect(ledger.bytesAccepted).toBe(200);
  });

  it("numbers finals 0, 1, 2… in the order produced", () => {
    const ledger = ledgerWith(0);
    expect([ledger.numberFinal(), ledger.numberFinal(), ledger.numberFinal()]).toEqual([0, 1, 2]);
    expect(ledger.finals).toBe(3);
  });
});
