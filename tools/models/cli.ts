/**
 * `npm run models`: the Whisper model pipeline, offline and idempotent.
 *
 * 1. Stock files → models/stock/: downloaded from the pinned Hugging Face revision, or copied
 *    from a mirror folder when the network does not allow it; every file SHA-256-checked.
 * 2. Prepared files → models/prepared/: the graph rewrites (tools/models/prepare.ts), checked
 *    against the committed src/stt/model-manifest.json.
 * 3. Local R2 (`wrangler dev`'s bucket earshot-models) seeded with the manifest's files.
 * A second run with everything in place only verifies hashes.
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
import { seedR2 } from "./seed-r2.ts";
import { obtainStockFiles, STOCK_FILES } from "./stock.ts";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const modelsDir = path.join(repoRoot, "models");
const stockDir = path.join(modelsDir, "stock");
const preparedDir = path.join(modelsDir, "prepared");
const manifestFile = path.join(repoRoot, "src/stt/model-manifest.json");
const DEFAULT_MIRROR = "../shared/models";

const { values: flags } = parseArgs({
  options: {
    // Offline mirror holding whisper-tiny/<path>; default: $EARSHOT_MODEL_MIRROR, else
    // ../shared/models when it exists.
    mirror: { type: "string" },
    // Do not try the download.
    offline: { type: "boolean", default: false },
    // Prepare again even when models/prepared/ matches the manifest.
    fresh: { type: "boolean", default: false },
    // Accept new prepared hashes into the manifest (after changing a rewrite on purpose).
    "write-manifest": { type: "boolean", default: false },
    // R2: skip it (--no-seed), seed the production bucket instead of the local one (--remote),
    // the local bucket's folder (wrangler's --persist-to), put every object again (--force-seed).
    "no-seed": { type: "boolean", default: false },
    remote: { type: "boolean", default: false },
    "persist-to": { type: "string" },
    "force-seed": { type: "boolean", default: false },
  },
});

function mirrorFolder(): string | undefined {
  const given = flags.mirror ?? process.env.EARSHOT_MODEL_MIRROR;
  const fallback = path.resolve(repoRoot, DEFAULT_MIRROR);
  if (given !== undefined && given !== "") {
    log(`mirror: ${path.resolve(repoRoot, given)}`);
    return path.resolve(repoRoot, given);
  }
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
function localPath(manifest: Manifest, name: ManifestName): string {
  if (name in PREPARED_NAMES) return path.join(preparedDir, PREPARED_NAMES[name as PreparedName]);
  return path.join(stockDir, manifest.files[name].name);
}

async function preparedMatch(manifest: Manifest): Promise<boolean> {
  for (const name of Object.keys(PREPARED_NAMES) as PreparedName[]) {
    const entry = manifest.files[name];
    if (!entry || !(await hasFile(localPath(manifest, name), entry))) return false;
  }
  return true;
}

async function main(): Promise<void> {
  const started = performance.now();
  const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;
  const step = (name: string) => log(`— ${name} (${seconds(started)})`);

  step("stock files");
  await obtainStockFiles(stockDir, mirrorFolder(), flags.offline);
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
    log(`  preparation took ${seconds(prepStarted)}`);
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
    const names = Object.keys(manifest.files) as ManifestName[];
    await seedR2({
      repoRoot,
      target: flags.remote ? "remote" : "local",
      persistTo: flags["persist-to"],
      files: names.map((name) => ({
        entry: manifest.files[name],
        file: localPath(manifest, name),
      })),
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
