/**
 * Control messages, the end of a session, and bad input, as seen by a client. The transcriber is
 * the deterministic fake (EARSHOT_TRANSCRIBER=fake in vitest.config.ts); the idle timeout is
 * shortened to 1.5 s there so the timeout is tested without 10-s waits.
 */
import { describe, expect, it } from "vitest";
import { MAX_FRAME_BYTES } from "../src/session/caps";
import { DEMO_KEY, frames, sha256Hex, TestClient } from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";
import { endedSession, storedFinals } from "./helpers/sessions";
import { concat } from "./helpers/typed-arrays";

const SPEECH = "sb_spk1_snt1.wav"; // 2.87 s, one sentence
const SILENCE = "ns_generated_silence_5s.wav";
const Q = "?encoding=linear16&sample_rate=16000";
/** 20 ms of 16 kHz PCM16. */
const FRAME_BYTES = 640;

const alternative = (m: Record<string, unknown>) =>
  (m.channel as { alternatives: [{ transcript: string }] }).alternatives[0];

async function stream(client: TestClient, pcm: Uint8Array, size = FRAME_BYTES): Promise<void> {
  for (const frame of frames(pcm, size)) client.sendAudio(frame);
}

describe("CloseStream", () => {
  it("flushes, sends Metadata describing exactly the audio received, then closes 1000", async () => {
    const { pcm } = await wavFixture(SPEECH);
    const client = await TestClient.open(Q);
    await stream(client, pcm);
    const { metadata, closed } = await client.finish();
    expect(closed.code).toBe(1000);
    expect(metadata.request_id).toBe(client.sessionId);
    expect(metadata.sha256).toBe(await sha256Hex(pcm));
    expect(metadata.duration).toBeCloseTo(pcm.byteLength / 2 / 16_000, 3);
    expect(metadata.channels).toBe(1);
    expect(metadata.transaction_key).toBe("deprecated");
    // The speech was transcribed before the Metadata, and nothing came after it.
    const finals = client.of("Results").filter((m) => m.is_final === true);
    expect(finals.length).toBeGreaterThan(0);
    expect(client.messages.at(-1)?.type).toBe("Metadata");
  });

  it("treats an empty binary frame as CloseStream", async () => {
    const client = await TestClient.open(Q);
    client.sendAudio(new Uint8Array(FRAME_BYTES * 10));
    client.sendAudio(new Uint8Array(0));
    const metadata = await client.waitFor((m) => m.type === "Metadata", "Metadata");
    expect(metadata.duration).toBeCloseTo(0.2, 3);
    expect((await client.waitClosed()).code).toBe(1000);
  });
});

