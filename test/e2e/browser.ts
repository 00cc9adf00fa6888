/**
 * Debian's Chromium driven by playwright-core, with a fake microphone that plays a WAV file in a
 * loop. `npx playwright install` is never used: it downloads its own browser.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
const SPY_SCRIPT = path.join(import.meta.dirname, "page-spy.js");

/**
 * Launches Chromium whose microphone is `wavPath`, answering every microphone prompt with
 * `microphone` as a person would. Playwright gives every launch a fresh temporary profile
 * (--user-data-dir), removed on close.
 */
export function launchBrowser(
  wavPath: string,
  microphone: "allow" | "deny" = "allow",
): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-device-for-media-stream",
      // Answers the permission prompt without showing it: allow, or (with =deny) block.
      microphone === "allow"
        ? "--use-fake-ui-for-media-stream"
        : "--use-fake-ui-for-media-stream=deny",
      `--use-file-for-fake-audio-capture=${wavPath}`,
    ],
  });
}

/** Records the page's sockets and DOM changes from before its scripts run (page-spy.js). */
export async function installSpy(page: Page): Promise<void> {
  await page.addInitScript({ content: readFileSync(SPY_SCRIPT, "utf8") });
}

export interface SocketRecord {
  url: string;
  protocols: string[];
  openedAt: number | null;
  close: { t: number; code: number; reason: string } | null;
  /** Byte length of every binary frame sent, in order. */
  binaryFrames: number[];
  /** When each of them was sent (ms since the page loaded). */
  binaryTimes: number[];
  textSent: { t: number; data: string }[];
  received: { t: number; data: string }[];
}

export interface SpyRecord {
  sockets: SocketRecord[];
  dom: { t: number; id: string; text: string }[];
  maxLevel: number;
}

/** What page-spy.js recorded so far. */
export async function readSpy(page: Page): Promise<SpyRecord> {
  return (await page.evaluate("window.__e2e")) as SpyRecord;
}

/** A server message as the page received it. */
export interface ServerMessage {
  type: string;
  is_final?: boolean;
  start?: number;
  duration?: number;
  channel?: { alternatives?: { transcript?: string }[] };
  metadata?: { request_id?: string; model_info?: { name?: string } };
  [field: string]: unknown;
}

export function messagesOf(socket: SocketRecord): ServerMessage[] {
  return socket.received.map((entry) => JSON.parse(entry.data) as ServerMessage);
}

export function transcriptOf(message: ServerMessage): string {
  return (message.channel?.alternatives?.[0]?.transcript ?? "").trim();
}
