/**
 * Chromium's own MediaRecorder against `wrangler dev` (issue 13, item 5): a page on the server's
 * origin (media-recorder-page.js) records the fake microphone playing a dev clip with
 * `audio/webm;codecs=opus` in 250 ms timeslices and sends every blob over `/v1/listen` opened with
 * NO `encoding` and NO `sample_rate`, as a page built on Deepgram's browser example does; the
 * server must detect WebM, demux and decode the Opus, and transcribe it about as well as the same
 * audio sent as `linear16` (through the official SDK, from Node, paced in real time in the same
 * 250 ms pieces, with the same trailing silence and the same options).
 *
 * "The same audio": the recording starts where the microphone was when the recorder started,
 * ~0.2 s into the clip, and the reference is the clip from that sample on (recording-offset.ts
 * finds it, and says why the unshifted clip is not a fair reference). What differs between the
 * two is then only what MediaRecorder adds (lossy Opus at its default bitrate, 48 kHz) and what
 * Earshot does with it (detection, demuxing, decoding, resampling).
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { DeepgramClient } from "@deepgram/sdk";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { pcm16ToFloat } from "../../tools/eval/wav";
import { wordErrorRate } from "../../tools/eval/wer";
import { launchBrowser } from "./browser";
import { OUTPUT_DIR } from "./global-setup";
import { decodeRecording, findOffset } from "./recording-offset";
import {
  type AdminAccount,
  activeSessionIds,
  BYTES_PER_SECOND,
  connect,
  createAdminAccount,
  opened,
  readClip,
  sleep,
  streamPcm,
} from "./sdk-harness";
import { withTrailingSilence } from "./wav";

const baseUrl = inject("baseUrl");
const adminToken = inject("adminToken");

const CLIP = readClip(process.env.E2E_CLIP ?? "wcpp_jfk");
const CLIP_SECONDS = CLIP.pcm.byteLength / BYTES_PER_SECOND;
/** What the issue asks for and what Deepgram's examples use: a blob every 250 ms. */
const TIMESLICE_MS = 250;
/**
 * Audio recorded (and, on the linear16 path, zeros sent) after the clip: 2.5 s covers the 500 ms
 * endpointing wait with room to spare, so the last utterance ends on its own before CloseStream.
 */
const TAIL_SECONDS = 2.5;
/**
 * Silence after the clip in the fake microphone's file, which Chromium plays in a loop: longer
 * than TAIL_SECONDS, so the recording stops before the clip comes round again.
 */
const FILE_SILENCE_SECONDS = 5;
/** The issue's bound: MediaRecorder's WER at most this much above linear16's on the same clip. */
const MAX_WER_ABOVE_LINEAR16 = 0.02;
/** Absolute bound, as demo.e2e.ts and sdk.e2e.ts: 2 errors in JFK's 22 words. */
const MAX_WER = 0.1;
/** From CloseStream to the server's close: the last utterance is transcribed first. */
const CLOSE_TIMEOUT_MS = 60_000;
/**
 * getUserMedia's audio processing off. Deepgram's example asks for `{ audio: true }`, which turns
 * Chromium's echo cancellation, noise suppression and gain control on; measured on JFK (recording
 * 0.23 s into the clip both times), WER 0.227 with it on and 0.091 off, an effect of the capture
 * (the recording then matches the clip at 0.91 instead of 0.99), not of the container. The demo
 * page turns noise suppression and gain control off for the same reason (public/mic-capture.js);
 * echo cancellation too here, as the fake microphone has no speaker to cancel.
 */
const CAPTURE = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
/**
 * The recording against the clip at the offset found (recording-offset.ts): measured 0.993 with
 * the processing off; 0.91 with it on; unrelated audio stays far below.
 */
const MIN_CORRELATION = 0.9;
/**
 * How far the first and the last utterance may start from the same audio's as linear16: a few
 * VAD frames (32 ms each) of difference from lossy coding; a wrong decode rate (8.8 % slow) moves
 * the last utterance of the 11-s clip, which starts near 8 s, by ~0.7 s.
 */
