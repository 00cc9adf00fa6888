/**
 * Resume with the real models (whisper project): a client that loses its connection twice in the
 * middle of words, resumes each time from its last acknowledged byte with one final "lost in
 * flight", and ends with exactly the finals an unbroken session produces — same words, same
 * timings, each once — and the same Metadata sha256. test/session-resume.test.ts covers the
 * protocol in depth with the fake transcriber; this proves it holds for Whisper's output too.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { frames, handshake, type ServerJson, TestClient, withoutIds } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { seedModels } from "./helpers/models";

const Q = "?encoding=linear16&sample_rate=16000&interim_results=true&resumable=true";
/** 100 ms frames of 16 kHz linear16. */
const FRAME = 3200;

beforeAll(seedModels);

describe("resuming a Whisper session", () => {
  it("ends with exactly the unbroken session's finals after two drops mid-word", async () => {
    const { pcm } = await wavFixture("lhotse_2412_153948_0000.wav");
    const unbroken = await TestClient.open(Q);
    for (const frame of frames(pcm, FRAME)) unbroken.sendAudio(frame);
    const reference = await unbroken.finish();
    const expected = withoutIds(unbroken.finals());
    expect(expected.length).toBeGreaterThanOrEqual(2);

    // Two drops, at a third and two thirds of the clip (in frames), wherever the words are.
    const cuts = [1, 2].map((k) => Math.floor((pcm.byteLength * k) / 3 / FRAME) * FRAME);
    const received: ServerJson[] = [];
    let client = await TestClient.open(Q);
    const sessionId = client.sessionId;
    let offset = 0;
    for (const cut of [...cuts, pcm.byteLength]) {
      for (const frame of frames(pcm.subarray(offset, cut), FRAME)) client.sendAudio(frame);
      if (cut === pcm.byteLength) break;
      await client.waitFor(
        (m) => m.type === "EarshotAck" && Number(m.audio_bytes) >= cut - 32_000,
        "the acknowledgement before the drop",
      );
      client.socket.close(4000, "network lost");
      await client.waitClosed();
      const got = client.finals();
      // One final "lost in flight" when there is one: the server must replay it.
      const kept = got.length > 0 ? got.slice(0, -1) : got;
      received.push(...kept);
      offset = client.acknowledged();
      const response = await handshake(
        `?session_id=${sessionId}&resume_offset=${offset}&finals_received=${received.length}`,
      );
      if (response.status !== 101 || response.webSocket === null) {
        throw new Error(`resume refused: ${response.status} ${await response.text()}`);
      }
      client = new TestClient(response.webSocket, sessionId);
    }
    const { metadata, closed } = await client.finish();
    received.push(...client.finals());

    expect(closed.code).toBe(1000);
    expect(withoutIds(received)).toEqual(expected);
    expect(metadata.sha256).toBe(reference.metadata.sha256);
    expect(metadata.duration).toBe(reference.metadata.duration);
  });
});
