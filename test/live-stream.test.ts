/**
 * public/live-stream.js, the audio stream both clients run (the demo page and the Node client):
 * what it holds, sends, re-sends and at what pace, driven through fake connections.
 */
import { describe, expect, it } from "vitest";
import { LiveStream, type StreamSocket } from "../public/live-stream.js";
import { pseudoRandomBytes } from "../tools/eval/random";
import { concat } from "./helpers/typed-arrays";

const FRAME = 640;
const BYTES_PER_SECOND = 32_000;
const SESSION_ID = "3f0c2b1a-0000-4000-8000-000000000001";

/** A connection that records what it was sent, and can refuse (a closing socket). */
class FakeSocket implements StreamSocket {
  readonly sent: Uint8Array[] = [];
  readonly sentAt: number[] = [];
  open = true;
  send(bytes: Uint8Array<ArrayBuffer>): boolean {
    if (!this.open) return false;
    this.sent.push(bytes.slice());
    this.sentAt.push(performance.now());
    return true;
  }
  get bytes(): Uint8Array {
    return concat(this.sent);
  }
}

function resumable(overrides: Partial<ConstructorParameters<typeof LiveStream>[0]> = {}) {
  const sentOffsets: Array<[number, number]> = [];
  const lost: Error[] = [];
  const stream = new LiveStream({
    maxKeptBytes: 20 * BYTES_PER_SECOND,
    bytesPerSecond: BYTES_PER_SECOND,
    frameBytes: FRAME,
    onAudioSent: (offset, length) => sentOffsets.push([offset, length]),
    onResumeLost: (error) => lost.push(error),
    ...overrides,
  });
  return { stream, sentOffsets, lost };
}

const session = (fields: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: "EarshotSession",
    session_id: SESSION_ID,
    resumed: false,
    audio_bytes: 0,
    finals: 0,
    resume_window_ms: 30_000,
    ...fields,
  });
const ack = (audioBytes: number) => JSON.stringify({ type: "EarshotAck", audio_bytes: audioBytes });
const final = (text: string) =>
  JSON.stringify({
    type: "Results",
    is_final: true,
    channel: { alternatives: [{ transcript: text }] },
  });

function push(stream: LiveStream, audio: Uint8Array, from: number, to: number): void {
  for (let at = from; at < to; at += FRAME) stream.push(audio.subarray(at, at + FRAME));
}

/** A new session's connection, answered and live. */
function started(stream: LiveStream): FakeSocket {
  const socket = new FakeSocket();
  stream.attach(socket, { resuming: false });
  got(stream, session());
  stream.goLive();
  return socket;
}

/** A message the stream must read as one. */
function got(stream: LiveStream, text: string) {
  const received = stream.receive(text);
  if (received === null) throw new Error(`not read as a message: ${text}`);
  return received;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error("timed out");
    await sleep(5);
  }
}

