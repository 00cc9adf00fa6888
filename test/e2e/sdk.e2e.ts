/**
 * The official Deepgram JavaScript SDK (`@deepgram/sdk` 5.13.0), unchanged, against `wrangler dev`
 * (global-setup.ts): only its base URL points at Earshot. Everything is observed through what the
 * SDK hands its user (typed `message` events, `open`, `close`, `error`), plus two counters the SDK
 * cannot influence: the handshakes its HTTP agent opened (sdk-harness.ts HandshakeCounter) and
 * the sessions the account's limiter admitted (GET /v1/usage).
 *
 * How the SDK behaves (read in node_modules/@deepgram/sdk/dist/esm, CustomClient.mjs and
 * core/websocket/ws.mjs): `listen.v1.connect()` returns a socket that starts closed, so the caller
 * calls `socket.connect()`; it reconnects on every close but 1000, after a first delay of
 * 1000 + random × 4000 ms; a refused handshake (an `error` before `open`) ends in a close it
 * treats as 1000, so it is not retried.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { DeepgramClient } from "@deepgram/sdk";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { signAccessToken } from "../../src/auth/access-token";
import { deletionRuns, wordErrorRate } from "../../tools/eval/wer";
import {
  type AdminAccount,
  activeSessionIds,
  BYTES_PER_SECOND,
  type Connection,
  connect,
  createAdminAccount,
  OPEN_TIMEOUT_MS,
  opened,
  readClip,
  type SocketLog,
  sessionsAdmitted,
  sleep,
  streamPcm,
  transcriptOf,
} from "./sdk-harness";

const baseUrl = inject("baseUrl");
const adminToken = inject("adminToken");
const tokenSecret = inject("tokenSecret");

const CLIP = readClip(process.env.E2E_CLIP ?? "wcpp_jfk");
const CLIP_SECONDS = CLIP.pcm.byteLength / BYTES_PER_SECOND;
/** 100 ms per frame, what a mic pipeline sends: 0.1 s × 32 000 B/s = 3 200 bytes. */
const CHUNK_BYTES = 0.1 * BYTES_PER_SECOND;
/**
 * Silence streamed after the clip: 2.5 s covers the 500 ms endpointing wait and the 1 000 ms
 * UtteranceEnd gap with a second to spare, so both happen on their own before CloseStream.
 */
const TRAILING_SILENCE_SECONDS = 2.5;
/**
 * Same bound as the browser test (demo.e2e.ts): 2 errors in JFK's 22 words, never two deleted in a
 * row. The Finalize test cuts an utterance in two, which costs Whisper words at the cut: its own
 * bound is looser.
 */
const MAX_WER = 0.1;
const MAX_WER_CUT_BY_FINALIZE = 0.25;
/** Model names that are not speech recognition: the WER assertion does not apply to them. */
const NOT_A_MODEL = new Set(["fake", "none"]);
/**
 * The idle timeout the server under test runs with: global-setup.ts passes none, so it is
 * wrangler.toml's EARSHOT_IDLE_TIMEOUT_MS (read here rather than copied, so the two cannot drift).
 */
const IDLE_TIMEOUT_MS = Number(
  /EARSHOT_IDLE_TIMEOUT_MS\s*=\s*"(\d+)"/.exec(
    readFileSync(path.resolve(import.meta.dirname, "../../wrangler.toml"), "utf8"),
  )?.[1],
);
/** KeepAlive period: a quarter of the idle timeout, so even a late timer is far from it. */
const KEEPALIVE_EVERY_MS = IDLE_TIMEOUT_MS / 4;
/**
 * How long to watch for a retry the SDK must not make. Its first reconnect waits
 * minReconnectionDelay = 1000 + Math.random() × 4000 ms (< 5 s; core/websocket/ws.mjs
 * DEFAULT_OPTIONS), so a retry, if any, would show within 6 s.
 */
const NO_RETRY_WINDOW_MS = 6_000;
/** Waits for finals. */
const FINAL_TIMEOUT_MS = 30_000;
/** From CloseStream to close: the last utterance is transcribed first (≤ 15 s of audio). */
const CLOSE_TIMEOUT_MS = 60_000;

