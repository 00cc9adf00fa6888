/**
 * `npm run dev:setup [-- --config <wrangler.toml>] [--persist-to <dir>]`: prepares the local D1
 * database for `wrangler dev`: applies migrations/ (wrangler records what it applied) and seeds
 * the `demo` account with the key `earshot-demo-key` (INSERT OR IGNORE). Idempotent: running it
 * again changes nothing. Also importable: `setupLocalDatabase()` (for tools/dev/dev.ts).
 *
 * Runs under the pinned Node 22 (type stripping: hence the explicit .ts import extensions).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { parseArgs } from "node:util";
import { DEMO_ACCOUNT_ID, DEMO_KEY, demoSeedStatements } from "../../src/accounts/demo-seed.ts";
import { hashApiKey } from "../../src/auth/api-keys.ts";

const root = path.resolve(import.meta.dirname, "../..");
/** wrangler.toml's `database_name` for the `DB` binding. */
const DATABASE_NAME = "earshot";

export interface LocalDatabaseOptions {
  /** wrangler config file; wrangler's default (./wrangler.toml) when absent. */
  config?: string;
  /** Same as `wrangler dev --persist-to`; must match it, or dev reads another database. */
  persistTo?: string;
}

function wrangler(args: string[], options: LocalDatabaseOptions): void {
  const extra = [
    ...(options.config ? ["--config", options.config] : []),
    ...(options.persistTo ? ["--persist-to", options.persistTo] : []),
  ];
  const bin = path.join(root, "node_modules", ".bin", "wrangler");
  // CI=1: `d1 migrations apply` asks for confirmation on a terminal; this is not a question.
  const result = spawnSync(bin, [...args, "--local", ...extra], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, CI: "1" },
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`wrangler ${args.join(" ")} exited with status ${result.status}`);
  }
}

/** Applies the migrations to the local D1 database and seeds the demo account and key. */
export async function setupLocalDatabase(options: LocalDatabaseOptions = {}): Promise<void> {
  wrangler(["d1", "migrations", "apply", DATABASE_NAME], options);
  const sql = demoSeedStatements(await hashApiKey(DEMO_KEY), Date.now()).join("\n");
  wrangler(["d1", "execute", DATABASE_NAME, "--command", sql], options);
  console.log(`local D1 ready: account '${DEMO_ACCOUNT_ID}', key '${DEMO_KEY}'`);
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { config: { type: "string" }, "persist-to": { type: "string" } },
  });
  await setupLocalDatabase({ config: values.config, persistTo: values["persist-to"] });
}
