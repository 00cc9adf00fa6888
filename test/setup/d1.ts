/**
 * Runs before every test file: applies the D1 migrations (idempotent: applyD1Migrations records
 * what it applied) and seeds the demo account and key, as `npm run dev` does locally.
 */
import { applyD1Migrations, type D1Migration } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { DEMO_KEY, demoSeedStatements } from "../../src/accounts/demo-seed";
import { hashApiKey } from "../../src/auth/api-keys";

const testEnv = env as Env & { TEST_MIGRATIONS: D1Migration[] };
await applyD1Migrations(testEnv.DB, testEnv.TEST_MIGRATIONS);
const statements = demoSeedStatements(await hashApiKey(DEMO_KEY), Date.now());
await testEnv.DB.batch(statements.map((sql) => testEnv.DB.prepare(sql)));
