import { env } from "cloudflare:workers";

export interface Wav {
  sampleRate: number;
  channels: number;
  /** Interleaved PCM16 sample data (the `data` chunk). */
  pcm: Uint8Array;
}

/** A clip from ../shared/eval/dev, fetched through the FIXTURES binding (see vitest.config.ts). */
export async function fixture(name: string): Promise<Uint8Array> {
  const response = await (env as unknown as { FIXTURES: Fetcher }).FIXTURES.fetch(
    `http://fixtures/${name}`,
  );
  if (!response.ok)
    throw new Error(`fixture ${name}: HTTP ${response.status} ${await response.text()}`);
  return new Uint8Array(await response.arrayBuffer());
}

export function parseWav(bytes: Uint8Array): Wav {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error("not a WAV file");
  let offset = 12;
  let sampleRate = 0;
  let channels = 0;
  while (offset + 8 <= bytes.byteLength) {
    const id = tag(offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === "fmt ") {
      channels = view.getUint16(body + 2, true);
      sampleRate = view.getUint32(body + 4, true);
      const bits = view.getUint16(body + 14, true);
      if (bits !== 16) throw new Error(`expected 16-bit PCM, got ${bits}`);
    } else if (id === "data") {
      return { sampleRate, channels, pcm: bytes.slice(body, body + size) };
    }
    offset = body + size + (size % 2);
  }
  throw new Error("WAV has no data chunk");
}

export async function wavFixture(name: string): Promise<Wav> {
  return parseWav(await fixture(name));
}

/** PCM16 little-endian bytes to floats in [-1, 1). */
export function pcm16ToFloat(pcm: Uint8Array): Float32Array {
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const out = new Float32Array(pcm.byteLength >> 1);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}
