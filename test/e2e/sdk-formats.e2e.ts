/**
 * Audio files through the official Deepgram SDK, as an application streams a file it has: the
 * bytes of the file, in real time, with no `encoding` and no `sample_rate`, so the server detects
 * the container (README, "Audio formats"). Two files a user has: a dev clip's WAV file exactly as
 * it is on disk, and the same clip as Ogg/Opus from `opusenc` at its default settings. In the same
 * run, the clip's samples go as raw `linear16` at 16 kHz with the encoding named: the reference
 * each file's transcript is held to (the bound: WER within 0.02 of linear16).
 *
 * `opusenc` is Debian's opus-tools, which `npm test` and `npm run test:e2e` install when missing
 * (tools/dev/test-prereqs.ts).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { DeepgramClient } from "@deepgram/sdk";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { deletionRuns, wordErrorRate } from "../../tools/eval/wer";
import {
  type AdminAccount,
  BYTES_PER_SECOND,
  type Connection,
  connect,
  createAdminAccount,
  opened,
  readClip,
  streamPcm,
  transcriptOf,
} from "./sdk-harness";

const baseUrl = inject("baseUrl");
const adminToken = inject("adminToken");

/** 7.1 s, 22 words, read speech. */
const CLIP = readClip("psx_librivox_0870");
const CLIP_SECONDS = CLIP.pcm.byteLength / BYTES_PER_SECOND;
/** The bound: a file's WER at most this much above the same audio sent as linear16. */
const MAX_WER_ABOVE_LINEAR16 = 0.02;
/** 100 ms of each stream per message, what a file-streaming app sends. */
const CHUNK_SECONDS = 0.1;
/** From CloseStream to close: the last utterance is transcribed first. */
const CLOSE_TIMEOUT_MS = 60_000;
/** Opus frames round the decoded length up by at most one 20-ms frame; WAV is exact. */
const OPUS_DURATION_TOLERANCE_SECONDS = 0.03;
/** Model names that are not speech recognition: the WER assertion does not apply to them. */
const NOT_A_MODEL = new Set(["fake", "none"]);

const run = promisify(execFile);

/** The clip's WAV file through `opusenc` with its defaults, as a user would make an .opus file. */
async function opusFile(wav: Uint8Array): Promise<Uint8Array> {
  const dir = await mkdtemp(path.join(tmpdir(), "earshot-sdk-opus-"));
  try {
    await writeFile(path.join(dir, "clip.wav"), wav);
    await run("opusenc", ["--quiet", path.join(dir, "clip.wav"), path.join(dir, "clip.opus")]);
    return new Uint8Array(await readFile(path.join(dir, "clip.opus")));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface Stream {
  name: string;
  bytes: Uint8Array;
  /** The Deepgram options the app passes (the SDK puts them in the URL as they are). */
  options: Parameters<typeof connect>[1];
  connection?: Connection;
}

const COMMON = { model: "nova-3", endpointing: 500 } as const;

describe(`files through the SDK with no encoding or sample_rate (${CLIP.id})`, () => {
  let account: AdminAccount;
  const streams: Stream[] = [
    {
      name: "linear16 (raw, encoding named)",
      bytes: CLIP.pcm,
      options: { ...COMMON, encoding: "linear16", sample_rate: 16_000 },
    },
    { name: "WAV file", bytes: CLIP.file, options: { ...COMMON } },
  ];

  beforeAll(async () => {
    streams.push({ name: "Ogg/Opus file", bytes: await opusFile(CLIP.file), options: COMMON });
    account = await createAdminAccount(baseUrl, adminToken, {
      maxConcurrentSessions: streams.length,
    });
    const client = new DeepgramClient({ apiKey: account.key, baseUrl });
    // All three at once, each paced by its own byte rate, so they share the machine alike.
    await Promise.all(
      streams.map(async (stream) => {
        const connection = await connect(client, stream.options);
        stream.connection = connection;
        await opened(connection);
        const bytesPerSecond = stream.bytes.byteLength / CLIP_SECONDS;
        await streamPcm(connection.log, stream.bytes, {
          chunkBytes: Math.ceil(bytesPerSecond * CHUNK_SECONDS),
          realTime: true,
          bytesPerSecond,
        });
        connection.socket.sendCloseStream({ type: "CloseStream" });
        await connection.log.waitFor("close", (e) => e.kind === "close", CLOSE_TIMEOUT_MS);
      }),
    );
  }, 120_000);

  afterAll(() => {
    for (const stream of streams) stream.connection?.socket.close();
  });

  function logOf(stream: Stream) {
    if (stream.connection === undefined) throw new Error(`${stream.name} never connected`);
    return stream.connection.log;
  }

  it("asks for the files with no encoding or sample_rate in the URL", () => {
    for (const stream of streams.slice(1)) {
      const url = new URL(stream.connection?.socket.socket.url ?? "");
      expect(url.searchParams.has("encoding"), stream.name).toBe(false);
      expect(url.searchParams.has("sample_rate"), stream.name).toBe(false);
    }
  });

  it("ends each with Metadata for exactly the bytes sent and the clip's duration, then close 1000", () => {
    for (const stream of streams) {
      const log = logOf(stream);
      const metadata = log.messages.at(-1);
      expect(metadata?.type, `${stream.name}: ${log.summary()}`).toBe("Metadata");
      if (metadata?.type !== "Metadata") continue;
      expect(metadata.sha256, stream.name).toBe(
        createHash("sha256").update(stream.bytes).digest("hex"),
      );
      const tolerance = stream.name.startsWith("Ogg") ? OPUS_DURATION_TOLERANCE_SECONDS : 0.001;
      expect(Math.abs(metadata.duration - CLIP_SECONDS), stream.name).toBeLessThanOrEqual(
        tolerance,
      );
      expect(log.events.at(-1), stream.name).toMatchObject({ kind: "close", code: 1000 });
      expect(stream.connection?.counter.handshakes, stream.name).toHaveLength(1);
    }
  });

  it(`transcribes each file within ${MAX_WER_ABOVE_LINEAR16} WER of linear16, losing no two words in a row`, (ctx) => {
    const texts = streams.map((stream) =>
      logOf(stream)
        .finals.map(transcriptOf)
        .filter((t) => t !== "")
        .join(" "),
    );
    const model = logOf(streams[0] as Stream).finals[0]?.metadata.model_info.name ?? "";
    // A run configured for Whisper must have run Whisper: only E2E_TRANSCRIBER=fake may skip.
    if (inject("transcriber") === "whisper") expect(NOT_A_MODEL.has(model), model).toBe(false);
    if (NOT_A_MODEL.has(model)) {
      // The fake's words fingerprint samples, which a lossy codec changes: nothing to compare.
      console.warn(`WER not applicable: the server's transcriber is "${model}"`);
      ctx.skip();
    }
    const results = texts.map((text) => wordErrorRate(CLIP.reference, text));
    streams.forEach((stream, i) => {
      console.log(`${stream.name}: WER ${results[i]?.wer.toFixed(3)}: ${texts[i]}`);
    });
    const reference = results[0]?.wer ?? Number.NaN;
    for (const [i, result] of results.entries()) {
      const name = streams[i]?.name;
      expect(result.wer, name).toBeLessThanOrEqual(reference + MAX_WER_ABOVE_LINEAR16);
      expect(Math.max(0, ...deletionRuns(result.alignment)), name).toBeLessThan(2);
    }
  });
});
