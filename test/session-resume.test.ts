/**
 * Resumable sessions (README "Resumable sessions"): a client whose connection drops reconnects
 * with session_id, resume_offset and finals_received, re-sends from its last acknowledged byte,
 * and ends with exactly the transcript an unbroken session produces — the same finals, each once,
 * and the same Metadata sha256 (so no byte was lost or taken twice). Refusals are HTTP statuses
 * with an explanation; the session holds one slot throughout and gives it back when it ends.
 *
 * Protocol project: the fake transcriber's words fingerprint exactly the audio it was fed, so any
 * lost, repeated or shifted sample changes the finals. Resume window 3 s (vitest.config.ts).
 */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { addKey, createAccount, type TestAccount } from "./helpers/accounts";
import {
  frames,
  handshake,
  type ServerJson,
  sha256Hex,
  TestClient,
  withoutIds,
} from "./helpers/client";
import { wavFixture } from "./helpers/fixtures";

const Q = "encoding=linear16&sample_rate=16000&interim_results=true&vad_events=true";
const RESUMABLE = `?${Q}&resumable=true`;
/** 20 ms of 16 kHz linear16. */
const FRAME = 640;
/** Where the connection drops: 6.25 s into the clip, mid-sentence. */
const CUT = 200_000;

let pcm: Uint8Array;
let account: TestAccount;
let reference: { finals: unknown[]; sha256: unknown; duration: unknown };

function sendAll(client: TestClient, bytes: Uint8Array): void {
  for (const frame of frames(bytes, FRAME)) client.sendAudio(frame);
}

async function resumeHandshake(
  sessionId: string,
  offset: number,
  finals: number,
  key = account.key,
  extra = "",
): Promise<Response> {
  return handshake(
    `?session_id=${sessionId}&resume_offset=${offset}&finals_received=${finals}${extra}`,
    { key },
  );
}

async function resumed(sessionId: string, offset: number, finals: number): Promise<TestClient> {
  const response = await resumeHandshake(sessionId, offset, finals);
  if (response.status !== 101 || response.webSocket === null) {
    throw new Error(`resume refused: ${response.status} ${await response.text()}`);
  }
  return new TestClient(response.webSocket, sessionId);
}

async function activeSessions(key: string): Promise<string[]> {
  const response = await exports.default.fetch("http://earshot.test/v1/sessions", {
    headers: { Authorization: `Token ${key}` },
  });
  const body = (await response.json()) as { sessions: Array<{ id: string }> };
  return body.sessions.map((s) => s.id);
}

/** Opens a resumable session and streams the clip up to CUT; returns it once CUT is acknowledged. */
async function streamUntilCut(): Promise<TestClient> {
  const client = await TestClient.open(RESUMABLE, { key: account.key });
  sendAll(client, pcm.subarray(0, CUT));
  await client.waitFor(
    (m) => m.type === "EarshotAck" && Number(m.audio_bytes) >= CUT - 32_000,
    "the acknowledgement of the audio before the cut",
  );
  return client;
}

/** Finishes a resumed session with the rest of the clip from `offset`; returns what it produced. */
async function finishFrom(client: TestClient, offset: number) {
  sendAll(client, pcm.subarray(offset));
  const { metadata, closed } = await client.finish();
  return { metadata, closed };
}

function comparable(finals: ServerJson[]): unknown[] {
  return withoutIds(finals);
}

beforeAll(async () => {
  ({ pcm } = await wavFixture("wcpp_jfk.wav"));
  account = await createAccount({ maxConcurrentSessions: 1 });
  const unbroken = await TestClient.open(RESUMABLE, { key: account.key });
  sendAll(unbroken, pcm);
  const { metadata } = await unbroken.finish();
  reference = {
    finals: comparable(unbroken.finals()),
    sha256: metadata.sha256,
    duration: metadata.duration,
  };
  expect(metadata.sha256).toBe(await sha256Hex(pcm));
  // The clip must give several finals, some on each side of the cut, for the tests to mean much.
  expect(reference.finals.length).toBeGreaterThanOrEqual(2);
});

describe("a resumable session", () => {
  it("announces itself and acknowledges audio about once a second", async () => {
    const client = await streamUntilCut();
    expect(client.messages[0]).toEqual({
      type: "EarshotSession",
      session_id: client.sessionId,
      resumed: false,
      audio_bytes: 0,
      finals: 0,
      resume_window_ms: 3000,
    });
    const acks = client.of("EarshotAck").map((m) => Number(m.audio_bytes));
    // 32 000 bytes a second at 16 kHz linear16, and 640-byte frames divide it exactly.
    expect(acks.slice(0, 3)).toEqual([32_000, 64_000, 96_000]);
    await finishFrom(client, CUT);
  });

  it("sends none of this to a session that did not ask for it (Deepgram clients)", async () => {
    const client = await TestClient.open(`?${Q}`, { key: account.key });
    sendAll(client, pcm.subarray(0, 64_000));
    await client.finish();
    expect(client.messages.filter((m) => m.type.startsWith("Earshot"))).toEqual([]);
  });
});

