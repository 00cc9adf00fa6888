/**
 * `node tools/dev/lockfile-check.ts <locked package-lock.json> <package-lock.json>`: after a
 * fallback `npm install`, proves it installed what the committed lockfile locks. Every package
 * both files list must have the same version and integrity; a package only one of them lists must
 * be an optional one (another platform's binary of esbuild, workerd or biome, which a registry may
 * or may not describe). Exits 1 naming every difference. Used by .ci/run.
 */
import { readFileSync } from "node:fs";

interface LockedPackage {
  version?: string;
  integrity?: string;
  optional?: boolean;
}

interface Lockfile {
  packages: Record<string, LockedPackage>;
}

function read(file: string): Lockfile {
  return JSON.parse(readFileSync(file, "utf8")) as Lockfile;
}

const [lockedFile, installedFile] = process.argv.slice(2);
if (lockedFile === undefined || installedFile === undefined) {
  console.error("usage: lockfile-check.ts <locked> <installed>");
  process.exit(2);
}
const locked = read(lockedFile).packages;
const installed = read(installedFile).packages;
const problems: string[] = [];
for (const [name, entry] of Object.entries(locked)) {
  const other = installed[name];
  if (other === undefined) {
    if (entry.optional !== true) problems.push(`${name}: locked, not installed`);
  } else if (other.version !== entry.version || other.integrity !== entry.integrity) {
    problems.push(`${name}: locked ${entry.version}, installed ${other.version}`);
  }
}
for (const [name, entry] of Object.entries(installed)) {
  if (locked[name] === undefined && entry.optional !== true) {
    problems.push(`${name}: installed ${entry.version}, not locked`);
  }
}
if (problems.length > 0) {
  console.error(`npm install did not install the locked packages:\n${problems.join("\n")}`);
  process.exit(1);
}
console.log("npm install installed exactly the locked packages (optional platform packages aside)");