describe("Finalize", () => {
  it("ends the utterance in progress with a final marked from_finalize, and the session goes on", async () => {
    const { pcm } = await wavFixture(SPEECH);
    const client = await TestClient.open(`${Q}&endpointing=false`);
    await stream(client, pcm.subarray(0, 32_000 * 2)); // 2 s: mid-sentence, no endpoint possible
    client.sendJson({ type: "Finalize" });
    const final = await client.waitFor((m) => m.from_finalize === true, "final from Finalize");
    expect(final.is_final).toBe(true);
    expect(final.speech_final).toBe(false);
    const words = (final.channel as { alternatives: [{ transcript: string }] }).alternatives[0];
    expect(words.transcript).not.toBe("");
    // Still open: more audio and a second Finalize work.
    await stream(client, pcm.subarray(32_000 * 2));
    client.sendJson({ type: "Finalize" });
    await client.waitFor(
      (m) => m.from_finalize === true && m !== final,
      "second final from Finalize",
    );
    expect(client.isClosed).toBe(false);
    expect((await client.finish()).closed.code).toBe(1000);
  });

  it("leaves a phrase begun just before it whole: its start, not yet confirmed, is not dropped", async () => {
    // A client's turn detection a beat late: Finalize 128 ms into the next phrase, before the VAD
    // has confirmed it (minSpeechMs 250). The phrase's final must be the one without Finalize.
    const { pcm } = await wavFixture(SPEECH);
    const audio = concat([new Uint8Array(32_000), pcm, new Uint8Array(38_400)]);
    const Qv = `${Q}&vad_events=true`;
    const phrase = (client: TestClient) =>
      client
        .of("Results")
        .filter((m) => m.is_final === true && m.from_finalize !== true)
        .map((m) => ({ start: m.start, duration: m.duration, text: alternative(m).transcript }));
    const plain = await TestClient.open(Qv);
    await stream(plain, audio);
    await plain.finish();
    const onset = plain.of("SpeechStarted")[0]?.timestamp as number;
    expect(onset).toBeGreaterThan(1);
    const cut = Math.round((onset + 0.128) * 50) * FRAME_BYTES; // whole 20-ms frames
    const late = await TestClient.open(Qv);
    await stream(late, audio.subarray(0, cut));
    late.sendJson({ type: "Finalize" });
    await stream(late, audio.subarray(cut));
    await late.finish();
    expect(phrase(plain)).toHaveLength(1);
    expect(phrase(late)).toEqual(phrase(plain));
    expect(late.of("SpeechStarted").map((m) => m.timestamp)).toEqual([onset]);
    // The timeline runs forward: Finalize's (empty) answer sits where the phrase's audio begins.
    const answer = late.of("Results").find((m) => m.from_finalize === true);
    expect(alternative(answer ?? {}).transcript).toBe("");
    expect(answer?.start).toBe(phrase(late)[0]?.start);
  });

  it("CloseStream reads a phrase begun but not yet confirmed: no frame will come to confirm it", async () => {
    const { pcm } = await wavFixture(SPEECH);
    const audio = concat([new Uint8Array(32_000), pcm]);
    const probe = await TestClient.open(`${Q}&vad_events=true`);
    await stream(probe, concat([audio, new Uint8Array(38_400)]));
    await probe.finish();
    const onset = probe.of("SpeechStarted")[0]?.timestamp as number;
    const client = await TestClient.open(Q);
    await stream(client, audio.subarray(0, Math.round((onset + 0.128) * 50) * FRAME_BYTES));
    await client.finish(); // CloseStream
    const words = client
      .of("Results")
      .filter((m) => m.is_final === true)
      .map((m) => alternative(m).transcript)
      .join("");
    expect(words).not.toBe("");
  });

  it("answers with an empty final when nothing is pending, so a waiting client is not left hanging", async () => {
    const client = await TestClient.open(Q);
    client.sendAudio(new Uint8Array(32_000)); // 1 s of silence: nothing to transcribe
    client.sendJson({ type: "Finalize" });
    const final = await client.waitFor((m) => m.from_finalize === true, "empty final");
    expect(
      (final.channel as { alternatives: [{ transcript: string }] }).alternatives[0].transcript,
    ).toBe("");
    // Placed where the stream is (the last whole 32-ms VAD frame), not at 0.
    expect(final.start).toBeCloseTo(0.992, 3);
    // What comes next starts after it: nothing before the Finalize is read again as lead-in.
    client.sendAudio((await wavFixture(SPEECH)).pcm);
    await client.finish();
    const next = client.of("Results").filter((m) => m.is_final === true && m !== final);
    expect(next.length).toBeGreaterThan(0);
    for (const m of next) expect(m.start as number).toBeGreaterThanOrEqual(final.start as number);
  });
});

/** How late a timer-driven close may come on a loaded 2-core machine. */
const TIMER_SLACK_MS = 1500;

describe("idle timeout", () => {
  it("closes 1011 NET-0001 when nothing arrives for the timeout, not before and not much after", async () => {
    // Timed from before the upgrade is asked for, when the server's clock cannot have started yet.
    const opening = Date.now();
    const client = await TestClient.open(Q);
    const closed = await client.waitClosed(10_000);
    const after = Date.now() - opening;
    expect(closed.code).toBe(1011);
    expect(closed.reason).toMatch(/^NET-0001/);
    // The protocol project's timeout is 1.5 s (vitest.config.ts); a timer may fire late on a busy
    // machine, never early.
    expect(after).toBeGreaterThanOrEqual(1500);
    expect(after).toBeLessThan(1500 + TIMER_SLACK_MS);
  });

  it("is held off by KeepAlive", async () => {
    const client = await TestClient.open(Q);
    for (let i = 0; i < 6; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500)); // 3 s in all, twice the timeout
      client.sendJson({ type: "KeepAlive" });
    }
    expect(client.isClosed).toBe(false);
    expect(client.of("Error")).toEqual([]);
    expect((await client.finish()).closed.code).toBe(1000);
  });
});