/**
 * The options a live-captions app passes. The SDK's types want booleans as "true" strings (it
 * puts them in the URL as they are); `model` is required by its types and runs Whisper here.
 */
const LIVE_OPTIONS = {
  model: "nova-3",
  encoding: "linear16",
  sample_rate: 16_000,
  interim_results: "true",
  vad_events: "true",
  utterance_end_ms: 1000,
  endpointing: 500,
} as const;

/** A client for `auth` at the server under test: the only thing an app changes is baseUrl. */
function sdkClient(auth: { apiKey: string } | { accessToken: string }): DeepgramClient {
  return new DeepgramClient({ ...auth, baseUrl });
}

function closeEvents(log: SocketLog) {
  return log.events.flatMap((e) => (e.kind === "close" ? [e] : []));
}

function sha256Hex(...parts: Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}

/** The one active session of an account that has exactly one open socket. */
async function onlySessionId(account: AdminAccount): Promise<string> {
  const ids = await activeSessionIds(baseUrl, account.key);
  expect(ids).toHaveLength(1);
  return ids[0] ?? "";
}

/** Polls until the account holds no session (slots are released once a session has ended). */
async function noActiveSessions(account: AdminAccount): Promise<void> {
  await expect
    .poll(() => activeSessionIds(baseUrl, account.key), { timeout: 15_000, interval: 250 })
    .toEqual([]);
}

/** The fake transcriber's words fingerprint the audio: `at<first sample> n<samples> h<hash>`. */
const FAKE_TRANSCRIPT = /^at(\d+) n(\d+) h[0-9a-f]+$/;

