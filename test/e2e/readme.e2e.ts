/**
 * The README's client examples, run as written against the `npm run dev` under test: each fenced
 * block after a `<!-- example: NAME -->` marker in README.md is extracted (never copied here), its
 * `127.0.0.1:8787` pointed at this run's port (the only change), run, and its printed output
 * checked against the expected output written at the end of the block itself (`// …` lines for
 * JavaScript, `# …` lines for shell; `...` stands for any text). The two streaming examples must
 * also transcribe the clip they send. An example that drifts from the code fails here.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, inject, it } from "vitest";
import { wordErrorRate } from "../../tools/eval/wer";
import { ROOT } from "./dev-server";
import { readClip } from "./sdk-harness";

const baseUrl = inject("baseUrl");
const transcriber = inject("transcriber");
const port = new URL(baseUrl).port;
/** Inside the repository, so `import "@deepgram/sdk"` resolves from its node_modules. */
const WORK_DIR = path.join(ROOT, "test-results", "readme");
/** Real time for an 11-s clip, its last final, then Metadata and the close. */
const RUN_TIMEOUT_MS = 60_000;
/**
 * JFK read by Whisper tiny through the service: 22 words; this allows 2 errors (the dev-set WER
 * is 0.077). A lost phrase ("ask not") is more than that.
 */
const MAX_WER = 0.1;

interface Example {
  language: string;
  code: string;
  /** The block's trailing comment lines, without their comment marker. */
  expected: string[];
}

/** The fenced block after `<!-- example: name -->`; throws when the README has no such example. */
function example(name: string): Example {
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
  const marker = `<!-- example: ${name} -->`;
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no ${marker}`);
  const match = /^```(\w+)\n([\s\S]*?)^```$/m.exec(readme.slice(at + marker.length));
  if (match?.[1] === undefined || match[2] === undefined) {
    throw new Error(`no code block after ${marker}`);
  }
  const language = match[1];
  const lines = match[2].trimEnd().split("\n");
  const comment = language === "sh" ? "# " : "// ";
  const expected: string[] = [];
  while (lines.length > 0 && (lines.at(-1) ?? "").startsWith(comment)) {
    expected.unshift((lines.pop() ?? "").slice(comment.length));
  }
  if (expected.length === 0) throw new Error(`${marker}: its block ends with no expected output`);
  return { language, code: match[2], expected };
}

/** The example pointed at this run's server: its only change. */
function onThisServer(code: string): string {
  expect(code).toContain("127.0.0.1:8787");
  return code.replaceAll("127.0.0.1:8787", `127.0.0.1:${port}`);
}

/** `expected` lines appear in `output` in order, each as a whole line; `...` matches any text. */
function expectOutput(output: string, expected: readonly string[]): void {
  const lines = output.split(/\r?\n/).map((line) => line.trimEnd());
  let from = 0;
  for (const want of expected) {
    const pattern = new RegExp(
      `^${want
        .split("...")
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*")}$`,
      "i",
    );
    const found = lines.findIndex((line, i) => i >= from && pattern.test(line));
    expect(found, `"${want}" after line ${from} of:\n${output}`).toBeGreaterThanOrEqual(0);
    from = found + 1;
  }
}

function run(command: string, args: string[], file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args, file], { cwd: WORK_DIR });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${file} ran past ${RUN_TIMEOUT_MS} ms; it printed:\n${output}`));
    }, RUN_TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`${file} exited with ${code}; it printed:\n${output}`));
    });
  });
}

function finalsOf(output: string): string {
  return output
    .split("\n")
    .filter((line) => line.startsWith("final: "))
    .map((line) => line.slice("final: ".length))
    .join(" ");
}

const clip = readClip("wcpp_jfk");
mkdirSync(WORK_DIR, { recursive: true });
// The file the examples read: raw 16-bit little-endian PCM, 16 kHz, mono, as the README says.
writeFileSync(path.join(WORK_DIR, "speech-16k-mono.raw"), clip.pcm);

describe("the README's examples, as written", () => {
  for (const name of ["websocket", "sdk"]) {
    it(`${name}: streams a clip, prints its finals and the close it documents`, async () => {
      const { language, code, expected } = example(name);
      expect(language).toBe("js");
      const file = `${name}.mjs`;
      writeFileSync(path.join(WORK_DIR, file), onThisServer(code));
      const output = await run(process.execPath, [], file);
      expectOutput(output, expected);
      if (transcriber === "whisper") {
        const wer = wordErrorRate(clip.reference, finalsOf(output));
        expect(wer.wer, `finals: ${finalsOf(output)}`).toBeLessThanOrEqual(MAX_WER);
      }
    });
  }

  it("curl: the handshake refusal it documents", async () => {
    const { language, code, expected } = example("curl");
    expect(language).toBe("sh");
    writeFileSync(path.join(WORK_DIR, "curl.sh"), onThisServer(code));
    expectOutput(await run("bash", ["-e"], "curl.sh"), expected);
  });
});