describe("bad input", () => {
  it.each([
    ["malformed JSON", "{not json", "INVALID_JSON"],
    ["a JSON array", "[1,2]", "NOT_AN_OBJECT"],
    ["an unknown type", '{"type":"Transcribe"}', "UNKNOWN_MESSAGE_TYPE"],
    ["no type", '{"kind":"KeepAlive"}', "MISSING_TYPE"],
  ])("answers %s with an Error and keeps the session", async (_name, text, code) => {
    const { pcm } = await wavFixture(SPEECH);
    const client = await TestClient.open(Q);
    await stream(client, pcm.subarray(0, 16_000));
    client.socket.send(text);
    const error = await client.waitFor((m) => m.type === "Error", "Error");
    expect(error.code).toBe(code);
    expect(error.request_id).toBe(client.sessionId);
    await stream(client, pcm.subarray(16_000));
    const { metadata, closed } = await client.finish();
    expect(closed.code).toBe(1000);
    expect(metadata.sha256).toBe(await sha256Hex(pcm)); // no audio lost around the bad message
  });

  it("does not take a control message sent as a binary frame for audio", async () => {
    const { pcm } = await wavFixture(SPEECH);
    const client = await TestClient.open(Q);
    await stream(client, pcm.subarray(0, 16_000));
    client.sendAudio(new TextEncoder().encode('{"type":"KeepAlive"}'));
    await stream(client, pcm.subarray(16_000));
    const error = await client.waitFor((m) => m.type === "Error", "Error");
    expect(error.code).toBe("CONTROL_AS_BINARY");
    const { metadata } = await client.finish();
    expect(metadata.sha256).toBe(await sha256Hex(pcm));
  });

  it("answers an oversized text message with an Error and keeps the session", async () => {
    const client = await TestClient.open(Q);
    client.socket.send(JSON.stringify({ type: "KeepAlive", padding: "x".repeat(10_000) }));
    const error = await client.waitFor((m) => m.type === "Error", "Error");
    expect(error.code).toBe("TEXT_TOO_LARGE");
    expect((await client.finish()).closed.code).toBe(1000);
  });

  it("closes 1009 on a frame over MAX_FRAME_BYTES, after transcribing what came before", async () => {
    const { pcm } = await wavFixture(SPEECH);
    const client = await TestClient.open(Q);
    await stream(client, pcm);
    client.sendAudio(new Uint8Array(MAX_FRAME_BYTES + 2));
    const closed = await client.waitClosed();
    expect(closed.code).toBe(1009);
    expect(closed.reason).toContain(String(MAX_FRAME_BYTES));
    // The socket is gone at once, but what came before is still transcribed and stored: finals
    // with words, up to the end of the clip's speech.
    await endedSession(client.sessionId);
    const stored = (await storedFinals(DEMO_KEY, client.sessionId)).filter(
      (f) => f.transcript !== "",
    );
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.at(-1)?.end ?? 0).toBeGreaterThan(pcm.byteLength / 32_000 - 1);
  });

  it("accepts a frame of exactly MAX_FRAME_BYTES", async () => {
    const client = await TestClient.open(Q);
    client.sendAudio(new Uint8Array(MAX_FRAME_BYTES));
    const { metadata, closed } = await client.finish();
    expect(closed.code).toBe(1000);
    expect(metadata.duration).toBeCloseTo(MAX_FRAME_BYTES / 2 / 16_000, 3);
  });

  it("keeps an odd trailing byte for the next frame instead of dropping it", async () => {
    const { pcm } = await wavFixture(SILENCE);
    const audio = pcm.subarray(0, 4001 * 2);
    const client = await TestClient.open(Q);
    client.sendAudio(audio.subarray(0, 641)); // odd
    client.sendAudio(audio.subarray(641, 1280)); // odd again: completes the carried sample
    client.sendAudio(audio.subarray(1280));
    const { metadata } = await client.finish();
    expect(metadata.sha256).toBe(await sha256Hex(concat([audio])));
    expect(metadata.duration).toBeCloseTo(4001 / 16_000, 3); // Metadata rounds to ms
  });
});