describe(`a live session through the SDK on ${CLIP.id}, streamed in real time`, () => {
  const silence = new Uint8Array(TRAILING_SILENCE_SECONDS * BYTES_PER_SECOND);
  let account: AdminAccount;
  let connection: Connection;
  let sessionId = "";

  beforeAll(async () => {
    account = await createAdminAccount(baseUrl, adminToken, { maxConcurrentSessions: 1 });
    connection = await connect(sdkClient({ apiKey: account.key }), LIVE_OPTIONS);
    await opened(connection);
    sessionId = await onlySessionId(account);
    const { socket, log } = connection;
    await streamPcm(log, CLIP.pcm, { chunkBytes: CHUNK_BYTES, realTime: true });
    await streamPcm(log, silence, { chunkBytes: CHUNK_BYTES, realTime: true });
    // The trailing silence is longer than utterance_end_ms: an UtteranceEnd follows the last
    // speech on its own, before CloseStream.
    const lastSpeech = log.events.findLastIndex(
      (e) => e.kind === "message" && e.message.type === "SpeechStarted",
    );
    await log.waitForMessage("UtteranceEnd", FINAL_TIMEOUT_MS, () => true, lastSpeech + 1);
    socket.sendCloseStream({ type: "CloseStream" });
    await log.waitFor("close", (e) => e.kind === "close", CLOSE_TIMEOUT_MS);
  }, 120_000);

  afterAll(() => {
    connection?.socket.close();
  });

  it("connects once, with the API key as `Authorization: Token` and the options in the query", () => {
    const { counter, log, socket } = connection;
    expect(counter.handshakes).toEqual([{ authorization: "Token" }]);
    // The URL of the SDK's underlying `ws` socket: the handshake's target.
    const url = new URL(socket.socket.url);
    expect(`${url.protocol}//${url.host}`).toBe(baseUrl.replace(/^http/, "ws"));
    expect(url.pathname).toBe("/v1/listen");
    expect(Object.fromEntries(url.searchParams)).toEqual({
      model: "nova-3",
      encoding: "linear16",
      sample_rate: "16000",
      interim_results: "true",
      vad_events: "true",
      utterance_end_ms: "1000",
      endpointing: "500",
    });
    expect(log.count("open")).toBe(1);
    expect(log.count("error")).toBe(0);
  });

  it("delivers interim Results (is_final false) before the finals, as typed message events", () => {
    const { log } = connection;
    // Only the types the SDK's union declares: Earshot's extension messages (resume) and Error
    // stay off the wire unless a client asks for them or sends something wrong.
    const sdkTypes = new Set(["Results", "SpeechStarted", "UtteranceEnd", "Metadata"]);
    expect(log.messages.filter((m) => !sdkTypes.has(m.type))).toEqual([]);
    const interims = log.results.filter((r) => r.is_final === false && transcriptOf(r) !== "");
    expect(interims.length).toBeGreaterThan(0);
    const firstInterim = log.messages.findIndex(
      (m) => m.type === "Results" && m.is_final === false && transcriptOf(m) !== "",
    );
    const firstFinal = log.messages.findIndex(
      (m) => m.type === "Results" && m.is_final === true && transcriptOf(m) !== "",
    );
    expect(firstInterim).toBeGreaterThanOrEqual(0);
    expect(firstFinal).toBeGreaterThan(firstInterim);
    for (const results of log.results) {
      expect(results.channel_index).toEqual([0, 1]);
      expect(results.duration).toBeGreaterThanOrEqual(0);
      for (const word of results.channel.alternatives[0]?.words ?? []) {
        expect(word.end).toBeGreaterThanOrEqual(word.start);
        expect(typeof word.punctuated_word).toBe("string");
      }
    }
  });

  it("ends utterances by endpointing, where the speech is in the clip", () => {
    const finals = connection.log.finals.filter((r) => transcriptOf(r) !== "");
    expect(finals.length).toBeGreaterThan(0);
    // At least one utterance ended on the 500 ms of silence rather than on CloseStream.
    expect(finals.some((r) => r.speech_final === true && r.from_finalize === false)).toBe(true);
    const lastEnd = Math.max(...finals.map((r) => r.start + r.duration));
    expect(lastEnd).toBeGreaterThan(CLIP_SECONDS * 0.7);
    expect(lastEnd).toBeLessThanOrEqual(CLIP_SECONDS + TRAILING_SILENCE_SECONDS);
    // Finals follow each other in time.
    for (let i = 1; i < finals.length; i++) {
      expect(finals[i]?.start ?? 0).toBeGreaterThanOrEqual(finals[i - 1]?.start ?? 0);
    }
  });

  it("reports SpeechStarted before the first final and UtteranceEnd after speech", () => {
    const { log } = connection;
    const started = log.messages.filter((m) => m.type === "SpeechStarted");
    const ended = log.messages.filter((m) => m.type === "UtteranceEnd");
    expect(started.length).toBeGreaterThan(0);
    expect(ended.length).toBeGreaterThan(0);
    const firstFinal = log.finals.find((r) => transcriptOf(r) !== "");
    expect(firstFinal).toBeDefined();
    const firstStarted = started[0];
    expect(firstStarted?.channel).toEqual([0, 1]);
    expect(firstStarted?.timestamp ?? Infinity).toBeLessThan(
      (firstFinal?.start ?? 0) + (firstFinal?.duration ?? 0),
    );
    const order = (m: (typeof log.messages)[number] | undefined) =>
      m === undefined ? -1 : log.messages.indexOf(m);
    expect(order(firstStarted)).toBeGreaterThanOrEqual(0);
    expect(order(firstStarted)).toBeLessThan(order(firstFinal));
    const lastOf = (type: string) => log.messages.findLastIndex((m) => m.type === type);
    expect(lastOf("UtteranceEnd")).toBeGreaterThan(lastOf("SpeechStarted"));
    for (const end of ended) {
      expect(end.channel).toEqual([0, 1]);
      expect(end.last_word_end).toBeGreaterThan(0);
      expect(end.last_word_end).toBeLessThanOrEqual(CLIP_SECONDS + TRAILING_SILENCE_SECONDS);
    }
  });

  it("names the session in every Results (metadata.request_id) and the model that ran", () => {
    const { log } = connection;
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    for (const results of log.results) {
      expect(results.metadata.request_id).toBe(sessionId);
      expect(results.metadata.model_info.name).toBe(log.results[0]?.metadata.model_info.name);
    }
  });

  it("ends on CloseStream with Metadata for exactly the bytes sent, then close 1000", () => {
    const { log, socket } = connection;
    const metadata = log.messages.at(-1);
    expect(metadata?.type).toBe("Metadata");
    if (metadata?.type !== "Metadata") return;
    expect(metadata.request_id).toBe(sessionId);
    expect(metadata.transaction_key).toBe("deprecated");
    expect(metadata.sha256).toBe(sha256Hex(CLIP.pcm, silence));
    const bytesSent = CLIP.pcm.byteLength + silence.byteLength;
    expect(metadata.duration).toBeCloseTo(bytesSent / BYTES_PER_SECOND, 3);
    expect(metadata.channels).toBe(1);
    expect(Number.isNaN(Date.parse(metadata.created))).toBe(false);
    // Metadata, then the close: the last event, with the normal code, and no reconnect.
    const last = log.events.at(-1);
    expect(last).toMatchObject({ kind: "close", code: 1000 });
    expect(closeEvents(log)).toHaveLength(1);
    expect(socket.readyState).toBe(3); // CLOSED
    expect(connection.counter.handshakes).toHaveLength(1);
  });

  it("transcribes the clip: Whisper within the WER bound, the fake as its fingerprints", (ctx) => {
    const finals = connection.log.finals.filter((r) => transcriptOf(r) !== "");
    const model = finals[0]?.metadata.model_info.name ?? "";
    const text = finals.map(transcriptOf).join(" ");
    // A run configured for Whisper must have run Whisper: only E2E_TRANSCRIBER=fake may skip.
    if (inject("transcriber") === "whisper") expect(NOT_A_MODEL.has(model), model).toBe(false);
    if (NOT_A_MODEL.has(model)) {
      // The fake's words say which samples it was fed: each final starts where its words say.
      for (const final of finals) {
        const match = FAKE_TRANSCRIPT.exec(transcriptOf(final));
        expect(match, transcriptOf(final)).not.toBeNull();
        expect(Number(match?.[1]) / 16_000).toBeCloseTo(final.start, 3);
      }
      console.warn(`WER not applicable: the server's transcriber is "${model}"`);
      ctx.skip();
    }
    const result = wordErrorRate(CLIP.reference, text);
    console.log(`SDK session WER ${result.wer.toFixed(3)} with ${model}: ${text}`);
    expect(result.wer).toBeLessThanOrEqual(MAX_WER);
    expect(Math.max(0, ...deletionRuns(result.alignment))).toBeLessThan(2);
  });
});

