/**
 * `npm run models`: the Whisper model pipeline, offline and idempotent.
 *
 * 1. Stock files → models/stock/: downloaded from the pinned Hugging Face revision, or copied
 *    from a mirror folder when the network does not allow it; every file SHA-256-checked.
 * 2. Prepared files → models/prepared/: the graph rewrites (tools/models/prepare.ts), checked
 *    against the committed src/stt/model-manifest.json.
 * 3. Local R2 (`wrangler dev`'s bucket earshot-models) seeded with the manifest's files.
 * A second run with everything in place only verifies hashes.
 *
 * Flags:
 *   --mirror <dir>     offline mirror (default: $EARSHOT_MODEL_MIRROR, else ../shared/models
 *                      when it exists); holds whisper-tiny/<path>
 *   --offline          do not try the download
 *   --fresh            prepare again even when models/prepared/ matches the manifest
 *   --write-manifest   accept new prepared hashes into src/stt/model-manifest.json (after
 *                      changing a rewrite on purpose)
 *   --no-seed          skip R2
 *   --remote           seed the production bucket instead of the local one
 *   --persist-to <dir> local R2 persistence folder (wrangler's --persist-to)
 *   --force-seed       put every object again
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { hasFile, log } from "./files.ts";
import {
  buildManifest,
  type Manifest,
  type ManifestName,
  manifestDifferences,
  readManifest,
  writeManifest,
} from "./manifest.ts";
import { PREPARED_NAMES, type PreparedName, prepareModels } from "./prepare.ts";
import { seedFiles, seedR2 } from "./seed-r2.ts";
import { obtainStockFiles, STOCK_FILES } from "./stock.ts";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const modelsDir = path.join(repoRoot, "models");
const stockDir = path.join(modelsDir, "stock");
const preparedDir = path.join(modelsDir, "prepared");
const manifestFile = path.join(repoRoot, "src", "stt", "model-manifest.json");
const DEFAULT_MIRROR = "../shared/models";

const { values: flags } = parseArgs({
  options: {
    mirror: { type: "string" },
    offline: { type: "boolean", default: false },
    fresh: { type: "boolean", default: false },
    "write-manifest": { type: "boolean", default: false },
    "no-seed": { type: "boolean", default: false },
    remote: { type: "boolean", default: false },
    "persist-to": { type: "string" },
    "force-seed": { type: "boolean", default: false },
  },
});

function mirrorFolder(): string | undefined {
  const given = flags.mirror ?? process.env.EARSHOT_MODEL_MIRROR;
  if (given !== undefined && given !== "") {
    const resolved = path.resolve(repoRoot, given);
    log(`mirror: ${resolved}`);
    return resolved;
  }
  const fallback = path.resolve(repoRoot, DEFAULT_MIRROR);
  if (existsSync(fallback)) {
    log(
      `mirror: ${fallback} (EARSHOT_MODEL_MIRROR unset; using ${DEFAULT_MIRROR} because it exists)`,
    );
    return fallback;
  }
  log("mirror: none (EARSHOT_MODEL_MIRROR unset and ../shared/models absent): download only");
  return undefined;
}

/** Where each manifest file lives on disk. */
function localPath(manifest: Manifest, name: string): string {
  if (name in PREPARED_NAMES) return path.join(preparedDir, PREPARED_NAMES[name as PreparedName]);
  const entry = manifest.files[name as ManifestName];
  return path.join(stockDir, entry.name);
}

async function preparedMatch(manifest: Manifest | undefined): Promise<boolean> {
  if (!manifest) return false;
  for (const name of Object.keys(PREPARED_NAMES) as PreparedName[]) {
    const entry = manifest.files[name];
    if (!entry || !(await hasFile(localPath(manifest, name), entry))) return false;
  }
  return true;
}

async function main(): Promise<void> {
  const started = performance.now();
  const step = (name: string) =>
    log(`— ${name} (${((performance.now() - started) / 1000).toFixed(1)} s)`);

  step("stock files");
  await obtainStockFiles({ stockDir, mirror: mirrorFolder(), offline: flags.offline });
  log(`  ${Object.keys(STOCK_FILES).length} stock files verified in ${stockDir}`);

  step("prepared files");
  const committed = await readManifest(manifestFile);
  let manifest: Manifest;
  if (!flags.fresh && committed && (await preparedMatch(committed))) {
    log("  models/prepared/ matches src/stt/model-manifest.json: nothing to prepare");
    manifest = committed;
  } else {
    const prepStarted = performance.now();
    manifest = buildManifest(await prepareModels(stockDir, preparedDir));
    log(`  preparation took ${((performance.now() - prepStarted) / 1000).toFixed(1)} s`);
    const differences = committed ? manifestDifferences(committed, manifest) : ["no manifest yet"];
    if (differences.length === 0) {
      log("  prepared files match src/stt/model-manifest.json");
    } else if (!committed || flags["write-manifest"]) {
      await writeManifest(manifestFile, manifest);
      log(`  wrote src/stt/model-manifest.json (${differences.join("; ")})`);
    } else {
      throw new Error(
        "prepared files differ from src/stt/model-manifest.json:\n  " +
          `${differences.join("\n  ")}\n` +
          "If a rewrite changed on purpose, run `npm run models -- --write-manifest` and commit " +
          "the manifest; otherwise the preparation is not deterministic: report it.",
      );
    }
  }

  if (flags["no-seed"]) {
    log("— R2: skipped (--no-seed)");
  } else {
    step(`R2 (${flags.remote ? "remote" : "local"})`);
    await seedR2({
      repoRoot,
      target: flags.remote ? "remote" : "local",
      persistTo: flags["persist-to"],
      files: seedFiles(manifest, (name) => localPath(manifest, name)),
      markerFile: path.join(modelsDir, ".r2-seeded.json"),
      force: flags["force-seed"],
    });
  }

  step("done");
}

main().catch((error: unknown) => {
  log(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
