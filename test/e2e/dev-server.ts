/**
 * `npm run dev` as the README gives it, started from a test: `npm run dev -- --port <port> --ip
 * 127.0.0.1 --persist-to <folder> [more wrangler dev flags]`, in its own process group so that
 * stopping it ends npm, tools/dev/dev.ts, wrangler and workerd, and nothing else.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "../..");
/**
 * A first start prepares the models (hash checks, or copying and rewriting them on a fresh clone:
 * up to ~60 s on 2 cores), applies the migrations and boots workerd.
 */
const SERVER_START_TIMEOUT_MS = 240_000;
const SERVER_POLL_MS = 250;
/** Another process can take the free port between our probe and wrangler's bind: try again. */
const START_ATTEMPTS = 3;

export interface DevServer {
  baseUrl: string;
  port: number;
  /** Ends the process group and waits for it to exit. */
  stop(): Promise<void>;
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

/** The names and values of a .dev.vars file (NAME=value lines). */
export function readDevVars(file = path.join(ROOT, ".dev.vars")): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) vars[match[1]] = match[2];
  }
  return vars;
}

async function waitForServer(baseUrl: string, server: ChildProcess, logFile: string) {
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(
        `npm run dev exited (${server.exitCode ?? server.signalCode}); see ${logFile}`,
      );
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
    `npm run dev did not answer within ${SERVER_START_TIMEOUT_MS} ms; see ${logFile}`,
  );
}

function stopper(server: ChildProcess): () => Promise<void> {
  return async () => {
    if (server.pid === undefined || server.exitCode !== null || server.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
    try {
      process.kill(-server.pid, "SIGTERM");
    } catch (error) {
      console.error("could not stop npm run dev", error);
      return;
    }
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  };
}

/**
 * Starts the README's `npm run dev` with `--port <free> --ip 127.0.0.1 --persist-to persistTo`,
 * then `extraArgs` (each caller says why it needs them), and waits until it serves the page.
 */
export async function startDevServer(options: {
  persistTo: string;
  logFile: string;
  extraArgs?: string[];
}): Promise<DevServer> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const log = createWriteStream(options.logFile, { flags: attempt === 1 ? "w" : "a" });
    const server = spawn(
      "npm",
      [
        "run",
        "dev",
        "--",
        "--port",
        String(port),
        "--ip",
        "127.0.0.1",
        "--persist-to",
        options.persistTo,
        ...(options.extraArgs ?? []),
      ],
      {
        cwd: ROOT,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      },
    );
    server.stdout?.pipe(log);
    server.stderr?.pipe(log);
    const stop = stopper(server);
    try {
      await waitForServer(baseUrl, server, options.logFile);
      return {
        baseUrl,
        port,
        stop: async () => {
          await stop();
          log.end();
        },
      };
    } catch (error) {
      lastError = error;
      await stop();
      log.end();
    }
  }
  throw lastError;
}