describe("LiveStream, resumable", () => {
  it("counts the audio the server has not acknowledged, across a drop", () => {
    const { stream } = resumable();
    const audio = pseudoRandomBytes(10 * FRAME, 7);
    const socket = started(stream);
    push(stream, audio, 0, 6 * FRAME);
    expect(stream.unacknowledged).toBe(6 * FRAME);
    expect(stream.unacknowledgedSent).toBe(6 * FRAME);
    got(stream, ack(4 * FRAME));
    expect(stream.unacknowledged).toBe(2 * FRAME);
    expect(stream.unacknowledgedSent).toBe(2 * FRAME);
    // The connection drops; audio spoken meanwhile is unacknowledged too (not yet sent).
    socket.open = false;
    stream.detach(socket);
    push(stream, audio, 6 * FRAME, 10 * FRAME);
    expect(stream.unacknowledged).toBe(6 * FRAME);
    // Sent before the drop and not acknowledged; what waits for a connection was not sent.
    expect(stream.unacknowledgedSent).toBe(2 * FRAME);
  });

  it("keeps audio until its first connection is live, then sends it at once, in order", () => {
    const { stream, sentOffsets } = resumable();
    const audio = pseudoRandomBytes(10 * FRAME, 1);
    push(stream, audio, 0, 4 * FRAME); // spoken while connecting
    const socket = new FakeSocket();
    stream.attach(socket, { resuming: false });
    push(stream, audio, 4 * FRAME, 5 * FRAME); // open, not live yet
    expect(socket.sent).toHaveLength(0);
    stream.goLive();
    expect(socket.bytes).toEqual(audio.subarray(0, 5 * FRAME));
    push(stream, audio, 5 * FRAME, 10 * FRAME); // live: each frame goes at once
    expect(socket.bytes).toEqual(audio);
    expect(sentOffsets.every(([, length]) => length <= FRAME)).toBe(true);
    expect(sentOffsets.map(([offset]) => offset)).toEqual(
      Array.from({ length: 10 }, (_, i) => i * FRAME),
    );
    expect(stream.backlog).toBe(0);
    expect(stream.produced).toBe(10 * FRAME);
  });

  it("resumes from the acknowledged offset: the re-sent audio is exactly the stream from there, paced", async () => {
    const pace = 2;
    const frameBytes = 3_200; // 100 ms: at 2× real time, one frame every 50 ms
    const { stream } = resumable({ frameBytes, backlogPace: pace });
    const audio = pseudoRandomBytes(40 * frameBytes, 2);
    const first = new FakeSocket();
    stream.attach(first, { resuming: false });
    expect(got(stream, session()).plan).toBeNull();
    stream.goLive();
    expect(stream.sessionId).toBe(SESSION_ID);
    push(stream, audio, 0, 10 * frameBytes);
    stream.receive(ack(6 * frameBytes));
    expect(got(stream, final("one")).replay).toBe(false);
    // The network drops; the microphone goes on.
    first.open = false;
    stream.detach(first);
    push(stream, audio, 10 * frameBytes, 14 * frameBytes);
    expect(first.bytes.byteLength).toBe(10 * frameBytes);
    const params = stream.resumeParams();
    expect(params).toEqual({
      session_id: SESSION_ID,
      resume_offset: String(6 * frameBytes),
      finals_received: "1",
    });
    const second = new FakeSocket();
    stream.attach(second, { resuming: true });
    push(stream, audio, 14 * frameBytes, 15 * frameBytes); // before the answer: kept, not sent
    expect(second.sent).toHaveLength(0);
    const answeredAt = performance.now();
    const { plan } = got(
      stream,
      session({ resumed: true, audio_bytes: 8 * frameBytes, finals: 2 }),
    );
    expect(plan).toEqual({ replays: 1, resendFrom: 6 * frameBytes, serverDrops: 2 * frameBytes });
    expect(second.sent).toHaveLength(0); // nothing at once: the backlog goes at the pace
    expect(got(stream, final("two")).replay).toBe(true);
    expect(got(stream, final("three")).replay).toBe(false);
    await until(() => stream.backlog === 0);
    const resent = 15 * frameBytes - 6 * frameBytes;
    expect(second.bytes).toEqual(audio.subarray(6 * frameBytes, 15 * frameBytes));
    expect(second.sent.every((b) => b.byteLength <= frameBytes)).toBe(true);
    // 9 frames at one per 50 ms: the last no sooner than 9 periods after the answer.
    const periodMs = (1000 * frameBytes) / BYTES_PER_SECOND / pace;
    expect(resent / frameBytes).toBe(9);
    expect((second.sentAt.at(-1) ?? 0) - answeredAt).toBeGreaterThanOrEqual(9 * periodMs - 2);
    // Caught up: live again, a new frame goes at once.
    push(stream, audio, 15 * frameBytes, 16 * frameBytes);
    expect(second.bytes).toEqual(audio.subarray(6 * frameBytes, 16 * frameBytes));
    expect(stream.finalsReceived).toBe(3);
    stream.close();
  });

  it("keeps a frame the socket refused (closing) and sends it on the next connection", async () => {
    const { stream } = resumable();
    const audio = pseudoRandomBytes(4 * FRAME, 3);
    const first = started(stream);
    push(stream, audio, 0, 2 * FRAME);
    stream.receive(ack(2 * FRAME));
    first.open = false; // closing, its close event not here yet
    push(stream, audio, 2 * FRAME, 4 * FRAME);
    expect(first.bytes).toEqual(audio.subarray(0, 2 * FRAME));
    expect(stream.backlog).toBe(2 * FRAME);
    stream.detach(first);
    expect(stream.resumeParams()?.resume_offset).toBe(String(2 * FRAME));
    const second = new FakeSocket();
    stream.attach(second, { resuming: true });
    stream.receive(session({ resumed: true, audio_bytes: 2 * FRAME }));
    await until(() => stream.backlog === 0);
    expect(second.bytes).toEqual(audio.subarray(2 * FRAME));
  });

  it("sends up to 1 s of waiting audio at once on a new session's connection, the rest paced", async () => {
    const { stream } = resumable();
    const audio = pseudoRandomBytes(100 * FRAME, 9); // 2 s
    push(stream, audio, 0, 100 * FRAME);
    const socket = new FakeSocket();
    stream.attach(socket, { resuming: false });
    stream.goLive();
    expect(socket.bytes.byteLength).toBe(BYTES_PER_SECOND);
    push(stream, audio.subarray(0, FRAME), 0, FRAME); // arrives during the catch-up: queued behind
    await until(() => stream.backlog === 0);
    expect(socket.bytes).toEqual(concat([audio, audio.subarray(0, FRAME)]));
    stream.close();
  });

  it("stops re-sending when its connection goes, and a late answer after that sends nothing", async () => {
    const frameBytes = 3_200;
    const { stream } = resumable({ frameBytes, backlogPace: 1 });
    const audio = pseudoRandomBytes(20 * frameBytes, 10);
    const first = started(stream);
    push(stream, audio, 0, 2 * frameBytes);
    stream.detach(first);
    push(stream, audio, 2 * frameBytes, 20 * frameBytes);
    stream.resumeParams();
    const second = new FakeSocket();
    stream.attach(second, { resuming: true });
    stream.receive(session({ resumed: true, audio_bytes: 0 }));
    await until(() => second.sent.length >= 2);
    stream.detach(second); // mid re-send: 100 ms a frame, 20 frames
    const sentBefore = second.sent.length;
    await sleep(300);
    expect(second.sent.length).toBe(sentBefore);
    // A resume answered after its connection was given up starts nothing.
    stream.resumeParams();
    const third = new FakeSocket();
    stream.attach(third, { resuming: true });
    stream.detach(third);
    got(stream, session({ resumed: true, audio_bytes: 0 }));
    await sleep(300);
    expect(third.sent).toHaveLength(0);
    expect(second.sent.length).toBe(sentBefore);
    expect(stream.live).toBe(false);
  });

  it("ignores a late close of a connection it has already replaced", () => {
    const { stream } = resumable();
    const audio = pseudoRandomBytes(2 * FRAME, 4);
    const old = new FakeSocket();
    stream.attach(old, { resuming: false });
    stream.goLive();
    const replacement = new FakeSocket();
    stream.attach(replacement, { resuming: false });
    stream.goLive();
    stream.detach(old); // the old socket's close event, late
    push(stream, audio, 0, 2 * FRAME);
    expect(replacement.bytes).toEqual(audio);
    expect(old.sent).toHaveLength(0);
  });

  it("refuses answers the protocol rules out; text that is not a JSON object is not a message", () => {
    const { stream } = resumable();
    const audio = pseudoRandomBytes(4 * FRAME, 5);
    const socket = new FakeSocket();
    stream.attach(socket, { resuming: false });
    expect(stream.receive("not json")).toBeNull();
    expect(stream.receive("null")).toBeNull();
    expect(stream.receive("[1]")).toBeNull();
    stream.receive(session());
    stream.goLive();
    push(stream, audio, 0, 4 * FRAME);
    expect(() => stream.receive(ack(5 * FRAME))).toThrow(/exceeds/);
    expect(() => stream.receive(session())).toThrow(/second EarshotSession/);
    stream.detach(socket);
    stream.resumeParams();
    stream.attach(new FakeSocket(), { resuming: true });
    // The server claims more audio than was ever sent.
    expect(() => stream.receive(session({ resumed: true, audio_bytes: 8 * FRAME }))).toThrow(
      /only 2560 were ever sent/,
    );
    expect(stream.live).toBe(false);
  });

  it("past its cap the stream stops keeping audio: it says so and can no longer resume", () => {
    const { stream, lost } = resumable({ maxKeptBytes: 4 * FRAME });
    const audio = pseudoRandomBytes(6 * FRAME, 6);
    const socket = started(stream);
    push(stream, audio, 0, 6 * FRAME); // no acks: the kept audio outgrows 4 frames
    expect(lost).toHaveLength(1);
    expect(stream.canResume).toBe(false);
    expect(stream.resumeParams()).toBeNull();
    // Still live, as a plain stream: nothing lost while connected.
    expect(socket.bytes).toEqual(audio);
    expect(stream.produced).toBe(6 * FRAME);
    expect(stream.droppedBytes).toBe(0);
  });

  it("past its cap while waiting for a connection, drops the newest audio and stays exact", () => {
    const dropped: number[] = [];
    const { stream, lost } = resumable({
      maxKeptBytes: 4 * FRAME,
      onDropped: (bytes) => dropped.push(bytes),
    });
    const audio = pseudoRandomBytes(6 * FRAME, 11);
    const first = started(stream);
    push(stream, audio, 0, FRAME);
    stream.detach(first);
    push(stream, audio, FRAME, 6 * FRAME); // room for 3 more frames
    expect(dropped).toEqual([FRAME, FRAME]);
    expect(lost).toHaveLength(0);
    expect(stream.droppedBytes).toBe(2 * FRAME);
    expect(stream.produced).toBe(4 * FRAME);
    expect(stream.canResume).toBe(true);
    expect(stream.takeUnsent().bytes).toEqual(audio.subarray(FRAME, 4 * FRAME));
  });

  it("hands over the audio never sent, with its offset, for a new session to carry on", () => {
    const { stream } = resumable();
    const audio = pseudoRandomBytes(6 * FRAME, 7);
    const socket = started(stream);
    push(stream, audio, 0, 2 * FRAME);
    stream.detach(socket);
    push(stream, audio, 2 * FRAME, 6 * FRAME);
    const { offset, bytes } = stream.takeUnsent();
    expect(offset).toBe(2 * FRAME);
    expect(bytes).toEqual(audio.subarray(2 * FRAME));
  });
});

