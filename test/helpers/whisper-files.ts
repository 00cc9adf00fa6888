import { env } from "cloudflare:workers";

/**
 * A file of the stock Whisper tiny model folder (../shared/models/whisper-tiny), fetched through
 * the WHISPER_FILES binding that test/setup/whisper-files.ts serves.
 */
export async function whisperFile(name: string): Promise<Uint8Array> {
  const binding = (env as unknown as { WHISPER_FILES?: Fetcher }).WHISPER_FILES;
  if (!binding) {
    throw new Error("WHISPER_FILES binding missing: register test/setup/whisper-files.ts");
  }
  const response = await binding.fetch(`http://whisper/${name}`);
  if (!response.ok) {
    throw new Error(`Whisper file ${name}: HTTP ${response.status} ${await response.text()}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

export async function whisperJson<T>(name: string): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await whisperFile(name))) as T;
}
