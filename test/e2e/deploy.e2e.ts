/**
 * What `npm run deploy` would ship, without deploying: `npm run deploy -- --dry-run --outdir`
 * bundles the worker as production gets it and lists its bindings. The bundle must fit
 * Cloudflare's limit on a Worker's compressed size, and the demo page's token routes must ship
 * off (test/deploy-config.test.ts runs the worker with these same vars and gets 404), and the
 * fake transcriber (a test seam) must not be in it.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fakeTranscriber } from "../../src/stt/fake-transcriber";
import { ROOT } from "./dev-server";

/** Cloudflare's cap on a Worker's gzip-compressed size on the paid plan: 10 MB. */
const WORKER_GZIP_LIMIT_KIB = 10 * 1024;

const outdir = mkdtempSync(path.join(tmpdir(), "earshot-dry-run-"));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

function dryRun(): string {
  const result = spawnSync("npm", ["run", "deploy", "--", "--dry-run", "--outdir", outdir], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  const output = `${result.stdout}${result.stderr}`;
  if (result.status !== 0) throw new Error(`npm run deploy -- --dry-run failed:\n${output}`);
  return output;
}

describe("npm run deploy -- --dry-run", () => {
  const output = dryRun();

  it("bundles a worker under Cloudflare's compressed-size limit", () => {
    const size = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(output);
    expect(size, output).not.toBeNull();
    const gzipKiB = Number(size?.[2]);
    console.log(
      `worker bundle: ${size?.[1]} KiB, gzip ${gzipKiB} KiB (limit ${WORKER_GZIP_LIMIT_KIB})`,
    );
    expect(gzipKiB).toBeGreaterThan(0);
    expect(gzipKiB).toBeLessThan(WORKER_GZIP_LIMIT_KIB);
  });

  it("ships the demo token routes off and no local secret as a var", () => {
    expect(output).toMatch(/env\.EARSHOT_DEMO_TOKENS \("off"\)\s+Environment Variable/);
    expect(output).not.toContain("EARSHOT_ADMIN_TOKEN (");
    expect(output).not.toContain("EARSHOT_TOKEN_SECRET (");
  });

  it("leaves the fake transcriber out (EARSHOT_TEST_SEAMS false), keeping the refusal that says so", () => {
    const bundle = readFileSync(path.join(outdir, "index.js"), "utf8");
    // The fake's model id is a literal of its module only: present iff the module is bundled.
    expect(bundle).not.toContain(fakeTranscriber.model.uuid);
    expect(bundle).toContain("is a test seam and is not in this build");
  });
});
