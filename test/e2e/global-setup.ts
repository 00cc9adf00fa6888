/**
 * Starts what the browser test needs, once per `npm run test:e2e`: a fresh local D1 (migrated and
 * seeded with the demo account, in its own temporary --persist-to folder so neither the
 * developer's `npm run dev` data nor another run's is touched) and `wrangler dev` on a free port
 * with the demo token route on.
 * Configuration goes in as `--var` flags only: nothing is written to .dev.vars.
 *
 * The transcriber is the real one, Whisper, by default: the prepared models are put into this
 * run's local R2 (`scripts/models.ts --persist-to`), and the WER assertion runs against the
 * clip's reference. `E2E_TRANSCRIBER=fake` selects the deterministic fake instead (faster; the
 * WER assertion is then reported as not applicable).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { setupLocalDatabase } from "../../scripts/dev-setup.ts";

const root = path.resolve(import.meta.dirname, "../..");
export const OUTPUT_DIR = path.join(root, "test-results", "e2e");
/** wrangler dev's first start compiles the worker and boots workerd: ~5–15 s on 2 cores. */
const SERVER_START_TIMEOUT_MS = 60_000;
const SERVER_POLL_MS = 250;

declare module "vitest" {
  export interface ProvidedContext {
    /** http://127.0.0.1:<port> of the wrangler dev under test. */
    baseUrl: string;
    /** The EARSHOT_TOKEN_SECRET the server was started with (to verify minted tokens). */
    tokenSecret: string;
    adminToken: string;
    /** EARSHOT_TRANSCRIBER the server was started with. */
    transcriber: string;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

/** Prepared models into this run's local R2 (verifying hashes; copies from the mirror if needed). */
function seedModels(persistTo: string): void {
  const script = path.join(root, "scripts", "models.ts");
  const result = spawnSync(process.execPath, [script, "--persist-to", persistTo], {
    cwd: root,
    stdio: "inherit",
  });
  if (result.status !== 0) throw new Error(`scripts/models.ts exited with ${result.status}`);
}

async function waitForServer(baseUrl: string, server: ChildProcess, logFile: string) {
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) {
      throw new Error(`wrangler dev exited with ${server.exitCode}; see ${logFile}`);
    }
    try {
      const response = await fetch(`${baseUrl}/`);
      if (response.ok) return;
    } catch {
      // Not listening yet: keep polling until the deadline.
    }
    await new Promise((resolve) => setTimeout(resolve, SERVER_POLL_MS));
  }
  throw new Error(
    `wrangler dev did not answer within ${SERVER_START_TIMEOUT_MS} ms; see ${logFile}`,
  );
}

export default async function setup(project: TestProject) {
  if (!existsSync("/usr/bin/chromium")) {
    throw new Error("/usr/bin/chromium is missing: apt-get install -y chromium");
  }
  await mkdir(OUTPUT_DIR, { recursive: true });
  // Its own state folder per run: two runs at once (developers, helpers) must not delete each
  // other's databases.
  const persistTo = await mkdtemp(path.join(tmpdir(), "earshot-e2e-state-"));
  await setupLocalDatabase({ persistTo });
  const transcriber = process.env.E2E_TRANSCRIBER ?? "whisper";
  if (transcriber === "whisper") seedModels(persistTo);

  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  // 48 random bytes, as scripts/dev.ts makes it; fresh per run.
  const tokenSecret = randomBytes(48).toString("base64url");
  const adminToken = randomBytes(24).toString("base64url");
  const logFile = path.join(OUTPUT_DIR, "wrangler.log");
  const log = createWriteStream(logFile);
  const server = spawn(
    path.join(root, "node_modules", ".bin", "wrangler"),
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--persist-to",
      persistTo,
      "--show-interactive-dev-session=false",
      "--var",
      "EARSHOT_DEMO_TOKENS:on",
      "--var",
      `EARSHOT_TOKEN_SECRET:${tokenSecret}`,
      "--var",
      `EARSHOT_ADMIN_TOKEN:${adminToken}`,
      "--var",
      `EARSHOT_TRANSCRIBER:${transcriber}`,
    ],
    {
      cwd: root,
      // Own process group, so teardown ends wrangler and the workerd it started, and nothing else.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" },
    },
  );
  server.stdout?.pipe(log);
  server.stderr?.pipe(log);
  const stop = () => {
    if (server.pid !== undefined && server.exitCode === null) {
      try {
        process.kill(-server.pid, "SIGTERM");
      } catch (error) {
        console.error("could not stop wrangler dev", error);
      }
    }
  };
  try {
    await waitForServer(baseUrl, server, logFile);
  } catch (error) {
    stop();
    throw error;
  }
  project.provide("baseUrl", baseUrl);
  project.provide("tokenSecret", tokenSecret);
  project.provide("adminToken", adminToken);
  project.provide("transcriber", transcriber);
  return async () => {
    stop();
    log.end();
    await rm(persistTo, { recursive: true, force: true });
  };
}