describe("KeepAlive and the idle timeout, through the SDK", () => {
  it(`KeepAlive holds an idle socket past ${IDLE_TIMEOUT_MS} ms; without it, close 1011 NET-0001 and the SDK reconnects`, async () => {
    expect(IDLE_TIMEOUT_MS).toBeGreaterThan(0);
    // Two accounts, so each account's session list shows one socket's sessions only.
    const [keeping, silent] = await Promise.all([
      createAdminAccount(baseUrl, adminToken, { maxConcurrentSessions: 1 }),
      createAdminAccount(baseUrl, adminToken, { maxConcurrentSessions: 1 }),
    ]);
    const withKeepAlive = await connect(sdkClient({ apiKey: keeping.key }), LIVE_OPTIONS);
    const without = await connect(sdkClient({ apiKey: silent.key }), LIVE_OPTIONS);
    try {
      await Promise.all([opened(withKeepAlive), opened(without)]);
      const keepingId = await onlySessionId(keeping);
      const firstSilentId = await onlySessionId(silent);

      // No audio on either; KeepAlive on one, for the idle timeout plus a KeepAlive period.
      const until = Date.now() + IDLE_TIMEOUT_MS + KEEPALIVE_EVERY_MS;
      while (Date.now() < until) {
        // The SDK throws "Socket is not open" once closed: say what it reported instead.
        expect(withKeepAlive.log.summary()).toBe("open");
        withKeepAlive.socket.sendKeepAlive({ type: "KeepAlive" });
        await sleep(KEEPALIVE_EVERY_MS);
      }

      // The silent socket was closed as Deepgram closes it, and the SDK (not the test) reconnected.
      // Usually already there; the wait only gives a late server timer room on a busy machine.
      const idleClose = await without.log.waitFor(
        "the idle close",
        (e) => e.kind === "close",
        IDLE_TIMEOUT_MS,
      );
      expect(idleClose).toMatchObject({ code: 1011 });
      expect(idleClose.kind === "close" ? idleClose.reason : "").toMatch(/^NET-0001\b/);
      await without.log.waitFor(
        "the SDK's reconnect",
        (e) => e.kind === "open",
        NO_RETRY_WINDOW_MS + OPEN_TIMEOUT_MS,
        without.log.events.indexOf(idleClose),
      );
      expect(without.counter.handshakes).toHaveLength(2);
      // A reconnect is a new session: nothing of the first is carried over (no resume in the SDK).
      const secondSilentId = await onlySessionId(silent);
      expect(secondSilentId).not.toBe(firstSilentId);

      // The KeepAlive socket: still open, still the same session, nothing sent back.
      expect(withKeepAlive.log.summary()).toBe("open");
      expect(withKeepAlive.socket.readyState).toBe(1); // OPEN
      expect(await onlySessionId(keeping)).toBe(keepingId);
      withKeepAlive.socket.sendCloseStream({ type: "CloseStream" });
      const metadata = await withKeepAlive.log.waitForMessage("Metadata", CLOSE_TIMEOUT_MS);
      expect(metadata).toMatchObject({ request_id: keepingId, duration: 0, sha256: sha256Hex() });
      await withKeepAlive.log.waitFor("close", (e) => e.kind === "close", CLOSE_TIMEOUT_MS);
      expect(closeEvents(withKeepAlive.log)).toEqual([expect.objectContaining({ code: 1000 })]);
      expect(withKeepAlive.counter.handshakes).toHaveLength(1);
    } finally {
      withKeepAlive.socket.close();
      without.socket.close();
    }
  }, 90_000);
});

