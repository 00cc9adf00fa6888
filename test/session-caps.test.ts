/**
 * The caps a session enforces (src/session/caps.ts), each at its limit. The queue cap needs a
 * session that cannot keep up; locally workerd delivers the next message only when the object is
 * idle (so a fast client is slowed by the socket, not queued), hence a LiveSession driven directly
 * with a transcriber whose flush waits on a gate: while it waits, audio queues up.
 */

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hashApiKey } from "../src/auth/api-keys";
import { parseListenOptions } from "../src/protocol/options";
import { createLogger } from "../src/runtime/log";
import {
  MAX_FRAME_BYTES,
  MAX_QUEUED_AUDIO_SECONDS,
  MAX_QUEUED_TASKS,
  MAX_UTTERANCE_SECONDS,
  MAX_UTTERANCE_SOFT_SECONDS,
} from "../src/session/caps";
import { LiveSession } from "../src/session/live-session";
import { softCutVar } from "../src/session/session-config";
import { beamSizeVar, DEFAULT_BEAM_SIZE, MAX_BEAM_SIZE } from "../src/stt/beam-size";
import type { Transcriber } from "../src/stt/transcriber";
import { type ServerJson, TestClient } from "./helpers/client";

interface Gate {
  transcriber: Transcriber;
  open(): void;
}

/** A transcriber whose every flush waits until the gate opens. */
function gatedTranscriber(): Gate {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return {
    open: () => open(),
    transcriber: {
      model: { name: "gated", version: "0", arch: "test", uuid: "gated" },
      open: () => ({
        feed: () => {},
        flush: () => opened,
        afterFinals: () => opened,
        close: () => {},
      }),
    },
  };
}

function liveSession(transcriber: Transcriber, query = "encoding=linear16&sample_rate=16000") {
  const parsed = parseListenOptions(new URLSearchParams(query));
  if (!parsed.ok) throw new Error(parsed.message);
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.binaryType = "arraybuffer";
  server.accept();
  client.accept();
  const messages: ServerJson[] = [];
  client.addEventListener("message", (event) => messages.push(JSON.parse(String(event.data))));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    client.addEventListener("close", (event) =>
      resolve({ code: event.code, reason: event.reason }),
    ),
  );
  const ends: number[] = [];
  const live = new LiveSession(
    {
      sessionId: "caps-test",
      accountId: "caps-account",
      keyId: "caps-key",
      options: parsed.options,
      createdAt: Date.now(),
      idleTimeoutMs: 30_000,
      resumeWindowMs: 30_000,
      maxSessionSeconds: 3600,
      softCutSeconds: MAX_UTTERANCE_SOFT_SECONDS,
    },
    transcriber,
    {
      addFinal: () => {},
      end: (_bytes, code) => ends.push(code),
      addDelivery: () => {},
      deliveriesFrom: () => [],
    },
    createLogger({ test: "caps" }),
    { ended: () => {} },
  );
  live.attach(server, null);
  return { client, messages, closed, ends };
}

const ONE_SECOND = 32_000; // bytes of 16 kHz linear16

describe("MAX_QUEUED_AUDIO_SECONDS", () => {
  it("closes 1008 BUF-0000 when more audio than the cap waits behind a slow step", async () => {
    const gate = gatedTranscriber();
    const { client, closed } = liveSession(gate.transcriber);
    client.send(JSON.stringify({ type: "Finalize" })); // blocks the queue until the gate opens
    for (let s = 0; s <= MAX_QUEUED_AUDIO_SECONDS; s++) client.send(new Uint8Array(ONE_SECOND));
    const result = await closed;
    expect(result.code).toBe(1008);
    expect(result.reason).toMatch(/^BUF-0000/);
    gate.open();
  });

  it("accepts exactly the cap", async () => {
    const gate = gatedTranscriber();
    const { client, closed, messages } = liveSession(gate.transcriber);
    client.send(JSON.stringify({ type: "Finalize" }));
    for (let s = 0; s < MAX_QUEUED_AUDIO_SECONDS; s++) client.send(new Uint8Array(ONE_SECOND));
    gate.open();
    client.send(JSON.stringify({ type: "CloseStream" }));
    const result = await closed;
    expect(result.code).toBe(1000);
    const metadata = messages.find((m) => m.type === "Metadata");
    expect(metadata?.duration).toBe(MAX_QUEUED_AUDIO_SECONDS);
  });
});

describe("MAX_QUEUED_TASKS", () => {
  // The blocked Finalize is one waiting task; tiny frames fill the rest, far under the byte cap.
  it("accepts exactly the cap of waiting messages", async () => {
    const gate = gatedTranscriber();
    const { client, closed } = liveSession(gate.transcriber);
    client.send(JSON.stringify({ type: "Finalize" }));
    for (let i = 1; i < MAX_QUEUED_TASKS; i++) client.send(new Uint8Array(2));
    gate.open();
    client.send(JSON.stringify({ type: "CloseStream" }));
    expect((await closed).code).toBe(1000);
  });

  it("closes 1008 BUF-0000 naming the cap at one more", async () => {
    const gate = gatedTranscriber();
    const { client, closed } = liveSession(gate.transcriber);
    client.send(JSON.stringify({ type: "Finalize" }));
    for (let i = 0; i < MAX_QUEUED_TASKS; i++) client.send(new Uint8Array(2));
    const result = await closed;
    expect(result.code).toBe(1008);
    expect(result.reason).toMatch(new RegExp(`^BUF-0000.*${MAX_QUEUED_TASKS} messages`));
    gate.open();
  });
});

