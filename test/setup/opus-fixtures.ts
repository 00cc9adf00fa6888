/**
 * The OPUS_FIXTURES service binding: GET http://opus/<clip>.opus answers the dev clip <clip>.wav
 * (../shared/eval/dev) encoded as Ogg/Opus by `opusenc` (Debian's opus-tools; .ci/run installs
 * it), so tests of Opus input send a real encoder's stream and nothing binary is committed.
 *
 * The encoding is fixed (serial number, bitrate, frame size, complexity), so the same clip gives
 * the same bytes on every run of the same opusenc. Encoded once per test run and cached.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const cache = new Map<string, Promise<Uint8Array>>();

async function encode(wav: string): Promise<Uint8Array> {
  const dir = await mkdtemp(path.join(tmpdir(), "earshot-opus-"));
  try {
    const out = path.join(dir, "clip.opus");
    await run("opusenc", [
      "--quiet",
      "--serial",
      "1",
      "--bitrate",
      "24",
      "--framesize",
      "20",
      "--comp",
      "10",
      wav,
      out,
    ]);
    return new Uint8Array(await readFile(out));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A service binding handler; `evalDir` is ../shared/eval. */
export function opusFixtures(evalDir: string): (request: Request) => Promise<Response> {
  return async (request) => {
    const name = decodeURIComponent(new URL(request.url).pathname.slice(1));
    const match = /^([\w-][\w.-]*)\.opus$/.exec(name);
    if (match === null) return new Response("bad opus fixture name", { status: 400 });
    const wav = path.join(evalDir, "dev", `${match[1]}.wav`);
    let bytes = cache.get(wav);
    if (bytes === undefined) {
      bytes = encode(wav);
      cache.set(wav, bytes);
    }
    try {
      return new Response(await bytes);
    } catch (error) {
      cache.delete(wav);
      return new Response(`opusenc ${name}: ${String(error)}`, { status: 500 });
    }
  };
}