describe("Finalize through the SDK", () => {
  /** Where Finalize cuts the clip: 4 s in, within JFK's first sentence. */
  const FINALIZE_AT_SECONDS = 4;

  it("mid-utterance, yields a final marked from_finalize, and the session goes on", async () => {
    const account = await createAdminAccount(baseUrl, adminToken, { maxConcurrentSessions: 1 });
    // endpointing=false: silence never ends an utterance, so the one in progress when Finalize
    // arrives is still open (nothing but Finalize or CloseStream can end it).
    const connection = await connect(sdkClient({ apiKey: account.key }), {
      model: "nova-3",
      encoding: "linear16",
      sample_rate: 16_000,
      endpointing: false,
    });
    const { socket, log } = connection;
    try {
      await opened(connection);
      const sessionId = await onlySessionId(account);
      const cut = FINALIZE_AT_SECONDS * BYTES_PER_SECOND;
      const head = CLIP.pcm.subarray(0, cut);
      const tail = CLIP.pcm.subarray(cut);

      // Faster than real time (a file upload), well under the 20-s queue cap.
      await streamPcm(log, head, { chunkBytes: CHUNK_BYTES, realTime: false });
      socket.sendFinalize({ type: "Finalize" });
      const first = await log.waitForMessage(
        "Results",
        FINAL_TIMEOUT_MS,
        (r) => r.is_final === true,
      );
      expect(first.from_finalize).toBe(true);
      expect(transcriptOf(first)).not.toBe("");
      expect(first.start + first.duration).toBeLessThanOrEqual(FINALIZE_AT_SECONDS + 0.001);

      // The session goes on: the rest of the clip, another Finalize, another final after the first.
      // Without endpointing a long utterance may still be cut at a pause (early-finals.ts: a
      // pause after 3 s of speech), so finals not from Finalize may come before the second one.
      const afterFirst = log.events.length;
      await streamPcm(log, tail, { chunkBytes: CHUNK_BYTES, realTime: false });
      socket.sendFinalize({ type: "Finalize" });
      const second = await log.waitForMessage(
        "Results",
        FINAL_TIMEOUT_MS,
        (r) => r.is_final === true && r.from_finalize === true,
        afterFirst,
      );
      expect(transcriptOf(second)).not.toBe("");
      for (const later of log.finals.filter((r) => r !== first)) {
        expect(later.start).toBeGreaterThanOrEqual(first.start + first.duration - 0.001);
      }
      expect(log.count("close")).toBe(0);

      socket.sendCloseStream({ type: "CloseStream" });
      const metadata = await log.waitForMessage("Metadata", CLOSE_TIMEOUT_MS);
      expect(metadata.request_id).toBe(sessionId);
      expect(metadata.sha256).toBe(sha256Hex(CLIP.pcm));
      expect(metadata.duration).toBeCloseTo(CLIP_SECONDS, 3);
      await log.waitFor("close", (e) => e.kind === "close", CLOSE_TIMEOUT_MS);
      expect(closeEvents(log)).toEqual([expect.objectContaining({ code: 1000 })]);
      for (const results of log.results) expect(results.metadata.request_id).toBe(sessionId);

      const model = first.metadata.model_info.name;
      const finals = log.finals.map(transcriptOf).filter((t) => t !== "");
      if (NOT_A_MODEL.has(model)) {
        // The fake's first final covers audio before the cut, the second audio after it.
        expect(Number(FAKE_TRANSCRIPT.exec(transcriptOf(first))?.[1])).toBeLessThan(cut / 2);
        expect(Number(FAKE_TRANSCRIPT.exec(transcriptOf(second))?.[1])).toBeGreaterThanOrEqual(
          cut / 2,
        );
      } else {
        const result = wordErrorRate(CLIP.reference, finals.join(" "));
        console.log(`Finalize session WER ${result.wer.toFixed(3)}: ${finals.join(" | ")}`);
        expect(result.wer).toBeLessThanOrEqual(MAX_WER_CUT_BY_FINALIZE);
      }
    } finally {
      socket.close();
    }
  }, 90_000);
});

