/**
 * Puts the manifest's files into the R2 bucket the worker binds as MODELS, through wrangler:
 *   wrangler r2 object put earshot-models/<key> --file <path> --local [--persist-to <dir>]
 * (`--remote` instead of `--local` writes the production bucket).
 *
 * wrangler cannot tell us cheaply what a bucket already holds, so a marker file
 * (models/.r2-seeded.json) remembers which key was put with which sha256, per target. Keys are
 * content-addressed (see manifest.ts), so a recorded key with the same hash is the same object.
 * For the local target the marker entry also requires the persisted bucket folder to exist:
 * deleting .wrangler/state reseeds.
 */
import { spawn } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { log, megabytes, unlessMissing, writeAtomic } from "./files.ts";
import type { ManifestFile } from "./manifest.ts";

const BUCKET = "earshot-models";

export interface SeedOptions {
  repoRoot: string;
  target: "local" | "remote";
  /** Local persistence folder (wrangler's --persist-to); wrangler's default when undefined. */
  persistTo: string | undefined;
  /** Each manifest file with its path on disk. */
  files: { entry: ManifestFile; file: string }[];
  markerFile: string;
  force: boolean;
}

type Marker = Record<string, Record<string, string>>;

export async function seedR2(options: SeedOptions): Promise<void> {
  const persist = path.resolve(options.repoRoot, options.persistTo ?? ".wrangler/state");
  const local = options.target === "local";
  const target = local ? `local:${persist}` : "remote";
  const markerText = await unlessMissing(readFile(options.markerFile, "utf8"));
  const marker: Marker = markerText === undefined ? {} : JSON.parse(markerText);
  const seeded = marker[target] ?? {};
  const bucketExists = !local || (await unlessMissing(stat(path.join(persist, "v3/r2", BUCKET))));
  const pending = options.files.filter(
    ({ entry }) => options.force || !bucketExists || seeded[entry.key] !== entry.sha256,
  );
  if (pending.length === 0) {
    log(`R2 (${options.target}): all ${options.files.length} objects already in ${BUCKET}`);
    return;
  }
  log(`R2 (${options.target}): putting ${pending.length} objects into ${BUCKET}`);
  for (const { entry, file } of pending) {
    log(`  put ${entry.key} (${megabytes(entry.bytes)})`);
    const type = entry.name.endsWith(".json") ? "application/json" : "application/octet-stream";
    const args = ["r2", "object", "put", `${BUCKET}/${entry.key}`, "--file", file];
    args.push(`--${options.target}`, "--content-type", type);
    if (local && options.persistTo !== undefined) args.push("--persist-to", persist);
    await wrangler(options.repoRoot, args);
    seeded[entry.key] = entry.sha256;
    marker[target] = seeded;
    // Recorded after each object, so an interrupted run redoes only what is missing.
    const text = `${JSON.stringify(marker, null, 2)}\n`;
    await writeAtomic(options.markerFile, [new TextEncoder().encode(text)]);
  }
}

/** Runs the project's wrangler with this Node (the pinned 22); its chatter goes to stderr. */
function wrangler(cwd: string, args: string[]): Promise<void> {
  const bin = path.join(cwd, "node_modules/wrangler/bin/wrangler.js");
  const child = spawn(process.execPath, [bin, ...args], { cwd, stdio: ["ignore", 2, 2] });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new Error(`wrangler ${args.slice(0, 4).join(" ")} failed (${signal ?? `exit ${code}`})`),
        );
    });
  });
}
