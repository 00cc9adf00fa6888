/**
 * The demo page in a real browser: Debian's Chromium with a fake microphone playing a speech clip
 * from ../shared/eval/dev, against `wrangler dev` (global-setup.ts). What the page shows is
 * compared with what went over its WebSocket (page-spy.js records both).
 *
 * Chromium loops the clip, so it is played with SILENCE_SECONDS of silence appended: the first
 * pass ends (and its finals settle) before the second begins, and the test stops in that gap.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { verifyAccessToken } from "../../src/auth/access-token";
import { parseManifest } from "../../tools/eval/manifest";
import { parseWav } from "../../tools/eval/wav";
import { deletedRuns, wordErrorRate } from "../../tools/eval/wer";
import {
  installSpy,
  launchBrowser,
  messagesOf,
  readSpy,
  type SocketRecord,
  type SpyRecord,
  transcriptOf,
} from "./browser";
import { OUTPUT_DIR } from "./global-setup";
import { wavSeconds, withTrailingSilence } from "./wav";

const root = path.resolve(import.meta.dirname, "../..");
const EVAL_DIR = path.resolve(root, process.env.EARSHOT_SHARED ?? "../shared", "eval", "dev");
const CLIP_ID = process.env.E2E_CLIP ?? "wcpp_jfk";
/**
 * Silence after the clip before Chromium loops it: 5 s covers the 500 ms endpointing wait, the
 * 1 000 ms UtteranceEnd gap and the STOP_AFTER_SECONDS margin below with seconds to spare.
 */
const SILENCE_SECONDS = 5;
/** Stop once this much audio beyond the clip has been sent: endpointing (0.5 s) plus margin. */
const STOP_AFTER_SECONDS = 2;
/**
 * Word errors allowed for a real model on the clip: JFK through the page is at 1 error of 22
 * ("is not" for "ask not"); 2 allows one more. A lost phrase (two or more deleted words in a row)
 * fails apart. "ask not" used to be lost through the page and listed here as known: Silero heard
 * it only when the stream started early enough in the clip, until its state was primed with
 * silence (src/vad/silero.ts, VAD_PRIMING_FRAMES); then, in 1 run in 3, because Whisper's decode
 * of it scored a no-speech probability just above the verdict's old bound (NO_SPEECH_CONFIDENT,
 * src/stt/whisper/speech-evidence.ts). The audio the page sent is saved as demo-sent.wav beside the
 * screenshots, to replay a failing run offline.
 */
const MAX_ERRORS = 2;

/** Bytes of one 16 kHz PCM16 sample, and the frame bounds the issue asks for (20–100 ms). */
const BYTES_PER_SECOND = 16_000 * 2;
const MIN_FRAME_BYTES = 0.02 * BYTES_PER_SECOND;
const MAX_FRAME_BYTES = 0.1 * BYTES_PER_SECOND;
/** Model names that are not speech recognition: the WER assertion does not apply to them. */
const NOT_A_MODEL = new Set(["fake", "none"]);

const baseUrl = inject("baseUrl");
const tokenSecret = inject("tokenSecret");
const adminToken = inject("adminToken");

/** Sets the demo account's concurrency limit through the admin API. */
async function setDemoLimit(limit: number): Promise<void> {
  const response = await fetch(`${baseUrl}/admin/accounts/demo`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ max_concurrent_sessions: limit }),
  });
  if (!response.ok) throw new Error(`PATCH limit: ${response.status} ${await response.text()}`);
}

function manifestReference(id: string): string {
  const rows = parseManifest(readFileSync(path.join(EVAL_DIR, "manifest.tsv"), "utf8"));
  const row = rows.find((r) => r.id === id);
  if (row) return row.reference;
  throw new Error(`${id} is not in ${EVAL_DIR}/manifest.tsv`);
}

/** Text of the element with data-testid `id` ("" when empty). */
async function textOf(page: Page, id: string): Promise<string> {
  return (await page.getByTestId(id).textContent()) ?? "";
}

function statusText(page: Page): Promise<string> {
  return textOf(page, "status");
}

const POLL_MS = 100;

