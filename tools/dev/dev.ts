/**
 * `npm run dev [-- <wrangler dev flags>]`: everything a fresh clone needs to run Earshot locally,
 * then `wrangler dev` in the foreground (flags such as `--port 8788 --ip 127.0.0.1` pass through).
 *
 * 1. .dev.vars: local secrets (a random admin token, the token-signing secret, the demo-page token
 *    route). An existing file is kept; only missing names are appended, so your overrides stay
 *    (an old clone's public admin token `earshot-admin-token` is replaced).
 * 2. The local D1 database: migrations applied, demo account `demo` with key `earshot-demo-key`.
 * 3. The Whisper models: fetched (or copied from EARSHOT_MODEL_MIRROR), verified, prepared and
 *    put into the local R2 bucket — `npm run models`, which only re-checks hashes once done.
 * 4. src/generated/, what the worker imports built from installed packages
 * (tools/models/generated.ts):
 *    the Opus decoder's wasm and the prepared Silero model.
 * 5. wrangler dev, with the demo page at http://127.0.0.1:8787/ (or the port you gave).
 *
 * Runs under the pinned Node 22 (`npm run` puts node_modules/.bin first on PATH).
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { writeGenerated } from "../models/generated.ts";
import { setupLocalDatabase } from "./setup.ts";

const root = path.resolve(import.meta.dirname, "../..");
const args = process.argv.slice(2);

/** Local-only defaults. None of these may appear in wrangler.toml, whose [vars] ship to production. */
function localDefaults(): Record<string, string> {
  return {
    // Random per clone (32 bytes = 43 base64url characters; the API refuses fewer than 32), so
    // a dev server started with --ip 0.0.0.0 does not hand admin to the network.
    EARSHOT_ADMIN_TOKEN: randomBytes(32).toString("base64url"),
    // Signs browser tokens; random per clone (48 bytes of entropy).
    EARSHOT_TOKEN_SECRET: randomBytes(48).toString("base64url"),
    // The demo page's token route (POST /dev/token). wrangler.toml declares it "off" (what
    // production gets); wrangler dev passes .dev.vars values on for declared names only.
    EARSHOT_DEMO_TOKENS: "on",
  };
}

/**
 * Values earlier versions wrote that are public, and so are replaced: the fixed admin token
 * everyone's clone had.
 */
const PUBLIC_VALUES: Record<string, string> = { EARSHOT_ADMIN_TOKEN: "earshot-admin-token" };

function ensureDevVars(): void {
  const file = path.join(root, ".dev.vars");
  const defaults = localDefaults();
  const replaced: string[] = [];
  const existing = (existsSync(file) ? readFileSync(file, "utf8") : "")
    .split("\n")
    .map((line) => {
      const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
      const name = match?.[1];
      if (name === undefined || PUBLIC_VALUES[name] !== match?.[2]) return line;
      replaced.push(name);
      return `${name}=${defaults[name]}`;
    })
    .join("\n");
  const present = new Set(
    existing
      .split("\n")
      .map((line) => /^\s*([A-Z0-9_]+)\s*=/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined),
  );
  const missing = Object.entries(defaults).filter(([name]) => !present.has(name));
  if (missing.length === 0 && replaced.length === 0) return;
  const lines = missing.map(([name, value]) => `${name}=${value}\n`).join("");
  const separator = existing === "" || existing.endsWith("\n") ? "" : "\n";
  writeFileSync(file, `${existing}${separator}${lines}`);
  if (missing.length > 0)
    console.log(`.dev.vars: added ${missing.map(([name]) => name).join(", ")}`);
  if (replaced.length > 0) {
    console.log(
      `.dev.vars: replaced the old public default of ${replaced.join(", ")} with a random value`,
    );
  }
}

function flag(name: string): string | undefined {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : args.find((a) => a.startsWith(`${name}=`))?.split("=")[1];
}

function prepareModels(): void {
  const persistTo = flag("--persist-to");
  const result = spawnSync(
    process.execPath,
    [
      path.join(root, "tools", "models", "cli.ts"),
      ...(persistTo ? ["--persist-to", persistTo] : []),
    ],
    { cwd: root, stdio: "inherit" },
  );
  if (result.status !== 0) {
    console.error("npm run models failed: sessions will answer 503 until the models are in place");
    process.exit(result.status ?? 1);
  }
}

ensureDevVars();
await setupLocalDatabase({ config: flag("--config"), persistTo: flag("--persist-to") });
prepareModels();
await writeGenerated();

// The local build carries the test seams (the fake transcriber, for `--var
// EARSHOT_TRANSCRIBER:fake`); wrangler.toml defines them away for `npm run deploy`.
const devArgs = ["dev", "--define", "EARSHOT_TEST_SEAMS:true", ...args];
const wrangler = spawn(path.join(root, "node_modules", ".bin", "wrangler"), devArgs, {
  cwd: root,
  stdio: "inherit",
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => wrangler.kill(signal));
}
wrangler.on("exit", (code, signal) => {
  process.exit(code ?? (signal ? 1 : 0));
});