const MAX_TIMING_SHIFT_SECONDS = 0.25;
/** A session's slot is released in the background just after its close. */
const SLOT_RELEASE_TIMEOUT_MS = 15_000;
/** Model names that are not speech recognition: the WER assertions do not apply to them. */
const NOT_A_MODEL = new Set(["fake", "none"]);
/**
 * The same options on both paths, none about the audio. No interim results: they change nothing
 * in the finals and cost inference on a 2-core machine. `model` because the SDK's types want one.
 */
const OPTIONS = { model: "nova-3", interim_results: "false", endpointing: "500" } as const;

/** A path the server has no route for (see openRecorderPage). */
const PAGE_PATH = "/__e2e/media-recorder";
const PAGE_SCRIPT = path.join(import.meta.dirname, "media-recorder-page.js");

/** A server message, as far as this test reads it. */
interface Message {
  type: string;
  is_final?: boolean;
  start?: number;
  duration?: number;
  sha256?: string;
  channel?: { alternatives?: { transcript?: string }[] };
  metadata?: { model_info?: { name?: string } };
  [field: string]: unknown;
}

/** What media-recorder-page.js's recordAndSend returns. */
interface Recorded {
  mimeType: string;
  blobSizes: number[];
  blobTimes: number[];
  recordingMs: number;
  bytesBase64: string;
  received: { t: number; data: string }[];
  close: { t: number; code: number; reason: string } | null;
}

/** One path's outcome: the finals' text, the model that ran, the Metadata and the close. */
interface Outcome {
  finals: Message[];
  text: string;
  model: string;
  metadata: Message | undefined;
  closeCode: number | null;
}

function outcomeOf(messages: Message[], closeCode: number | null): Outcome {
  const finals = messages.filter((m) => m.type === "Results" && m.is_final === true);
  const spoken = finals.filter((m) => textOf(m) !== "");
  return {
    finals: spoken,
    text: spoken.map(textOf).join(" "),
    model: spoken[0]?.metadata?.model_info?.name ?? "",
    metadata: messages.findLast((m) => m.type === "Metadata"),
    closeCode,
  };
}

function textOf(message: Message): string {
  return (message.channel?.alternatives?.[0]?.transcript ?? "").trim();
}

/** `pcm` as `linear16` through the SDK: 250 ms pieces in real time, then TAIL_SECONDS of 0s. */
async function transcribeLinear16(account: AdminAccount, pcm: Uint8Array): Promise<Outcome> {
  const client = new DeepgramClient({ apiKey: account.key, baseUrl });
  const connection = await connect(client, {
    ...OPTIONS,
    encoding: "linear16",
    sample_rate: 16_000,
  });
  try {
    await opened(connection);
    const { log, socket } = connection;
    const chunkBytes = (TIMESLICE_MS / 1000) * BYTES_PER_SECOND;
    await streamPcm(log, pcm, { chunkBytes, realTime: true });
    const tail = new Uint8Array(TAIL_SECONDS * BYTES_PER_SECOND);
    await streamPcm(log, tail, { chunkBytes, realTime: true });
    socket.sendCloseStream({ type: "CloseStream" });
    const closed = await log.waitFor("close", (e) => e.kind === "close", CLOSE_TIMEOUT_MS);
    const messages = log.messages as unknown as Message[];
    return outcomeOf(messages, closed.kind === "close" ? closed.code : null);
  } finally {
    connection.socket.close();
  }
}

/**
 * A blank page on the server's origin running media-recorder-page.js. Its document must come from
 * the server itself: Chromium's Local Network Access checks block a socket to 127.0.0.1 from a
 * document of unknown address space (one fulfilled by Playwright's page.route fails with
 * net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS). The emptiest document the server serves is
 * its 404 for a path it has no route for; the test replaces its content. The origin is
 * http://127.0.0.1, a secure context, so getUserMedia is available.
 */