/**
 * Polls `read` until `done` holds; throws with the last value after `timeoutMs`. (expect.poll
 * only works inside a test, and the main scenario runs in beforeAll.)
 */
async function waitUntil<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last: ${String(value)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function waitForStatus(page: Page, pattern: RegExp, timeoutMs: number): Promise<void> {
  await waitUntil(
    `status ${pattern}`,
    () => statusText(page),
    (s) => pattern.test(s),
    timeoutMs,
  );
}

/** Presses Start and waits for the first words on the page; returns them. */
async function listenUntilTranscript(page: Page): Promise<string> {
  await page.getByTestId("start").click();
  await waitForStatus(page, /listening/i, 15_000);
  await expect.poll(() => textOf(page, "transcript"), { timeout: 20_000 }).not.toBe("");
  return textOf(page, "transcript");
}

/** Starts the page, waits for its first final, and names its session. */
async function listeningSession(page: Page): Promise<{ before: string; sessionId: unknown }> {
  const before = await listenUntilTranscript(page);
  const firstSocket = (await readSpy(page)).sockets[0];
  if (firstSocket === undefined) throw new Error("no socket");
  return { before, sessionId: messagesOf(firstSocket)[0]?.session_id };
}

/** Seconds of audio sent so far on the page's first socket. */
async function secondsSent(page: Page): Promise<number> {
  const spy = await readSpy(page);
  const frames = spy.sockets[0]?.binaryFrames ?? [];
  return frames.reduce((sum, bytes) => sum + bytes, 0) / BYTES_PER_SECOND;
}

let browser: Browser;
let clipSeconds = 0;
let wavPath = "";

beforeAll(async () => {
  const clip = parseWav(new Uint8Array(readFileSync(path.join(EVAL_DIR, `${CLIP_ID}.wav`))));
  clipSeconds = wavSeconds(clip);
  wavPath = path.join(OUTPUT_DIR, `${CLIP_ID}+${SILENCE_SECONDS}s-silence.wav`);
  writeFileSync(wavPath, withTrailingSilence(clip, SILENCE_SECONDS));
  browser = await launchBrowser(wavPath);
});

afterAll(async () => {
  await browser?.close();
});

async function openPage(options: { clipboard?: boolean } = {}): Promise<{
  context: BrowserContext;
  page: Page;
  errors: string[];
}> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  if (options.clipboard) {
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: baseUrl });
  }
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await installSpy(page);
  await page.goto(baseUrl);
  return { context, page, errors };
}

/**
 * WER of the finals of the clip's first pass (those that start before Chromium loops it). The test
 * is skipped, never passed, when the server has no speech model; a run configured for Whisper must
 * have run Whisper (only E2E_TRANSCRIBER=fake may skip).
 */
async function firstPassScore(
  page: Page,
  socket: SocketRecord,
  ctx: { skip: () => void },
  label: string,
): Promise<ReturnType<typeof wordErrorRate>> {
  const model = await textOf(page, "model");
  if (inject("transcriber") === "whisper") expect(NOT_A_MODEL.has(model), model).toBe(false);
  if (NOT_A_MODEL.has(model)) {
    console.warn(`WER not applicable: the server's transcriber is "${model}"`);
    ctx.skip();
  }
  const finals = messagesOf(socket)
    .filter((m) => m.type === "Results" && m.is_final && (m.start ?? 0) < clipSeconds)
    .map(transcriptOf)
    .filter((text) => text !== "");
  const result = wordErrorRate(manifestReference(CLIP_ID), finals.join(" "));
  console.log(`${label} ${result.wer.toFixed(3)} with ${model}: ${finals.join(" ")}`);
  return result;
}

/** A lost phrase is two or more deleted words in a row: never allowed, whatever the total. */
function lostPhrases(result: ReturnType<typeof wordErrorRate>): string[] {
  return deletedRuns(result.alignment)
    .filter((run) => run.length >= 2)
    .map((run) => run.join(" "));
}