describe("resuming after the connection drops", () => {
  it("vanished mid-utterance (no close, found by the idle timeout): resumes to exactly the unbroken transcript", async () => {
    const first = await streamUntilCut();
    const closed = await first.waitClosed(); // 1.5 s of nothing: the server gives up on the socket
    expect(closed.code).toBe(1011);
    expect(closed.reason).toMatch(/^NET-0001/);
    // The client re-sends from its last acknowledged byte; the server holds more (up to CUT).
    const offset = first.acknowledged();
    expect(offset).toBeLessThan(CUT);
    const second = await resumed(first.sessionId, offset, first.finals().length);
    const { metadata, closed: end } = await finishFrom(second, offset);

    expect(second.messages[0]).toMatchObject({
      type: "EarshotSession",
      resumed: true,
      audio_bytes: CUT,
    });
    expect(end.code).toBe(1000);
    expect(comparable([...first.finals(), ...second.finals()])).toEqual(reference.finals);
    expect(metadata.sha256).toBe(reference.sha256);
    expect(metadata.duration).toBe(reference.duration);
  });

  it("closed abnormally: resumes from an odd byte offset, replaying only the final the client lacks", async () => {
    const first = await streamUntilCut();
    await first.waitFor((m) => m.type === "Results" && m.is_final === true, "a final");
    first.socket.close(4000, "network lost");
    const had = first.finals();
    // As if the last final was lost in flight: the client counts one fewer.
    const offset = first.acknowledged() - 1;
    const second = await resumed(first.sessionId, offset, had.length - 1);
    const { metadata } = await finishFrom(second, offset);

    const replayed = second.finals()[0];
    expect(replayed).toEqual(had[had.length - 1]); // exactly as first sent, request_id included
    expect(comparable([...had.slice(0, -1), ...second.finals()])).toEqual(reference.finals);
    expect(metadata.sha256).toBe(reference.sha256);
  });

  it("takes over a connection that still looks open, and ignores it from then on", async () => {
    const first = await streamUntilCut();
    const offset = first.acknowledged();
    const second = await resumed(first.sessionId, offset, first.finals().length);
    const closed = await first.waitClosed();
    expect(closed).toEqual({
      code: 1000,
      reason: "RESUMED: a newer connection resumed this session",
    });
    const { metadata } = await finishFrom(second, offset);
    expect(comparable([...first.finals(), ...second.finals()])).toEqual(reference.finals);
    expect(metadata.sha256).toBe(reference.sha256);
  });

  it("holds its one slot while it waits (a resume needs no new one), and frees it when it ends", async () => {
    const first = await streamUntilCut();
    first.socket.close(4000, "network lost");
    await first.waitClosed();
    expect(await activeSessions(account.key)).toEqual([first.sessionId]);
    // The account's limit is 1: a new session is refused while this one waits...
    expect((await handshake(RESUMABLE, { key: account.key })).status).toBe(429);
    // ...but its resume is not.
    const offset = first.acknowledged();
    const second = await resumed(first.sessionId, offset, first.finals().length);
    await finishFrom(second, offset);
    expect(await activeSessions(account.key)).toEqual([]);
  });

  it("ends when nobody resumes it within the window: finals stored, slot freed, resume refused 410", async () => {
    const first = await streamUntilCut();
    first.socket.close(4000, "network lost");
    const sessionId = first.sessionId;
    let sessions = await activeSessions(account.key);
    for (let i = 0; i < 100 && sessions.length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      sessions = await activeSessions(account.key);
    }
    expect(sessions).toEqual([]);

    const refused = await resumeHandshake(sessionId, first.acknowledged(), first.finals().length);
    expect(refused.status).toBe(410);
    expect(await refused.json()).toMatchObject({
      err_code: "SESSION_ENDED",
      request_id: sessionId,
    });
    const transcript = await exports.default.fetch(
      `http://earshot.test/v1/sessions/${sessionId}/transcript`,
      { headers: { Authorization: `Token ${account.key}` } },
    );
    const body = (await transcript.json()) as { finals: Array<{ transcript: string }> };
    // Everything received before the drop was transcribed (the utterance cut at CUT included).
    expect(body.finals.length).toBeGreaterThanOrEqual(first.finals().length);
    expect(body.finals.length).toBeGreaterThan(0);
  });
});