describe("refused handshakes reach the SDK user as errors and are not retried", () => {
  it("429 when the account is at its concurrency limit", async () => {
    const account = await createAdminAccount(baseUrl, adminToken, { maxConcurrentSessions: 1 });
    const client = sdkClient({ apiKey: account.key });
    const first = await connect(client, LIVE_OPTIONS);
    let second: Connection | undefined;
    try {
      await opened(first);
      // Only now: connected together, either socket could take the one slot.
      second = await connect(client, LIVE_OPTIONS);
      const refused = await second.log.waitFor(
        "the refusal",
        (e) => e.kind === "error",
        OPEN_TIMEOUT_MS,
      );
      expect(refused.kind === "error" ? refused.message : "").toMatch(/\b429\b/);
      // Free the slot, so that a retry would now be admitted and show in the account's usage.
      first.socket.sendCloseStream({ type: "CloseStream" });
      await first.log.waitFor("close", (e) => e.kind === "close", CLOSE_TIMEOUT_MS);
      await noActiveSessions(account);
      await sleep(Math.max(0, refused.at + NO_RETRY_WINDOW_MS - Date.now()));

      expect(second.counter.handshakes).toHaveLength(1);
      expect(second.log.count("open")).toBe(0);
      expect(second.socket.readyState).toBe(3); // CLOSED
      // The SDK reports the refusal as a close it made itself, code 1000 (that is why it does
      // not retry), and only then the error: an app must watch `error`, not the close code.
      expect(closeEvents(second.log).map((e) => e.code)).toEqual([1000]);
      expect(await sessionsAdmitted(baseUrl, account.key)).toBe(1);
      expect(await activeSessionIds(baseUrl, account.key)).toEqual([]);
    } finally {
      first.socket.close();
      second?.socket.close();
    }
  }, 60_000);

  it("401 for an expired access token (Bearer), while a fresh one opens", async () => {
    const account = await createAdminAccount(baseUrl, adminToken, { maxConcurrentSessions: 2 });
    const mint = (nowMs: number) =>
      signAccessToken(tokenSecret, {
        accountId: account.accountId,
        keyId: account.keyId,
        ttlSeconds: 60,
        nowMs,
      });
    // Issued two minutes ago for 60 s: expired a minute ago.
    const expired = await connect(
      sdkClient({ accessToken: await mint(Date.now() - 120_000) }),
      LIVE_OPTIONS,
    );
    try {
      const refused = await expired.log.waitFor(
        "the refusal",
        (e) => e.kind === "error",
        OPEN_TIMEOUT_MS,
      );
      expect(refused.kind === "error" ? refused.message : "").toMatch(/\b401\b/);
      expect(expired.counter.handshakes.map((h) => h.authorization)).toEqual(["Bearer"]);
      await sleep(Math.max(0, refused.at + NO_RETRY_WINDOW_MS - Date.now()));
      expect(expired.counter.handshakes).toHaveLength(1);
      expect(expired.log.count("open")).toBe(0);
      expect(await sessionsAdmitted(baseUrl, account.key)).toBe(0);
    } finally {
      expired.socket.close();
    }

    // The same account, key and SDK path with a token that is still valid: it opens, so the
    // refusal above was the expiry and nothing else.
    const fresh = await connect(sdkClient({ accessToken: await mint(Date.now()) }), LIVE_OPTIONS);
    try {
      await opened(fresh);
      expect(fresh.counter.handshakes.map((h) => h.authorization)).toEqual(["Bearer"]);
      fresh.socket.sendCloseStream({ type: "CloseStream" });
      await fresh.log.waitForMessage("Metadata", CLOSE_TIMEOUT_MS);
      await fresh.log.waitFor("close", (e) => e.kind === "close", CLOSE_TIMEOUT_MS);
      expect(closeEvents(fresh.log)).toEqual([expect.objectContaining({ code: 1000 })]);
      expect(await sessionsAdmitted(baseUrl, account.key)).toBe(1);
    } finally {
      fresh.socket.close();
    }
  }, 60_000);
});