describe(`live captions from a fake microphone playing ${CLIP_ID}`, () => {
  let page: Page;
  let context: BrowserContext;
  let pageErrors: string[];
  let spy: SpyRecord;
  let socket: SocketRecord;
  let textBeforeStop = "";
  let contrast: { selector: string; ratio?: number; missing?: boolean }[] = [];

  beforeAll(async () => {
    ({ context, page, errors: pageErrors } = await openPage({ clipboard: true }));
    await page.getByTestId("start").click();
    await waitForStatus(page, /listening/i, 15_000);
    // The first pass of the clip and the endpoint after it, measured in audio sent (not wall
    // time): stop in the silence before Chromium loops the clip.
    let shotLive = false;
    await waitUntil(
      "the clip and its endpoint to be sent",
      async () => {
        // One picture mid-run, with settled finals and an interim beside them.
        if (!shotLive && (await textOf(page, "interim")) !== "") {
          if ((await textOf(page, "transcript")) !== "") {
            await page.screenshot({ path: path.join(OUTPUT_DIR, "demo-live.png") });
            shotLive = true;
          }
        }
        return secondsSent(page);
      },
      (seconds) => seconds >= clipSeconds + STOP_AFTER_SECONDS,
      60_000,
    );
    contrast = await page.evaluate(
      readFileSync(path.join(import.meta.dirname, "a11y-check.js"), "utf8"),
    );
    textBeforeStop = await textOf(page, "transcript");
    await page.getByTestId("stop").click();
    await waitForStatus(page, /stopped/i, 40_000);
    spy = await readSpy(page);
    const first = spy.sockets[0];
    if (first === undefined) throw new Error("the page opened no WebSocket");
    socket = first;
    // The audio exactly as the server got it, to replay offline when a transcript comes out wrong.
    const sent = Buffer.from(String(await page.evaluate("window.__e2eSentBase64()")), "base64");
    writeFileSync(
      path.join(OUTPUT_DIR, "demo-sent.wav"),
      withTrailingSilence({ sampleRate: 16_000, channels: 1, pcm: new Uint8Array(sent) }, 0),
    );
    await page.screenshot({ path: path.join(OUTPUT_DIR, "demo-desktop.png"), fullPage: true });
  });

  afterAll(async () => {
    await context?.close();
  });

  it("connects with a short-lived bearer token as subprotocol and the documented options", async () => {
    expect(spy.sockets).toHaveLength(1);
    const url = new URL(socket.url);
    expect(url.pathname).toBe("/v1/listen");
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      encoding: "linear16",
      sample_rate: "16000",
      interim_results: "true",
      vad_events: "true",
      utterance_end_ms: "1000",
      endpointing: "500",
    });
    const [scheme, token] = socket.protocols;
    expect(scheme).toBe("bearer");
    const verified = await verifyAccessToken(tokenSecret, token ?? "", Date.now());
    expect(verified.ok).toBe(true);
    if (verified.ok) {
      expect(verified.claims).toMatchObject({ sub: "demo", kid: "key_demo" });
      expect(verified.claims.exp - verified.claims.iat).toBe(60);
    }
  });

  it("sends 16-bit PCM in 20–100 ms binary frames", () => {
    const frames = socket.binaryFrames;
    expect(frames.length).toBeGreaterThan(0);
    for (const bytes of frames) {
      expect(bytes % 2).toBe(0);
      expect(bytes).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    }
    // Only the last frame (the worklet's partial frame flushed by Stop) may be short.
    for (const bytes of frames.slice(0, -1)) expect(bytes).toBeGreaterThanOrEqual(MIN_FRAME_BYTES);
  });

  it("places the clip's speech where it is in the clip (the audio really is 16 kHz)", () => {
    // Finals carry times in seconds of audio the server received. Had the page sent, say, 48 kHz
    // labelled as 16 kHz, the clip's speech would end near 3 × its length.
    const finals = messagesOf(socket).filter((m) => m.type === "Results" && m.is_final);
    const ends = finals
      .filter((m) => transcriptOf(m) !== "")
      .map((m) => (m.start ?? 0) + (m.duration ?? 0));
    expect(ends.length).toBeGreaterThan(0);
    const lastEnd = Math.max(...ends);
    expect(lastEnd).toBeGreaterThan(clipSeconds * 0.7);
    expect(lastEnd).toBeLessThan(clipSeconds + STOP_AFTER_SECONDS + 0.5);
  });

  it("shows an interim before the first final, replacing it rather than appending", () => {
    const firstInterim = spy.dom.findIndex((d) => d.id === "interim" && d.text !== "");
    const firstFinal = spy.dom.findIndex((d) => d.id === "transcript" && d.text !== "");
    expect(firstInterim).toBeGreaterThanOrEqual(0);
    expect(firstFinal).toBeGreaterThan(firstInterim);
    // Every interim the page showed is exactly one interim the server sent.
    const sent = new Set(
      messagesOf(socket)
        .filter((m) => m.type === "Results" && !m.is_final)
        .map(transcriptOf),
    );
    const shown = spy.dom.filter((d) => d.id === "interim" && d.text !== "").map((d) => d.text);
    expect(shown.length).toBeGreaterThan(0);
    for (const text of shown) expect(sent).toContain(text);
  });

  it("shows exactly the finals in data-testid=transcript, in order", async () => {
    const finals = messagesOf(socket)
      .filter((m) => m.type === "Results" && m.is_final)
      .map(transcriptOf)
      .filter((text) => text !== "");
    expect(finals.length).toBeGreaterThan(0);
    const shown = await textOf(page, "transcript");
    expect(shown.replace(/\s+/g, " ").trim()).toBe(finals.join(" "));
  });

  it("drives the speaking indicator from SpeechStarted / UtteranceEnd and moves the level meter", () => {
    const types = messagesOf(socket).map((m) => m.type);
    expect(types).toContain("SpeechStarted");
    expect(types).toContain("UtteranceEnd");
    const speaking = spy.dom.filter((d) => d.id === "speaking").map((d) => d.text);
    const on = speaking.indexOf("Speaking");
    expect(on).toBeGreaterThanOrEqual(0);
    expect(speaking.slice(on)).toContain("Not speaking");
    expect(spy.maxLevel).toBeGreaterThan(0.3);
  });

  it("shows the latency of the last final", async () => {
    expect(await textOf(page, "latency")).toMatch(/^\d+ ms$/);
  });

  it("Stop sends CloseStream, keeps the text and says stopped", async () => {
    expect(socket.textSent.map((m) => JSON.parse(m.data).type)).toContain("CloseStream");
    expect(messagesOf(socket).map((m) => m.type)).toContain("Metadata");
    expect(socket.close?.code).toBe(1000);
    expect(await statusText(page)).toMatch(/stopped/i);
    const after = await textOf(page, "transcript");
    expect(textBeforeStop.length).toBeGreaterThan(0);
    expect(after.startsWith(textBeforeStop)).toBe(true);
    expect(await textOf(page, "interim")).toBe("");
    expect(await page.getByTestId("start").isEnabled()).toBe(true);
    expect(await page.getByTestId("stop").isDisabled()).toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it("Copy puts the finals on the clipboard", async () => {
    await page.getByTestId("copy").click();
    const copied = await page.evaluate("navigator.clipboard.readText()");
    expect(copied).toBe(await textOf(page, "transcript"));
  });

  it("meets basic accessibility: names, labels, keyboard focus, contrast", async () => {
    for (const name of ["Start", "Stop", "Copy text", "Clear"]) {
      // Copy says "Copied" for 1.5 s after the previous test's click.
      await expect
        .poll(() => page.getByRole("button", { name }).count(), { timeout: 5000 })
        .toBe(1);
    }
    expect(await page.getByLabel("Input level").count()).toBe(1);
    expect(await page.getByRole("status").count()).toBeGreaterThan(0);
    // Keyboard: the first Tab from the top lands on Start, and a focused button shows an outline.
    await page.locator("h1").click(); // moves the sequential focus starting point to the top
    await page.keyboard.press("Tab");
    expect(await page.evaluate("document.activeElement?.dataset.testid")).toBe("start");
    expect(await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")).toBe(
      "solid",
    );
    for (const entry of contrast) {
      expect(entry.missing, entry.selector).toBeUndefined();
      expect(entry.ratio, entry.selector).toBeGreaterThanOrEqual(4.5);
    }
  });

  it("fits a phone-sized screen", async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(360);
    for (const id of ["start", "stop", "copy", "clear"]) {
      const box = await page.getByTestId(id).boundingBox();
      expect(box, id).not.toBeNull();
      expect(box?.height ?? 0, id).toBeGreaterThanOrEqual(44);
      expect((box?.x ?? -1) + (box?.width ?? 0), id).toBeLessThanOrEqual(360);
    }
    await page.screenshot({ path: path.join(OUTPUT_DIR, "demo-phone.png"), fullPage: true });
  });

  it("transcribes the clip within the WER bound (real models only)", async (ctx) => {
    const result = await firstPassScore(page, socket, ctx, "WER");
    expect(result.errors).toBeLessThanOrEqual(MAX_ERRORS);
    expect(lostPhrases(result)).toEqual([]);
  });
});

