import { readFile } from "node:fs/promises";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig, type TestProjectInlineConfiguration } from "vitest/config";
import { unstable_readConfig } from "wrangler";
import { serveModelFile } from "./test/setup/models";
import { opusFixtures } from "./test/setup/opus-fixtures";
import { serveWhisperFile } from "./test/setup/whisper-files";

const root = import.meta.dirname;
/** ../shared beside the clone (as on CI), or wherever EARSHOT_SHARED points. */
const shared = path.resolve(root, process.env.EARSHOT_SHARED ?? "../shared");
const evalDir = path.join(shared, "eval");
/** Eval sets served to tests; a plain file name is read from the first (dev). */
const EVAL_SETS = ["dev", "short", "multilingual"];

/**
 * Serves ../shared/eval/{dev,short,multilingual} to tests running in workerd, which cannot read the
 * disk: GET http://fixtures/<file> (from eval/dev, e.g. "alignments/x.json" too) or
 * http://fixtures/<set>/<file>. Only plain names (no "..", no hidden files) inside those sets.
 */
async function serveFixture(request: Request): Promise<Response> {
  const parts = decodeURIComponent(new URL(request.url).pathname.slice(1)).split("/");
  if (parts.some((part) => !/^[\w-][\w.-]*$/.test(part))) {
    return new Response("bad fixture name", { status: 400 });
  }
  const set = parts.length > 1 && EVAL_SETS.includes(parts[0] ?? "") ? parts.shift() : "dev";
  const file = path.join(...parts);
  try {
    return new Response(await readFile(path.join(evalDir, set ?? "dev", file)));
  } catch (error) {
    return new Response(`fixture ${parts.join("/")}: ${String(error)}`, { status: 404 });
  }
}

/**
 * wrangler.toml's [vars], exactly as they deploy. Bound explicitly because the pool would otherwise
 * take a local .dev.vars (which `npm run dev` writes, e.g. EARSHOT_DEMO_TOKENS=on) over them, and
 * tests must see the deployed configuration whatever a developer's clone holds. Tests that need
 * another value override it below and say why.
 */
const deployedVars = Object.fromEntries(
  Object.entries(unstable_readConfig({ config: path.join(root, "wrangler.toml") }).vars).map(
    ([name, value]) => [name, String(value)],
  ),
);

/**
 * Tests that run sessions on the real Whisper models, with the deployed configuration (early
 * finals on, as production runs); every other test uses the fake.
 */
const WHISPER_SESSION_TESTS = [
  "test/whisper-session*.test.ts",
  "test/whisper-early-final*.test.ts",
];
/** Real models with EARSHOT_CONTINUATION on, the one setting that test is about. */
const WHISPER_CONTINUATION_TEST = "test/whisper-session-continuation.test.ts";
const ACCURACY_TEST = "test/whisper-session-accuracy.test.ts";
/** Real models with early finals off: the heap at the longest window (the file says why). */
const WHISPER_HEAP_TEST = "test/whisper-heap.test.ts";

/** A project of tests in workerd, with the worker's config and the given transcriber. */
function workers(
  name: string,
  transcriber: "fake" | "whisper",
  include: string[],
  exclude: string[],
  /** Bindings this project sets beyond the deployed configuration, each with its reason. */
  extra: Record<string, string> = {},
) {
  return {
    plugins: [
      cloudflareTest(async () => ({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            ...deployedVars,
            TEST_MIGRATIONS: await readD1Migrations(path.join(root, "migrations")),
            EARSHOT_TRANSCRIBER: transcriber,
            // Short, so the idle timeout is tested without 10-s waits.
            EARSHOT_IDLE_TIMEOUT_MS: transcriber === "fake" ? "1500" : "10000",
            // Short, so a resume window's expiry is tested without 30-s waits.
            EARSHOT_RESUME_WINDOW_MS: transcriber === "fake" ? "3000" : "30000",
            // Tested at its limit in session-capacity.test.ts; no test file runs more at once.
            EARSHOT_MAX_SESSIONS_PER_ISOLATE: transcriber === "fake" ? "12" : "",
            EARSHOT_ADMIN_TOKEN: "test-only-admin-token-0123456789abcdef",
            EARSHOT_TOKEN_SECRET: "test-only-token-secret-0123456789abcdef",
            ...extra,
          },
          serviceBindings: {
            FIXTURES: serveFixture,
            WHISPER_FILES: serveWhisperFile,
            MODEL_FILES: serveModelFile,
            OPUS_FIXTURES: opusFixtures(evalDir),
          },
        },
      })),
    ],
    // The suites run the build with its test seams (the fake transcriber; src/stt/select.ts).
    define: { EARSHOT_TEST_SEAMS: "true" },
    // wrangler.toml's [alias], which the pool does not apply: see src/runtime/no-web-worker.ts.
    resolve: {
      alias: { "@eshaz/web-worker": path.join(root, "src/runtime/no-web-worker.ts") },
    },
    test: {
      name,
      setupFiles: ["./test/setup/d1.ts"],
      include,
      exclude,
      testTimeout: 120_000,
      hookTimeout: 120_000,
    },
  } satisfies TestProjectInlineConfiguration;
}

/**
 * test/cross-object-wakeup.test.ts makes one Durable Object resolve a promise another created, to
 * show that workerd refuses it: the refusal surfaces only as an unhandled rejection in the isolate,
 * which that test catches and checks itself. Only that error from that file is ignored here.
 */
function expectedUnhandled(error: { message?: string; VITEST_TEST_PATH?: unknown }): boolean {
  return (
    String(error.VITEST_TEST_PATH ?? "").endsWith("test/cross-object-wakeup.test.ts") &&
    (error.message ?? "").includes("(I/O type: RefcountedFulfiller)")
  );
}

export default defineConfig({
  test: {
    onUnhandledError: (error) => !expectedUnhandled(error),
    // Prepared models in models/ before anything runs (copied from the mirror on CI).
    // ... and src/generated/ (tools/models/generated.ts): the Opus decoder's wasm, the prepared
    // Silero.
    globalSetup: ["./test/setup/models.ts", "./test/setup/generated.ts"],
    projects: [
      workers(
        "protocol",
        "fake",
        ["test/**/*.test.ts"],
        [...WHISPER_SESSION_TESTS, WHISPER_HEAP_TEST],
      ),
      // As deployed: the accuracy suite's budgets are the product's.
      workers("whisper", "whisper", WHISPER_SESSION_TESTS, [WHISPER_CONTINUATION_TEST]),
      // Continuation on (off as deployed, wrangler.toml says why): what it does when it is on, and
      // the accuracy ratchet with it (each setting has its budgets).
      workers("whisper-continuation", "whisper", [WHISPER_CONTINUATION_TEST, ACCURACY_TEST], [], {
        EARSHOT_CONTINUATION: "on",
      }),
      // Early finals off: an utterance no pause ends, so the length cap makes the longest window.
      workers("whisper-heap", "whisper", [WHISPER_HEAP_TEST], [], { EARSHOT_EARLY_FINALS: "off" }),
    ],
  },
});