describe("refused resumes", () => {
  it("explain themselves and leave the session resumable", async () => {
    const first = await streamUntilCut();
    const id = first.sessionId;
    const finals = first.finals().length;
    first.socket.close(4000, "network lost");

    const gap = await resumeHandshake(id, CUT + 2, finals);
    expect(gap.status).toBe(409);
    const gapBody = (await gap.json()) as { err_code: string; err_msg: string };
    expect(gapBody.err_code).toBe("RESUME_GAP");
    expect(gapBody.err_msg).toContain(`past the ${CUT} audio bytes`);

    const tooMany = await resumeHandshake(id, 0, finals + 1);
    expect(tooMany.status).toBe(409);
    expect(((await tooMany.json()) as { err_msg: string }).err_msg).toMatch(/finals_received/);

    const differs = await resumeHandshake(id, 0, finals, account.key, "&sample_rate=8000");
    expect(differs.status).toBe(400);
    expect(((await differs.json()) as { err_msg: string }).err_msg).toMatch(/^sample_rate differs/);

    const stranger = await createAccount({ maxConcurrentSessions: 5 });
    const theirs = await resumeHandshake(id, 0, finals, stranger.key);
    const unknownId = crypto.randomUUID();
    const unknown = await resumeHandshake(unknownId, 0, 0);
    for (const response of [theirs, unknown]) {
      expect(response.status).toBe(404);
      expect(((await response.json()) as { err_code: string }).err_code).toBe("SESSION_NOT_FOUND");
    }
    // Looking up an unknown id left no storage behind in its object.
    const stub = env.SESSION.get(env.SESSION.idFromName(unknownId));
    const tables = await runInDurableObject(stub, (_instance, state) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .toArray()
        .map((row) => row.name),
    );
    expect(tables).not.toContain("session");
    expect((await resumeHandshake(id, 0, finals, "esk_not_a_key")).status).toBe(401);
    // Another key of the same account may not take the session over: revoking that key would
    // not end a socket it attached (the operator's sweep matches the key that opened a session).
    const otherKey = await resumeHandshake(id, 0, finals, await addKey(account.accountId));
    expect(otherKey.status).toBe(403);
    expect(((await otherKey.json()) as { err_code: string }).err_code).toBe("KEY_MISMATCH");

    const offset = first.acknowledged();
    const second = await resumed(id, offset, finals);
    const { metadata } = await finishFrom(second, offset);
    expect(metadata.sha256).toBe(reference.sha256);
  });

  it("a client's own 1000 or 1001 (a page closing) ends a resumable session at once", async () => {
    for (const code of [1000, 1001]) {
      const client = await TestClient.open(RESUMABLE, { key: account.key });
      sendAll(client, pcm.subarray(0, 64_000));
      await client.waitFor((m) => m.type === "EarshotAck", "an ack");
      client.socket.close(code, "done");
      // Freed inside the 3-s resume window (at most 40 × 50 ms = 2 s of polling).
      let sessions = await activeSessions(account.key);
      for (let i = 0; i < 40 && sessions.length > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        sessions = await activeSessions(account.key);
      }
      expect(sessions).toEqual([]);
      expect((await resumeHandshake(client.sessionId, 0, 0)).status).toBe(410);
    }
  });

  it("a session opened without resumable=true cannot be resumed, live or ended", async () => {
    const plain = await TestClient.open(`?${Q}`, { key: account.key });
    sendAll(plain, pcm.subarray(0, 64_000));
    await plain.waitFor((m) => m.type === "Results", "a result");
    const live = await resumeHandshake(plain.sessionId, 0, 0);
    expect(live.status).toBe(409);
    expect(((await live.json()) as { err_code: string }).err_code).toBe("NOT_RESUMABLE");

    plain.socket.close(4000, "network lost"); // ends a plain session: Deepgram's behaviour
    let status = 0;
    for (let i = 0; i < 100 && status !== 410; i++) {
      status = (await resumeHandshake(plain.sessionId, 0, 0)).status;
      if (status !== 410) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe(410);
  });
});

describe("the session length across a resume", () => {
  it("counts from the session's start, not from the resume: a resume does not reset it", async () => {
    const maxSessionSeconds = 3;
    const short = await createAccount({ maxConcurrentSessions: 1, maxSessionSeconds });
    const opening = Date.now(); // before the upgrade: the server's clock cannot start earlier
    const first = await TestClient.open(RESUMABLE, { key: short.key });
    sendAll(first, pcm.subarray(0, 32_000));
    await first.waitFor((m) => m.type === "EarshotAck", "an ack");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    first.socket.close(4000, "network lost");
    await first.waitClosed();
    const response = await resumeHandshake(
      first.sessionId,
      first.acknowledged(),
      first.finals().length,
      short.key,
    );
    expect(response.status).toBe(101);
    const second = new TestClient(response.webSocket as WebSocket, first.sessionId);
    const keepAlive = setInterval(() => second.sendJson({ type: "KeepAlive" }), 300);
    const closed = await second.waitClosed(10_000);
    clearInterval(keepAlive);
    expect(closed.reason).toMatch(/^MAX-0000/);
    // At the session's length from its start (not 3 s after the resume, ~4 s from the start).
    expect(Date.now() - opening).toBeGreaterThanOrEqual(maxSessionSeconds * 1000);
    expect(Date.now() - opening).toBeLessThan(maxSessionSeconds * 1000 + 900);
  });
});