describe("other endings an SDK user meets", () => {
  it("400 for a Deepgram option Earshot does not support: an error, not retried", async () => {
    const account = await createAdminAccount(baseUrl, adminToken, { maxConcurrentSessions: 1 });
    const refused = await connect(sdkClient({ apiKey: account.key }), {
      ...LIVE_OPTIONS,
      diarize: "true",
    });
    try {
      const error = await refused.log.waitFor("the refusal", (e) => e.kind === "error", 15_000);
      // Only the status reaches the SDK user; the JSON body naming `diarize` does not.
      expect(error.kind === "error" ? error.message : "").toMatch(/\b400\b/);
      await sleep(Math.max(0, error.at + NO_RETRY_WINDOW_MS - Date.now()));
      expect(refused.counter.handshakes).toHaveLength(1);
      expect(refused.log.count("open")).toBe(0);
      expect(await sessionsAdmitted(baseUrl, account.key)).toBe(0);
    } finally {
      refused.socket.close();
    }
  }, 30_000);

  it("the account's session length cap ends with Metadata and close 1000 MAX-0000, not retried", async () => {
    const MAX_SESSION_SECONDS = 2;
    const account = await createAdminAccount(baseUrl, adminToken, {
      maxConcurrentSessions: 1,
      maxSessionSeconds: MAX_SESSION_SECONDS,
    });
    const capped = await connect(sdkClient({ apiKey: account.key }), LIVE_OPTIONS);
    try {
      await opened(capped);
      const sessionId = await onlySessionId(account);
      const metadata = await capped.log.waitForMessage(
        "Metadata",
        MAX_SESSION_SECONDS * 1000 + CLOSE_TIMEOUT_MS,
      );
      expect(metadata.request_id).toBe(sessionId);
      const closed = await capped.log.waitFor("close", (e) => e.kind === "close", CLOSE_TIMEOUT_MS);
      expect(closed).toMatchObject({ code: 1000 });
      expect(closed.kind === "close" ? closed.reason : "").toMatch(/^MAX-0000\b/);
      await sleep(Math.max(0, closed.at + NO_RETRY_WINDOW_MS - Date.now()));
      expect(capped.counter.handshakes).toHaveLength(1);
      expect(capped.log.count("open")).toBe(1);
      expect(await sessionsAdmitted(baseUrl, account.key)).toBe(1);
    } finally {
      capped.socket.close();
    }
  }, 90_000);
});