describe("the MediaRecorder (WebM/Opus) capture option", () => {
  let page: Page;
  let context: BrowserContext;
  let pageErrors: string[];
  let socket: SocketRecord;

  beforeAll(async () => {
    ({ context, page, errors: pageErrors } = await openPage());
    await page.getByTestId("capture").selectOption("webm");
    await page.getByTestId("start").click();
    await waitForStatus(page, /listening/i, 15_000);
    expect(await page.getByTestId("capture").isDisabled()).toBe(true);
    // A WebM blob does not say how much audio it holds: the clip and its endpoint by the clock,
    // stopping in the silence before Chromium loops the clip.
    await new Promise((resolve) => setTimeout(resolve, (clipSeconds + STOP_AFTER_SECONDS) * 1000));
    await page.getByTestId("stop").click();
    await waitForStatus(page, /stopped/i, 40_000);
    const first = (await readSpy(page)).sockets[0];
    if (first === undefined) throw new Error("the page opened no WebSocket");
    socket = first;
  });

  afterAll(async () => {
    await context?.close();
  });

  it("lets the server detect the container: no encoding, sample_rate or resumable in the query", () => {
    const query = new URL(socket.url).searchParams;
    expect(query.has("encoding")).toBe(false);
    expect(query.has("sample_rate")).toBe(false);
    expect(query.has("resumable")).toBe(false);
    expect(query.get("interim_results")).toBe("true");
    // Blobs every 250 ms, each far smaller than 250 ms of 16-kHz PCM16 (8 000 bytes): compressed.
    expect(socket.binaryFrames.length).toBeGreaterThanOrEqual(Math.floor(clipSeconds * 3));
    const median = [...socket.binaryFrames].sort((a, b) => a - b)[
      Math.floor(socket.binaryFrames.length / 2)
    ];
    expect(median ?? Number.POSITIVE_INFINITY).toBeLessThan(8000);
    expect(socket.close?.code).toBe(1000);
    expect(pageErrors).toEqual([]);
  });

  it("transcribes the clip within the WER bound (real models only)", async (ctx) => {
    const result = await firstPassScore(page, socket, ctx, "MediaRecorder WER");
    expect(result.errors).toBeLessThanOrEqual(MAX_ERRORS);
    expect(lostPhrases(result)).toEqual([]);
    const allFinals = messagesOf(socket)
      .filter((m) => m.type === "Results" && m.is_final)
      .map(transcriptOf)
      .filter((text) => text !== "");
    const shown = await textOf(page, "transcript");
    expect(shown.replace(/\s+/g, " ").trim()).toBe(allFinals.join(" "));
  });
});