describe("LiveStream, plain", () => {
  it("holds audio until its first connection is live; after it ends, drops and counts", () => {
    const sentOffsets: number[] = [];
    const stream = new LiveStream({
      maxKeptBytes: null,
      bytesPerSecond: BYTES_PER_SECOND,
      frameBytes: FRAME,
      onAudioSent: (offset) => sentOffsets.push(offset),
    });
    const audio = pseudoRandomBytes(6 * FRAME, 8);
    push(stream, audio, 0, 2 * FRAME);
    expect(stream.backlog).toBe(2 * FRAME);
    const socket = new FakeSocket();
    stream.attach(socket, { resuming: false });
    stream.goLive();
    push(stream, audio, 2 * FRAME, 4 * FRAME);
    expect(socket.bytes).toEqual(audio.subarray(0, 4 * FRAME));
    expect(sentOffsets).toEqual([0, FRAME, 2 * FRAME, 3 * FRAME]);
    expect(stream.produced).toBe(4 * FRAME);
    expect(got(stream, final("x")).replay).toBe(false);
    expect(stream.finalsReceived).toBe(1);
    stream.detach(socket);
    push(stream, audio, 4 * FRAME, 6 * FRAME);
    expect(stream.droppedBytes).toBe(2 * FRAME);
    expect(stream.produced).toBe(6 * FRAME);
    expect(stream.resumeParams()).toBeNull();
    expect(stream.canResume).toBe(false);
  });

  it("hands over what it held, for a connection that never came", () => {
    const stream = new LiveStream({
      maxKeptBytes: null,
      bytesPerSecond: BYTES_PER_SECOND,
      frameBytes: FRAME,
    });
    const audio = pseudoRandomBytes(3 * FRAME, 12);
    push(stream, audio, 0, 3 * FRAME);
    expect(stream.takeUnsent()).toEqual({ offset: 0, bytes: audio });
    expect(stream.backlog).toBe(0);
  });

  it("takes no notice of resume messages", () => {
    const stream = new LiveStream({
      maxKeptBytes: null,
      bytesPerSecond: BYTES_PER_SECOND,
      frameBytes: FRAME,
    });
    stream.attach(new FakeSocket(), { resuming: false });
    expect(got(stream, ack(123)).message.type).toBe("EarshotAck");
    expect(stream.sessionId).toBeNull();
  });
});
