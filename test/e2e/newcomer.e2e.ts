/**
 * A newcomer's second start: `npm run dev` again, now with the .dev.vars the first start wrote
 * (global-setup.ts started the first, which on a fresh clone such as CI's had none). The second
 * start must keep that file as it is and still give the demo page its token route: the failure
 * this guards against is a variable written to .dev.vars that wrangler never passes to the worker
 * (with a [secrets] block it passes only declared names), which left the page dead.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, ROOT, readDevVars, startDevServer } from "./dev-server";
import { OUTPUT_DIR } from "./global-setup";

const DEV_VARS = path.join(ROOT, ".dev.vars");
let server: DevServer;
let persistTo: string;
let before: string;

beforeAll(async () => {
  before = readFileSync(DEV_VARS, "utf8");
  persistTo = await mkdtemp(path.join(tmpdir(), "earshot-e2e-second-start-"));
  server = await startDevServer({ persistTo, logFile: path.join(OUTPUT_DIR, "second-start.log") });
}, 300_000);

afterAll(async () => {
  await server?.stop();
  if (persistTo !== undefined) await rm(persistTo, { recursive: true, force: true });
});

describe("npm run dev, started a second time", () => {
  it("keeps the .dev.vars the first start wrote, with every local setting once", () => {
    expect(readFileSync(DEV_VARS, "utf8")).toBe(before);
    const vars = readDevVars();
    expect(vars.EARSHOT_DEMO_TOKENS).toBe("on");
    expect(vars.EARSHOT_TOKEN_SECRET?.length ?? 0).toBeGreaterThanOrEqual(32);
    for (const name of Object.keys(vars)) {
      expect(before.match(new RegExp(`^${name}=`, "gm"))?.length, name).toBe(1);
    }
  });

  it("serves the demo page and its token route, and the token opens a session", async () => {
    const page = await fetch(`${server.baseUrl}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>");
    const grant = await fetch(`${server.baseUrl}/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(grant.status).toBe(200);
    const { access_token: token } = (await grant.json()) as { access_token: string };
    expect(token).toMatch(/^eyJ/);
    const socket = new WebSocket(
      `${server.baseUrl.replace("http", "ws")}/v1/listen?encoding=linear16&sample_rate=16000`,
      ["bearer", token],
    );
    const opened = await new Promise<boolean>((resolve) => {
      socket.addEventListener("open", () => resolve(true));
      socket.addEventListener("error", () => resolve(false));
    });
    expect(opened).toBe(true);
    const closed = new Promise<number>((resolve) => {
      socket.addEventListener("close", (event) => resolve(event.code));
    });
    socket.send(JSON.stringify({ type: "CloseStream" }));
    expect(await closed).toBe(1000);
  });
});