describe("when things go wrong", () => {
  it("explains a denied microphone and opens no connection", async () => {
    // A browser whose prompt answers "Block", as a person denying the microphone would.
    const denying = await launchBrowser(wavPath, "deny");
    try {
      const page = await denying.newPage();
      await installSpy(page);
      await page.goto(baseUrl);
      await page.getByTestId("start").click();
      await expect.poll(() => textOf(page, "message")).toMatch(/denied/i);
      expect(await statusText(page)).toMatch(/microphone unavailable/i);
      expect(await page.getByTestId("start").isEnabled()).toBe(true);
      expect((await readSpy(page)).sockets).toHaveLength(0);
      await page.screenshot({ path: path.join(OUTPUT_DIR, "demo-denied.png") });
    } finally {
      await denying.close();
    }
  });

  it("shows why the server refused the connection (401) and does not retry", async () => {
    const { context, page } = await openPage();
    try {
      // A token the server did not sign: its handshake answers 401, which the browser hides.
      await page.route("**/dev/token", (route) =>
        route.fulfill({
          contentType: "application/json",
          body: JSON.stringify({ access_token: "not.a-real.token", expires_in: 60 }),
        }),
      );
      await page.getByTestId("start").click();
      await expect.poll(() => textOf(page, "message"), { timeout: 15_000 }).toMatch(/401/);
      expect(await statusText(page)).toMatch(/not connected/i);
      expect(await page.getByTestId("start").isEnabled()).toBe(true);
      const spy = await readSpy(page);
      expect(spy.sockets).toHaveLength(1);
      expect(spy.sockets[0]?.openedAt).toBeNull();
    } finally {
      await context.close();
    }
  });

  it("shows an operator's end of the session and does not start another", async () => {
    const { context, page } = await openPage();
    try {
      const { before, sessionId } = await listeningSession(page);
      const ended = await fetch(`${baseUrl}/admin/sessions/${sessionId}`, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${adminToken}` },
      });
      expect(ended.status).toBe(204);
      // Closed 1008 AUTH-0001 after its last finals: the page says so and stays stopped.
      await expect.poll(() => textOf(page, "message"), { timeout: 20_000 }).toMatch(/AUTH-0001/);
      expect(await statusText(page)).toMatch(/not connected/i);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect((await readSpy(page)).sockets).toHaveLength(1);
      expect(await statusText(page)).toMatch(/not connected/i);
      expect((await textOf(page, "transcript")).startsWith(before)).toBe(true);
    } finally {
      await context.close();
    }
  });

  it("says the account has too many sessions (429) when it is at its limit", async () => {
    const { context, page } = await openPage();
    await setDemoLimit(0);
    try {
      await page.getByTestId("start").click();
      await expect.poll(() => textOf(page, "message"), { timeout: 15_000 }).toMatch(/429/);
      expect(await textOf(page, "message")).toMatch(/too many sessions/i);
      expect(await page.getByTestId("start").isEnabled()).toBe(true);
      await page.screenshot({ path: path.join(OUTPUT_DIR, "demo-429.png") });
    } finally {
      await setDemoLimit(50);
      await context.close();
    }
  });

  it("resumes the same session after a dropped connection: no final lost or shown twice", async () => {
    const { context, page } = await openPage();
    try {
      const before = await listenUntilTranscript(page);
      // Close the socket under the page, as a network failure would (the page cannot tell).
      await page.evaluate("window.__e2eDrop(4000, 'e2e: connection dropped')");
      await waitForStatus(page, /reconnecting/i, 5_000);
      await waitForStatus(page, /listening/i, 15_000);
      await expect
        .poll(async () => (await readSpy(page)).sockets[1]?.binaryFrames.length ?? 0)
        .toBeGreaterThan(0);
      await page.getByTestId("stop").click();
      await waitForStatus(page, /stopped/i, 40_000);

      const spy = await readSpy(page);
      expect(spy.sockets).toHaveLength(2);
      const [first, second] = spy.sockets.map(messagesOf);
      const opened = first?.[0];
      expect(opened).toMatchObject({ type: "EarshotSession", resumed: false });
      const resumedUrl = new URL(spy.sockets[1]?.url ?? "");
      expect(resumedUrl.searchParams.get("session_id")).toBe(opened?.session_id);
      expect(Number(resumedUrl.searchParams.get("resume_offset"))).toBeGreaterThan(0);
      expect(second?.[0]).toMatchObject({ type: "EarshotSession", resumed: true });

      // One session's finals across both sockets: each once, in audio order.
      const finals = [...(first ?? []), ...(second ?? [])].filter(
        (m) => m.type === "Results" && m.is_final === true,
      );
      const starts = finals.map((m) => Number(m.start));
      for (let i = 1; i < starts.length; i++) {
        expect(starts[i]).toBeGreaterThan(starts[i - 1] ?? -1);
      }
      const shown = await textOf(page, "transcript");
      expect(shown.startsWith(before)).toBe(true);
      expect(shown.replace(/\s+/g, " ").trim()).toBe(
        finals
          .map(transcriptOf)
          .filter((t) => t !== "")
          .join(" "),
      );
      // None lost: every final the session stored reached the page over one socket or the other
      // (a final made while the page was away must have been replayed after the resume).
      const stored = await fetch(`${baseUrl}/v1/sessions/${opened?.session_id}/transcript`, {
        headers: { Authorization: "Token earshot-demo-key" },
      });
      expect(stored.status).toBe(200);
      const storedFinals = ((await stored.json()) as { finals: { transcript: string }[] }).finals;
      expect(storedFinals.length).toBeGreaterThan(0);
      expect(storedFinals.map((f) => f.transcript)).toEqual(
        finals.map(transcriptOf).filter((t) => t !== ""),
      );
      await page.screenshot({ path: path.join(OUTPUT_DIR, "demo-resumed.png") });
    } finally {
      await context.close();
    }
  });

  it("Stop pressed while reconnecting resumes the session to finish it: nothing said is lost", async () => {
    const { context, page } = await openPage();
    try {
      await listenUntilTranscript(page);
      // The page cannot reconnect until Stop has been pressed.
      const held = Promise.withResolvers<void>();
      await page.route("**/dev/token", async (route) => {
        await held.promise;
        await route.continue();
      });
      await page.evaluate("window.__e2eDrop(4000, 'e2e: connection dropped')");
      await waitForStatus(page, /connecting/i, 5_000);
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // speech goes on meanwhile
      await page.getByTestId("stop").click();
      held.resolve();
      await waitForStatus(page, /stopped/i, 40_000);
      expect(await textOf(page, "message")).not.toMatch(/not transcribed|missing|lost/i);

      const spy = await readSpy(page);
      const [first, ...later] = spy.sockets;
      if (first === undefined) throw new Error("no socket");
      const sessionId = messagesOf(first)[0]?.session_id;
      const resumed = later.find((s) => s.openedAt !== null);
      if (resumed === undefined) throw new Error("Stop did not resume the session");
      expect(new URL(resumed.url).searchParams.get("session_id")).toBe(sessionId);
      // Every final the session stored (the audio re-sent on Stop's resume included) was shown.
      const shown = [first, resumed]
        .flatMap(messagesOf)
        .filter((m) => m.type === "Results" && m.is_final === true)
        .map(transcriptOf)
        .filter((t) => t !== "");
      const stored = await fetch(`${baseUrl}/v1/sessions/${sessionId}/transcript`, {
        headers: { Authorization: "Token earshot-demo-key" },
      });
      const storedFinals = ((await stored.json()) as { finals: { transcript: string }[] }).finals;
      expect(storedFinals.map((f) => f.transcript)).toEqual(shown);
      expect(messagesOf(resumed).some((m) => m.type === "Metadata")).toBe(true);
    } finally {
      await context.close();
    }
  });

  it("takes a connection that stops acknowledging audio for dead and resumes on a new one", async () => {
    const { context, page } = await openPage();
    try {
      // The first connection's server side goes silent mid-session, as a network that died
      // without a close: the browser still holds the socket open and sends into it.
      let connections = 0;
      let stalled = false;
      await page.routeWebSocket(/\/v1\/listen/, (ws) => {
        connections += 1;
        const first = connections === 1;
        const server = ws.connectToServer();
        ws.onMessage((message) => server.send(message));
        server.onMessage((message) => {
          if (first && stalled) return;
          ws.send(message);
        });
      });
      const before = await listenUntilTranscript(page);
      stalled = true;
      const stalledAt = Date.now();
      await waitUntil(
        "a second socket, open",
        async () => (await readSpy(page)).sockets[1]?.openedAt ?? null,
        (openedAt) => openedAt !== null,
        20_000,
      );
      // Not before the acknowledgement timeout (6 s), and not much after it.
      expect(Date.now() - stalledAt).toBeGreaterThan(5_000);
      await waitForStatus(page, /listening/i, 15_000);
      const spy = await readSpy(page);
      const [first, second] = spy.sockets;
      if (first === undefined || second === undefined) throw new Error("expected two sockets");
      const sessionId = messagesOf(first)[0]?.session_id;
      expect(new URL(second.url).searchParams.get("session_id")).toBe(sessionId);
      expect(messagesOf(second)[0]).toMatchObject({ type: "EarshotSession", resumed: true });
      expect(first.close?.code).toBe(4000);
      expect((await textOf(page, "transcript")).startsWith(before)).toBe(true);
      await page.getByTestId("stop").click();
      await waitForStatus(page, /stopped/i, 40_000);
    } finally {
      await context.close();
    }
  });

  it("starts a new session when the dropped one has ended, and sends it the audio spoken meanwhile", async () => {
    const { context, page } = await openPage();
    try {
      const { before, sessionId } = await listeningSession(page);
      expect(typeof sessionId).toBe("string");
      // Hold the page's next token request until the session has ended, as a session whose
      // server restarted while the page was away: its resume must be refused (410).
      const held = Promise.withResolvers<void>();
      const passedOn = Promise.withResolvers<void>();
      await page.route("**/dev/token", async (route) => {
        await held.promise;
        await route.continue();
        passedOn.resolve();
      });
      await page.evaluate("window.__e2eDrop(4000, 'e2e: connection dropped')");
      await waitForStatus(page, /reconnecting/i, 5_000);
      const ended = await fetch(`${baseUrl}/admin/sessions/${sessionId}`, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${adminToken}` },
      });
      expect(ended.status).toBe(204);
      // The microphone goes on meanwhile: a second of speech the page must not lose.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      held.resolve();
      await passedOn.promise;
      await page.unroute("**/dev/token");
      await waitUntil(
        "a third socket, open",
        async () => (await readSpy(page)).sockets[2]?.openedAt ?? null,
        (openedAt) => openedAt !== null,
        20_000,
      );
      await waitForStatus(page, /listening/i, 15_000);
      const spy = await readSpy(page);
      const [first, refused, fresh] = spy.sockets;
      if (first === undefined || refused === undefined || fresh === undefined) {
        throw new Error(`expected three sockets, got ${spy.sockets.length}`);
      }
      // The resume was refused before the upgrade; the next connection is a new session.
      expect(new URL(refused.url).searchParams.get("session_id")).toBe(sessionId);
      expect(refused.openedAt).toBeNull();
      expect(new URL(fresh.url).searchParams.has("session_id")).toBe(false);
      const opened = messagesOf(fresh)[0];
      expect(opened).toMatchObject({ type: "EarshotSession", resumed: false });
      expect(opened?.session_id).not.toBe(sessionId);
      const awayMs = (fresh.openedAt ?? 0) - (first.close?.t ?? 0);
      expect(awayMs).toBeGreaterThan(1_000);
      // What the first session transcribed stays on the page.
      expect((await textOf(page, "transcript")).startsWith(before)).toBe(true);
      const stoppedAt = Number(await page.evaluate("window.__e2eNow()"));
      await page.getByTestId("stop").click();
      await waitForStatus(page, /stopped/i, 40_000);
      // No audio lost across the gap: the new session got everything the microphone captured
      // from the moment the first connection dropped until Stop (what the page spoke while away,
      // then live), give or take a few 50-ms frames. Without the carry ~1 s would be missing.
      const after = await readSpy(page);
      const freshSeconds =
        (after.sockets[2]?.binaryFrames ?? []).reduce((sum, bytes) => sum + bytes, 0) /
        BYTES_PER_SECOND;
      expect(freshSeconds).toBeGreaterThan((stoppedAt - (first.close?.t ?? 0)) / 1000 - 0.25);
    } finally {
      await context.close();
    }
  });
});
