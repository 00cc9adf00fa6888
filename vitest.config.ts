import { readFile } from "node:fs/promises";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { serveWhisperFile } from "./test/setup/whisper-files";

const root = import.meta.dirname;
/** ../shared beside the clone (as on CI), or wherever EARSHOT_SHARED points. */
const shared = path.resolve(root, process.env.EARSHOT_SHARED ?? "../shared");
const evalDir = path.join(shared, "eval", "dev");

/**
 * Serves ../shared/eval/dev to tests running in workerd, which cannot read the disk:
 * GET http://fixtures/<file>. Only plain file names are served.
 */
async function serveFixture(request: Request): Promise<Response> {
  const name = decodeURIComponent(new URL(request.url).pathname.slice(1));
  if (!/^[\w.-]+$/.test(name)) return new Response("bad fixture name", { status: 400 });
  try {
    return new Response(await readFile(path.join(evalDir, name)));
  } catch (error) {
    return new Response(`fixture ${name}: ${String(error)}`, { status: 404 });
  }
}

export default defineConfig({
  plugins: [
    cloudflareTest(async () => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          TEST_MIGRATIONS: await readD1Migrations(path.join(root, "migrations")),
          EARSHOT_TRANSCRIBER: "fake",
          EARSHOT_IDLE_TIMEOUT_MS: "1500",
          EARSHOT_ADMIN_TOKEN: "earshot-admin-token",
          EARSHOT_TOKEN_SECRET: "test-only-token-secret-0123456789abcdef",
        },
        serviceBindings: { FIXTURES: serveFixture, WHISPER_FILES: serveWhisperFile },
      },
    })),
  ],
  test: {
    setupFiles: ["./test/setup/d1.ts"],
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
