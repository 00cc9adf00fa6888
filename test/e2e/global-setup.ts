/**
 * Starts what the browser tests need, once per `npm run test:e2e`, the way the README tells a
 * newcomer to: `npm run dev -- --port <free port> --ip 127.0.0.1 --persist-to <own folder>`. So
 * tools/dev/dev.ts runs as a newcomer's does — it writes .dev.vars when missing (on CI's fresh clone
 * it is), applies the D1 migrations and seeds the demo account, prepares the models into local R2 —
 * and a broken newcomer path fails CI. Its own --persist-to folder per run: neither the developer's
 * `npm run dev` data nor another run's is touched.
 *
 * Layered on top of the README's command, and why:
 * - `--var EARSHOT_TRANSCRIBER:<E2E_TRANSCRIBER or whisper>`: the tests must know which transcriber
 *   answers, whatever a developer's own .dev.vars says. Whisper by default; `E2E_TRANSCRIBER=fake`
 *   selects the deterministic fake (faster; the WER assertions then report not applicable).
 * The admin token and the token-signing secret are read from the .dev.vars that npm run dev used.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { ROOT, readDevVars, startDevServer } from "./dev-server.ts";

export const OUTPUT_DIR = path.join(ROOT, "test-results", "e2e");

declare module "vitest" {
  export interface ProvidedContext {
    /** http://127.0.0.1:<port> of the npm run dev under test. */
    baseUrl: string;
    /** The EARSHOT_TOKEN_SECRET the server was started with (to verify minted tokens). */
    tokenSecret: string;
    adminToken: string;
    /** EARSHOT_TRANSCRIBER the server was started with. */
    transcriber: string;
  }
}

export default async function setup(project: TestProject) {
  if (!existsSync("/usr/bin/chromium")) {
    throw new Error("/usr/bin/chromium is missing: apt-get install -y chromium");
  }
  await mkdir(OUTPUT_DIR, { recursive: true });
  // Its own state folder per run: two runs at once (developers, helpers) must not delete each
  // other's databases.
  const persistTo = await mkdtemp(path.join(tmpdir(), "earshot-e2e-state-"));
  const transcriber = process.env.E2E_TRANSCRIBER ?? "whisper";
  const server = await startDevServer({
    persistTo,
    logFile: path.join(OUTPUT_DIR, "wrangler.log"),
    extraArgs: ["--var", `EARSHOT_TRANSCRIBER:${transcriber}`],
  });
  // What npm run dev wrote (or kept): the server's own secrets.
  const vars = readDevVars();
  const tokenSecret = vars.EARSHOT_TOKEN_SECRET;
  const adminToken = vars.EARSHOT_ADMIN_TOKEN;
  if (tokenSecret === undefined || adminToken === undefined) {
    await server.stop();
    throw new Error(
      ".dev.vars lacks EARSHOT_TOKEN_SECRET or EARSHOT_ADMIN_TOKEN after npm run dev",
    );
  }
  project.provide("baseUrl", server.baseUrl);
  project.provide("tokenSecret", tokenSecret);
  project.provide("adminToken", adminToken);
  project.provide("transcriber", transcriber);
  return async () => {
    await server.stop();
    await rm(persistTo, { recursive: true, force: true });
  };
}