async function openRecorderPage(browser: Browser): Promise<Page> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  const response = await page.goto(`${baseUrl}${PAGE_PATH}`);
  expect(response?.status()).toBe(404);
  await page.setContent("<!doctype html><title>MediaRecorder e2e</title>");
  await page.addScriptTag({ path: PAGE_SCRIPT });
  await page.waitForFunction("typeof window.recordAndSend === 'function'");
  expect(errors).toEqual([]);
  return page;
}

/** Records the clip in the page with `mimeType` and sends it to the server as the page does. */
async function recordInBrowser(
  page: Page,
  account: AdminAccount,
  mimeType: string,
): Promise<{ recorded: Recorded; bytes: Uint8Array; outcome: Outcome }> {
  const query = new URLSearchParams(OPTIONS);
  const recorded = (await page.evaluate(
    `window.recordAndSend(${JSON.stringify({
      url: `${baseUrl.replace(/^http/, "ws")}/v1/listen?${query}`,
      apiKey: account.key,
      mimeType,
      timesliceMs: TIMESLICE_MS,
      recordMs: Math.round((CLIP_SECONDS + TAIL_SECONDS) * 1000),
      closeTimeoutMs: CLOSE_TIMEOUT_MS,
      audio: CAPTURE,
    })})`,
  )) as Recorded;
  const bytes = new Uint8Array(Buffer.from(recorded.bytesBase64, "base64"));
  const messages = recorded.received.map((r) => JSON.parse(r.data) as Message);
  return { recorded, bytes, outcome: outcomeOf(messages, recorded.close?.code ?? null) };
}

/** A browser recording, and the same audio sent as `linear16` (recording-offset.ts says why). */
interface Compared {
  recorded: Recorded;
  bytes: Uint8Array;
  outcome: Outcome;
  /** Clip samples (16 kHz) the recording missed at its start, and how well it matched after. */
  offset: number;
  correlation: number;
  linear16: Outcome;
}

