/**
 * `npm test`'s and `npm run test:e2e`'s `pretest`: the one thing the suites need from outside npm,
 * Debian's opus-tools (`opusenc` encodes a dev clip for the Opus tests, test/setup/opus-fixtures.ts
 * and test/e2e/sdk-formats.e2e.ts; no npm package encodes Opus in Node without a native build). Present: nothing to do. Missing: installed with
 * apt-get when this runs as root (as on this project's machines and CI), else the command to run
 * is printed and `npm test` stops before running a suite that would fail for a missing tool.
 */
import { spawnSync } from "node:child_process";

function has(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { stdio: "inherit" });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited with ${result.status ?? result.signal}`);
  }
}

if (!has("opusenc")) {
  const install = "apt-get install -y --no-install-recommends opus-tools";
  if (process.getuid?.() === 0 && has("apt-get")) {
    console.log(`opusenc is missing: ${install}`);
    run("apt-get", ["update", "-q"]);
    run("apt-get", ["install", "-y", "-q", "--no-install-recommends", "opus-tools"]);
  } else {
    console.error(
      `The Opus tests need opusenc: run \`sudo ${install}\` (Debian/Ubuntu), then npm test.`,
    );
    process.exit(1);
  }
}
