/**
 * The launcher of the load tools (`npm run bench`, `npm run soak -- --launch`): a worker under
 * wrangler's programmatic dev server (`unstable_startWorker`), the real one (wrangler.toml) or a
 * bench-only one, on 127.0.0.1 with ports of its own (never the 8787/9229 a developer's
 * `npm run dev` may hold), a persistence folder of its own, bindings given here (they override
 * wrangler.toml's [vars] and whatever a local .dev.vars holds), and no file watching: other people
 * edit src/ while a run goes on, and a rebuild mid-run would reload the worker and silently reset
 * the isolate being measured.
 *
 * Also the exit hook that makes sure no workerd outlives the run: wrangler's `dispose` stops workerd; if the process exits without it
 * (the runner's hard time limit), the recorded workerd pids are SIGKILLed.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import net from "node:net";
import { writeGenerated } from "../models/generated.ts";
import { descendants, named } from "./proc.ts";

/** wrangler's dev server is up in ~3 s here (esbuild + workerd); 60 s means something is wrong. */
const START_TIMEOUT_MS = 60_000;
/** Setup steps run wrangler a few times (~5 s). */
const SETUP_TIMEOUT_MS = 120_000;

export interface DevWorkerOptions {
  /** wrangler config file (absolute). */
  config: string;
  /** Local persistence folder (absolute): D1, R2, Durable Objects. */
  persistTo: string;
  /** Plain-text variables and secrets, by binding name. */
  vars: Record<string, string>;
  secrets: Record<string, string>;
  /** Build-time constants over wrangler.toml's [define] (e.g. EARSHOT_TEST_SEAMS: "true"). */
  define?: Record<string, string>;
}

export interface DevWorker {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Port of wrangler's inspector proxy (Chrome DevTools protocol, one client at a time). */
  inspectorPort: number;
  /**
   * Live workerd processes this worker started (wrangler runs two: its proxy and the worker's,
   * which may start only with the first request).
   */
  workerdPids: () => number[];
  stop: () => Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function workerdDescendants(): number[] {
  return descendants(process.pid).filter((pid) => named(pid, "workerd"));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

function withTimeout<T>(work: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: not done in ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** src/generated/, written once per process (writeGenerated is idempotent, but not free). */
let generated: Promise<void> | null = null;

export async function startDevWorker(options: DevWorkerOptions): Promise<DevWorker> {
  // Every worker imports the Opus decoder's wasm, generated and not in git: on a fresh clone
  // nothing else may have written it yet (the tests and `npm run dev` do; the soak and the bench
  // may run first).
  generated ??= writeGenerated();
  await generated;
  // Loopback only (tools/load/bench.ts sets these too; here for callers that do not): no cf.json
  // fetch from workers.cloudflare.com, no metrics, no error reports. Read when wrangler loads.
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  process.env.WRANGLER_SEND_METRICS = "false";
  process.env.WRANGLER_SEND_ERROR_REPORTS = "false";
  // Imported here, not at the top: wrangler is heavy and only this side needs it.
  const { unstable_startWorker } = await import("wrangler");
  const inspectorPort = await freePort();
  const before = new Set(workerdDescendants());
  const bindings: Record<string, { type: "plain_text" | "secret_text"; value: string }> = {};
  for (const [name, value] of Object.entries(options.vars)) {
    bindings[name] = { type: "plain_text", value };
  }
  for (const [name, value] of Object.entries(options.secrets)) {
    bindings[name] = { type: "secret_text", value };
  }
  const worker = await unstable_startWorker({
    config: options.config,
    bindings,
    ...(options.define === undefined ? {} : { build: { define: options.define } }),
    dev: {
      server: { hostname: "127.0.0.1", port: 0 },
      inspector: { hostname: "127.0.0.1", port: inspectorPort },
      persist: options.persistTo,
      watch: false,
      logLevel: "warn",
    },
  });
  const pids: number[] = [];
  const record = () => {
    for (const pid of workerdDescendants()) {
      if (!before.has(pid) && !pids.includes(pid)) pids.push(pid);
    }
  };
  const killLeftovers = () => {
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  process.once("exit", killLeftovers);
  const stop = async () => {
    process.off("exit", killLeftovers);
    record();
    try {
      await withTimeout(worker.dispose(), START_TIMEOUT_MS, "stopping the worker");
    } finally {
      killLeftovers(); // no-op when dispose stopped them (the pids are gone)
    }
  };
  try {
    await withTimeout(worker.ready, START_TIMEOUT_MS, `starting ${options.config}`);
    const url = (await worker.url).origin;
    record();
    const workerdPids = () => {
      record();
      return pids.filter(alive);
    };
    return { url, inspectorPort, workerdPids, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Lines of a failed child's stdout quoted in the error. */
const OUTPUT_TAIL_LINES = 30;

/**
 * `node <args>` from the repository root. stdout is captured and returned (the runner's own stdout
 * stays clean JSON) and quoted when the child fails; stderr goes to ours (progress lines).
 */
export function runNode(root: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", 2] });
    let out = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) {
        resolve(out);
        return;
      }
      const tail = out.trimEnd().split("\n").slice(-OUTPUT_TAIL_LINES).join("\n");
      reject(new Error(`node ${args.join(" ")} failed (${signal ?? `exit ${code}`})\n${tail}`));
    });
  });
}

/**
 * A persistence folder ready for the real service (idempotent): the models prepared and seeded
 * into its local R2 (`tools/models/cli.ts`), D1 migrated with the demo account
 * (`tools/dev/setup.ts`).
 */
export async function prepareState(root: string, persistTo: string): Promise<void> {
  await mkdir(persistTo, { recursive: true });
  await runNode(root, ["tools/models/cli.ts", "--persist-to", persistTo], SETUP_TIMEOUT_MS);
  await runNode(root, ["tools/dev/setup.ts", "--persist-to", persistTo], SETUP_TIMEOUT_MS);
}

export interface Service extends DevWorker {
  /** The admin API's bearer token, fresh for this start. */
  adminToken: string;
}

/**
 * The real service (wrangler.toml) with Whisper on a prepared folder (`prepareState`), `vars`
 * added to or overriding its [vars]; `testSeams` builds it with the fake transcriber available
 * (EARSHOT_TEST_SEAMS, as `npm run dev` does). Its admin token and token secret are fresh per
 * start: only this loopback worker ever sees them (48 bytes ≥ the 32 characters the token signer
 * requires).
 */
export async function startService(
  root: string,
  persistTo: string,
  vars: Record<string, string> = {},
  testSeams = false,
): Promise<Service> {
  const adminToken = randomBytes(24).toString("base64url");
  const worker = await startDevWorker({
    config: `${root}/wrangler.toml`,
    persistTo,
    vars: { EARSHOT_TRANSCRIBER: "whisper", ...vars },
    secrets: {
      EARSHOT_ADMIN_TOKEN: adminToken,
      EARSHOT_TOKEN_SECRET: randomBytes(48).toString("base64url"),
    },
    ...(testSeams ? { define: { EARSHOT_TEST_SEAMS: "true" } } : {}),
  });
  return { ...worker, adminToken };
}