async function recordAndCompare(mimeType: string): Promise<Compared> {
  const { recorded, bytes, outcome } = await recordInBrowser(page, account, mimeType);
  const { offset, correlation } = findOffset(pcm16ToFloat(CLIP.pcm), await decodeRecording(bytes));
  // The account has one slot, released just after the close: the next session waits for it.
  await slotFree(account);
  const linear16 = await transcribeLinear16(account, CLIP.pcm.subarray(offset * 2));
  await slotFree(account);
  return { recorded, bytes, outcome, offset, correlation, linear16 };
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * The WER assertions: `browser` within MAX_WER_ABOVE_LINEAR16 of `linear16`, both ≤ MAX_WER.
 * Returns false (and says why) when the server runs the fake transcriber, whose words have no
 * reference to match.
 */
function compareWer(label: string, browser: Outcome, linear16: Outcome): boolean {
  // A run configured for Whisper must have run Whisper: only E2E_TRANSCRIBER=fake may skip.
  if (inject("transcriber") === "whisper") {
    expect(NOT_A_MODEL.has(browser.model), browser.model).toBe(false);
  }
  if (NOT_A_MODEL.has(browser.model) || NOT_A_MODEL.has(linear16.model)) {
    console.warn(`WER not applicable: the server's transcriber is "${browser.model}"`);
    return false;
  }
  const viaBrowser = wordErrorRate(CLIP.reference, browser.text);
  const viaLinear16 = wordErrorRate(CLIP.reference, linear16.text);
  const whole = wordErrorRate(CLIP.reference, wholeClip.text);
  console.log(
    `${CLIP.id} with ${browser.model}: ${label} WER ${viaBrowser.wer.toFixed(3)} ` +
      `("${browser.text}"); the same audio as linear16 ${viaLinear16.wer.toFixed(3)} ` +
      `("${linear16.text}"); the whole clip as linear16 ${whole.wer.toFixed(3)} ` +
      `("${wholeClip.text}")`,
  );
  // Not compared with the whole clip's WER: that measures the recording's start, not the
  // container (recording-offset.ts).
  expect(viaLinear16.wer).toBeLessThanOrEqual(MAX_WER);
  expect(viaBrowser.wer).toBeLessThanOrEqual(MAX_WER);
  expect(viaBrowser.wer).toBeLessThanOrEqual(viaLinear16.wer + MAX_WER_ABOVE_LINEAR16);
  return true;
}

/** Waits until the account holds no session (expect.poll only works inside a test). */
async function slotFree(account: AdminAccount): Promise<void> {
  const deadline = Date.now() + SLOT_RELEASE_TIMEOUT_MS;
  while ((await activeSessionIds(baseUrl, account.key)).length > 0) {
    if (Date.now() > deadline) throw new Error("the linear16 session's slot was never released");
    await sleep(250);
  }
}

let browser: Browser;
let page: Page;
let account: AdminAccount;
/** The clip from its first sample as linear16 (sdk.e2e.ts bounds it too). */
let wholeClip: Outcome;

beforeAll(async () => {
  const fakeMic = path.join(OUTPUT_DIR, `${CLIP.id}+${FILE_SILENCE_SECONDS}s-silence.wav`);
  writeFileSync(
    fakeMic,
    withTrailingSilence({ sampleRate: 16_000, channels: 1, pcm: CLIP.pcm }, FILE_SILENCE_SECONDS),
  );
  browser = await launchBrowser(fakeMic);
  page = await openRecorderPage(browser);
  account = await createAdminAccount(baseUrl, adminToken, { maxConcurrentSessions: 1 });
  // The whole clip as linear16 first: it loads the models, so the page's handshake is quick and
  // its recording starts near the clip's start (the first handshake waits for the load, ~2 s,
  // and the recording then missed JFK's first phrase); and its WER is reported beside the others.
  wholeClip = await transcribeLinear16(account, CLIP.pcm);
  expect(wholeClip.closeCode).toBe(1000);
  await slotFree(account);
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

describe(`Chromium's MediaRecorder (audio/webm;codecs=opus, ${TIMESLICE_MS} ms timeslices) on ${CLIP.id}`, () => {
  const MIME = "audio/webm;codecs=opus";
  let compared: Compared;
  let recorded: Recorded;
  let bytes: Uint8Array;
  let outcome: Outcome;

  beforeAll(async () => {
    compared = await recordAndCompare(MIME);
    ({ recorded, bytes, outcome } = compared);
    // Kept for a person to inspect (ffprobe, mkvinfo) when the test fails.
    writeFileSync(path.join(OUTPUT_DIR, `media-recorder-${CLIP.id}.webm`), bytes);
  }, 150_000);

  it("records the clip itself, from where the microphone was at recorder.start", () => {
    console.log(
      `recording starts ${(compared.offset / 16).toFixed(1)} ms into ${CLIP.id}, ` +
        `correlation ${compared.correlation.toFixed(3)}`,
    );
    expect(compared.correlation).toBeGreaterThan(MIN_CORRELATION);
    expect(compared.linear16.closeCode).toBe(1000);
  });

  it("records WebM in one blob per timeslice, the first starting with the EBML header", () => {
    expect(recorded.mimeType).toMatch(/^audio\/webm/);
    expect([...bytes.subarray(0, 4)]).toEqual([0x1a, 0x45, 0xdf, 0xa3]);
    // ~one blob per 250 ms of recording (timers in a busy browser may merge or delay a few).
    const expected = recorded.recordingMs / TIMESLICE_MS;
    expect(recorded.blobSizes.length).toBeGreaterThan(expected * 0.7);
    expect(recorded.blobSizes.length).toBeLessThan(expected * 1.3 + 2);
  });

  it("ends with Metadata for exactly the bytes the page sent, then close 1000", () => {
    expect(outcome.closeCode).toBe(1000);
    const metadata = outcome.metadata;
    expect(metadata, JSON.stringify(recorded.received.at(-1))).toBeDefined();
    expect(metadata?.sha256).toBe(sha256Hex(bytes));
    expect(bytes.byteLength).toBe(recorded.blobSizes.reduce((sum, n) => sum + n, 0));
    // `duration` is the decoded audio's: what the recorder captured, give or take its start.
    expect(metadata?.duration).toBeGreaterThan(CLIP_SECONDS);
    expect(metadata?.duration).toBeLessThan(recorded.recordingMs / 1000 + 0.5);
    const errors = recorded.received.filter((r) => r.data.includes('"type":"Error"'));
    expect(errors).toEqual([]);
  });

  it("starts the utterances where the same audio as linear16 has them (decoded at its own rate)", () => {
    // Had the server taken the WebM bytes for 16 kHz PCM, it would hear noise (no words). A wrong
    // decode rate still yields words (Whisper tiny read Opus resampled as 44.1 kHz, 8.8 % slow,
    // with the same WER), but stretches the speech: JFK's last utterance would start ~0.7 s late.
    // Starts, not ends: a final ends where its early final was decoded (the first silence frame)
    // or, decoded at the flush, where the flush was, and which of the two answers depends on
    // timing (the two paths' last finals once ended 10.56 and 11.01 s, the same words).
    const starts = (o: Outcome) => o.finals.map((m) => m.start ?? 0);
    const span = (o: Outcome) => ({ first: Math.min(...starts(o)), last: Math.max(...starts(o)) });
    const viaBrowser = span(outcome);
    const viaLinear16 = span(compared.linear16);
    console.log(
      `utterances from ${viaBrowser.first.toFixed(2)} s to ${viaBrowser.last.toFixed(2)} s; ` +
        `as linear16 from ${viaLinear16.first.toFixed(2)} s to ${viaLinear16.last.toFixed(2)} s`,
    );
    expect(outcome.finals.length).toBeGreaterThan(0);
    expect(Math.abs(viaBrowser.first - viaLinear16.first)).toBeLessThan(MAX_TIMING_SHIFT_SECONDS);
    expect(Math.abs(viaBrowser.last - viaLinear16.last)).toBeLessThan(MAX_TIMING_SHIFT_SECONDS);
  });

  it(`transcribes within ${MAX_WER_ABOVE_LINEAR16} WER of the clip sent as linear16 (real models only)`, (ctx) => {
    if (!compareWer("MediaRecorder WebM/Opus", outcome, compared.linear16)) ctx.skip();
  });
});

describe("Chromium's MediaRecorder with audio/ogg;codecs=opus", () => {
  const MIME = "audio/ogg;codecs=opus";

  it("is recorded and transcribed like WebM where Chromium supports it; where not, is refused by the recorder itself", async (ctx) => {
    const supported = await page.evaluate(`MediaRecorder.isTypeSupported(${JSON.stringify(MIME)})`);
    if (supported === true) {
      const { bytes, outcome, correlation, linear16 } = await recordAndCompare(MIME);
      expect([...bytes.subarray(0, 4)]).toEqual([0x4f, 0x67, 0x67, 0x53]); // "OggS"
      expect(correlation).toBeGreaterThan(MIN_CORRELATION);
      expect(outcome.closeCode).toBe(1000);
      expect(outcome.metadata?.sha256).toBe(sha256Hex(bytes));
      if (!compareWer("MediaRecorder Ogg/Opus", outcome, linear16)) ctx.skip();
      return;
    }
    // Chromium 156 (Debian's, what CI installs) records WebM, MP4 and PCM-in-WebM but not Ogg:
    // nothing to send. Asserted rather than skipped, so the day Chromium records Ogg the branch
    // above runs instead. (Firefox's MediaRecorder writes Ogg/Opus; the Ogg demuxer is covered
    // by test/ogg-opus-demuxer.test.ts and test/session-opus.test.ts.)
    expect(supported).toBe(false);
    const refusal = await page.evaluate(`(async () => {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      try {
        new MediaRecorder(stream, { mimeType: ${JSON.stringify(MIME)} });
        return "constructed";
      } catch (error) {
        return error.name;
      } finally {
        for (const track of stream.getTracks()) track.stop();
      }
    })()`);
    expect(refusal).toBe("NotSupportedError");
  });
});
