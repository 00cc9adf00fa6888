/**
 * A client that sends faster than its session can work, through the real worker and session
 * object, with the fake transcriber. A session falls behind only while an await in its queue is
 * slow — a Whisper inference, its own or another session's in the isolate — so the tests hold the
 * isolate's inference lock (helpers/busy-isolate.ts) for the moment: the queue then fills
 * deterministically. (The same flood with real Whisper as the slow step:
 * whisper-session-faults.test.ts. The cap driven on a LiveSession directly: session-caps.)
 */
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_QUEUED_AUDIO_SECONDS } from "../src/session/caps";
import { createAccount } from "./helpers/accounts";
import { holdInferenceLock } from "./helpers/busy-isolate";
import { DEMO_KEY, frames, TestClient } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import {
  comparable,
  endedSession,
  expectSlotReleased,
  storedFinals,
  transcribe,
  witness,
} from "./helpers/sessions";
import { concat } from "./helpers/typed-arrays";

const Q = "?encoding=linear16&sample_rate=16000";
/** Bytes of one second of 16 kHz linear16. */
const SECOND = 32_000;
/** The queue's cap for 16 kHz linear16, in bytes (live-session.ts: seconds × bytes per second). */
const CAP_BYTES = MAX_QUEUED_AUDIO_SECONDS * SECOND;

let speech: Uint8Array; // sb_spk1_snt1.wav, 2.87 s
let alone: unknown[];

beforeAll(async () => {
  speech = (await wavFixture("sb_spk1_snt1.wav")).pcm;
  alone = comparable((await transcribe(Q, speech, DEMO_KEY)).messages);
});

/**
 * A text frame answered at once, outside the queue (an Error for bad JSON): once its answer is
 * back, every frame sent before it has been looked at, so whether the session closed is settled.
 */
async function barrier(client: TestClient): Promise<void> {
  const before = client.of("Error").length;
  client.socket.send("{barrier");
  await client
    .waitFor((m) => m.type === "Error" && client.of("Error").length > before, "the barrier")
    .catch((error: unknown) => {
      if (!client.isClosed) throw error; // closed instead of answering: settled too
    });
}

describe(`a client sending faster than real time past MAX_QUEUED_AUDIO_SECONDS (${MAX_QUEUED_AUDIO_SECONDS} s)`, () => {
  it("is closed 1008 naming the cap at exactly the cap; everything accepted is transcribed and stored; the slot is freed", async () => {
    const account = await createAccount({ maxConcurrentSessions: 2 });
    const beside = await witness(Q, speech, account.key);
    // 40 s of sentences and pauses in 1-s frames, after the sentence in one frame (whose first
    // VAD frame waits for the lock, so nothing is processed and every accepted byte stays queued).
    const unit = concat([speech, new Uint8Array(SECOND)]);
    const flood = concat(Array.from({ length: 11 }, () => unit)).subarray(0, 40 * SECOND);

    const busy = await holdInferenceLock();
    const client = await TestClient.open(Q, { key: account.key });
    client.sendAudio(speech);
    for (const frame of frames(flood, SECOND)) client.sendAudio(frame);
    const closed = await client.waitClosed();
    // The session beside it ends now, while the isolate is still busy: once the lock is free, the
    // flooded session's 20 s of queued audio go through the VAD in one long run of microtasks,
    // during which no timer (KeepAlive included) can fire; the protocol project's 1.5-s idle
    // timeout could then end a session waiting on KeepAlive. A session that is ending has no
    // idle timer. The barrier's answer shows the socket's messages are being handled; CloseStream
    // follows it on the same socket, before the lock is given back.
    await barrier(beside.client);
    beside.close();
    await busy.release();

    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/^BUF-0000: /);
    expect(closed.reason).toContain(`${MAX_QUEUED_AUDIO_SECONDS} s`); // names the cap
    // Accepted: every frame that still fit under the cap, and not one more.
    const acceptedFlood = Math.floor((CAP_BYTES - speech.byteLength) / SECOND) * SECOND;
    const record = await endedSession(client.sessionId);
    expect(record).toMatchObject({
      closeCode: 1008,
      closeReason: closed.reason,
      bytesReceived: speech.byteLength + acceptedFlood,
    });
    await expectSlotReleased(account, client.sessionId);

    // Transcribed and stored: exactly what a session that received those bytes and closed stores.
    const accepted = concat([speech, flood.subarray(0, acceptedFlood)]);
    const proper = await transcribe(Q, accepted, account.key, SECOND);
    const expected = await storedFinals(account.key, proper.sessionId);
    expect(expected.length).toBeGreaterThan(1);
    expect(await storedFinals(account.key, client.sessionId)).toEqual(expected);

    // The session beside it waited out the busy isolate and heard exactly what it hears alone.
    const besideMessages = await beside.finish();
    expect(comparable(besideMessages.filter((m) => m.type !== "Error"))).toEqual(alone);
  });
});

/**
 * The queue's cap counts audio bytes, but what a queued frame costs the isolate is mostly per
 * frame: a task, its closure, promises and the frame's ArrayBuffer, about 650 bytes of V8 heap
 * (measured in Node's V8 with SerialQueue: 600 000 one-byte tasks = 389 MB). One-byte frames
 * fit 640 000 under the 640 000-byte cap — some 415 MB, over the isolate's 128 MB, which would end
 * every session of the isolate — and control messages (Finalize) are queued without counting at
 * all. So the queue also caps waiting tasks (MAX_QUEUED_TASKS); these tests failed before it did.
 */
describe("a flood of tiny frames", () => {
  /** 20 000 queued tasks ≈ 13 MB of heap: ten times what a 2 000-task cap would allow. */
  const FRAMES = 20_000;

  async function floodedSession(send: (client: TestClient) => void) {
    const account = await createAccount({ maxConcurrentSessions: 1 });
    const busy = await holdInferenceLock();
    const client = await TestClient.open(Q, { key: account.key });
    let closedWhileFlooding: boolean;
    try {
      client.sendAudio(speech); // waits for the lock: everything after it queues
      for (let i = 0; i < FRAMES && !client.isClosed; i++) send(client);
      await barrier(client);
      closedWhileFlooding = client.isClosed;
    } finally {
      await busy.release();
    }
    // Either way the session ends and gives its slot back.
    const settled = client.isClosed ? await client.closed : (await client.finish()).closed;
    await endedSession(client.sessionId);
    await expectSlotReleased(account, client.sessionId);
    return { closedWhileFlooding, settled };
  }

  it("is refused (1008 BUF-0000) when one-byte audio frames pile up", async () => {
    const one = new Uint8Array(1);
    const { closedWhileFlooding, settled } = await floodedSession((c) => c.sendAudio(one));
    expect(closedWhileFlooding).toBe(true);
    expect(settled.code).toBe(1008);
    expect(settled.reason).toMatch(/^BUF-0000/);
  });

  it("is refused (1008 BUF-0000) when Finalize messages pile up", async () => {
    const { closedWhileFlooding, settled } = await floodedSession((c) =>
      c.sendJson({ type: "Finalize" }),
    );
    expect(closedWhileFlooding).toBe(true);
    expect(settled.code).toBe(1008);
    expect(settled.reason).toMatch(/^BUF-0000/);
  });
});