describe("MAX_QUEUED_AUDIO_SECONDS at low rates", () => {
  it("never reads one legal frame as a flood (8 kHz µ-law: 20 s is less than MAX_FRAME_BYTES)", async () => {
    const gate = gatedTranscriber();
    const { client, closed, messages } = liveSession(
      gate.transcriber,
      "encoding=mulaw&sample_rate=8000",
    );
    client.send(JSON.stringify({ type: "Finalize" })); // the frame waits behind it in the queue
    client.send(new Uint8Array(MAX_FRAME_BYTES).fill(0xff)); // µ-law silence
    gate.open();
    client.send(JSON.stringify({ type: "CloseStream" }));
    expect((await closed).code).toBe(1000);
    expect(messages.find((m) => m.type === "Metadata")?.duration).toBe(MAX_FRAME_BYTES / 8000);
  });
});

describe("a final that fails after CloseStream", () => {
  it("closes 1011 instead of sending Metadata and a clean 1000", async () => {
    const failing: Transcriber = {
      model: { name: "failing", version: "0", arch: "test", uuid: "failing" },
      open: () => ({
        feed: () => {},
        flush: async (reason) => {
          if (reason === "close") throw new Error("the model broke");
        },
        afterFinals: async () => {},
        close: () => {},
      }),
    };
    const { client, closed, messages, ends } = liveSession(failing);
    client.send(new Uint8Array(ONE_SECOND));
    client.send(JSON.stringify({ type: "CloseStream" }));
    const result = await closed;
    expect(result.code).toBe(1011);
    expect(messages.filter((m) => m.type === "Metadata")).toEqual([]);
    await expect.poll(() => ends).toEqual([1011]);
  });
});

describe("session length", () => {
  it("ends a session at its account's max_session_seconds with Metadata and close 1000 MAX-0000", async () => {
    const key = "caps-test-key-0123456789abcdef";
    const now = Date.now();
    await env.DB.batch([
      env.DB.prepare(
        "INSERT OR IGNORE INTO accounts (id, name, max_concurrent_sessions, max_session_seconds, created_at) VALUES ('acc_short', 'short sessions', 5, 1, ?)",
      ).bind(now),
      env.DB.prepare(
        "INSERT OR IGNORE INTO api_keys (id, account_id, key_hash, label, created_at) VALUES ('key_short', 'acc_short', ?, 'caps test', ?)",
      ).bind(await hashApiKey(key), now),
    ]);
    const opening = Date.now(); // before the upgrade: the server's clock cannot start earlier
    const client = await TestClient.open("?encoding=linear16&sample_rate=16000", { key });
    const keepAlive = setInterval(() => client.sendJson({ type: "KeepAlive" }), 300);
    const closed = await client.waitClosed(5_000);
    const after = Date.now() - opening;
    clearInterval(keepAlive);
    // 1 s, as the account says: never before, and not much after (a timer on a busy machine).
    expect(after).toBeGreaterThanOrEqual(1000);
    expect(after).toBeLessThan(2500);
    expect(closed.code).toBe(1000);
    expect(closed.reason).toMatch(/^MAX-0000/);
    expect(client.of("Metadata").length).toBe(1);
  });
});

describe("EARSHOT_SOFT_CUT_SECONDS", () => {
  it("takes whole seconds from 1 to MAX_UTTERANCE_SECONDS, else the default", () => {
    expect(softCutVar("5")).toBe(5);
    expect(softCutVar("1")).toBe(1);
    expect(softCutVar(String(MAX_UTTERANCE_SECONDS))).toBe(MAX_UTTERANCE_SECONDS);
    for (const bad of [undefined, "", "0", "-3", "2.5", "16", "five", " 5x"]) {
      expect(softCutVar(bad), String(bad)).toBe(MAX_UTTERANCE_SOFT_SECONDS);
    }
  });
});

describe("EARSHOT_BEAM_SIZE", () => {
  it("takes whole numbers of beams from 1 (greedy) to MAX_BEAM_SIZE, else the default", () => {
    expect(beamSizeVar("1")).toBe(1);
    expect(beamSizeVar("2")).toBe(2);
    expect(beamSizeVar(String(MAX_BEAM_SIZE))).toBe(MAX_BEAM_SIZE);
    expect(DEFAULT_BEAM_SIZE).toBe(3);
    for (const bad of [undefined, "", " ", "0", "-1", "2.5", String(MAX_BEAM_SIZE + 1), "three"]) {
      expect(beamSizeVar(bad), String(bad)).toBe(DEFAULT_BEAM_SIZE);
    }
  });
});
