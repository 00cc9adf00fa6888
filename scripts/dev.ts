/**
 * `npm run dev [-- <wrangler dev flags>]`: everything a fresh clone needs to run Earshot locally,
 * then `wrangler dev` in the foreground (flags such as `--port 8788 --ip 127.0.0.1` pass through).
 *
 * 1. .dev.vars: local secrets (admin token, token-signing secret, the demo-page token route). An
 *    existing file is kept; only missing names are appended, so your overrides stay.
 * 2. The local D1 database: migrations applied, demo account `demo` with key `earshot-demo-key`.
 * 3. The Whisper models: fetched (or copied from EARSHOT_MODEL_MIRROR), verified, prepared and
 *    put into the local R2 bucket — `npm run models`, which only re-checks hashes once done.
 * 4. wrangler dev, with the demo page at http://127.0.0.1:8787/ (or the port you gave).
 *
 * Runs under the pinned Node 22 (`npm run` puts node_modules/.bin first on PATH).
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setupLocalDatabase } from "./dev-setup.ts";

const root = path.resolve(import.meta.dirname, "..");
const args = process.argv.slice(2);

/** Local-only defaults. None of these may appear in wrangler.toml, whose [vars] ship to production. */
function localDefaults(): Record<string, string> {
  return {
    EARSHOT_ADMIN_TOKEN: "earshot-admin-token",
    // Signs browser tokens; random per clone (48 bytes of entropy).
    EARSHOT_TOKEN_SECRET: randomBytes(48).toString("base64url"),
    // The demo page's token route (POST /dev/token); off unless set, so off in production.
    EARSHOT_DEMO_TOKENS: "on",
  };
}

function ensureDevVars(): void {
  const file = path.join(root, ".dev.vars");
  const existing = existsSync(file) ? readFileSync(file, "utf8") : "";
  const present = new Set(
    existing
      .split("\n")
      .map((line) => /^\s*([A-Z0-9_]+)\s*=/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined),
  );
  const missing = Object.entries(localDefaults()).filter(([name]) => !present.has(name));
  if (missing.length === 0) return;
  const lines = missing.map(([name, value]) => `${name}=${value}`).join("\n");
  const separator = existing === "" || existing.endsWith("\n") ? "" : "\n";
  writeFileSync(file, `${existing}${separator}${lines}\n`);
  console.log(`.dev.vars: added ${missing.map(([name]) => name).join(", ")}`);
}

function flag(name: string): string | undefined {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : args.find((a) => a.startsWith(`${name}=`))?.split("=")[1];
}

function prepareModels(): void {
  const persistTo = flag("--persist-to");
  const result = spawnSync(
    process.execPath,
    [path.join(root, "scripts", "models.ts"), ...(persistTo ? ["--persist-to", persistTo] : [])],
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

const wrangler = spawn(path.join(root, "node_modules", ".bin", "wrangler"), ["dev", ...args], {
  cwd: root,
  stdio: "inherit",
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => wrangler.kill(signal));
}
wrangler.on("exit", (code, signal) => {
  process.exit(code ?? (signal ? 1 : 0));
});
