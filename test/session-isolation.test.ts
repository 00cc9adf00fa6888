/**
 * Isolation, the property Earshot exists for: eight sessions at once, with different audio (speech,
 * music, silence), sample rates and encodings, each receive exactly the events they receive when
 * run alone — nothing more, nothing less, nothing of another's — and every message carries its own
 * session's id.
 */
import { describe, expect, it } from "vitest";
import { floatToMulaw, floatToPcm16, resample } from "./helpers/audio";
import { frames, type ServerJson, TestClient, withoutIds } from "./helpers/client";
import { pcm16ToFloat, wavFixture } from "./helpers/fixtures";

interface Case {
  clip: string;
  rate: number;
  encoding: "linear16" | "mulaw";
}

const CASES: Case[] = [
  { clip: "wcpp_jfk.wav", rate: 16_000, encoding: "linear16" },
  { clip: "sb_spk1_snt1.wav", rate: 48_000, encoding: "linear16" },
  { clip: "psx_librivox_0880.wav", rate: 8_000, encoding: "linear16" },
  { clip: "ns_generated_silence_5s.wav", rate: 16_000, encoding: "linear16" },
  { clip: "leopard_test_en.wav", rate: 44_100, encoding: "linear16" },
  { clip: "ns_librosa_trumpet.wav", rate: 22_050, encoding: "linear16" },
  { clip: "ds_ldc93s1.wav", rate: 8_000, encoding: "mulaw" },
  { clip: "sb_spk1_snt3.wav", rate: 16_000, encoding: "linear16" },
];

interface Prepared extends Case {
  query: string;
  frames: Uint8Array[];
}

async function prepare(c: Case): Promise<Prepared> {
  const wav = await wavFixture(c.clip);
  const samples = resample(pcm16ToFloat(wav.pcm), wav.sampleRate, c.rate);
  const bytes = c.encoding === "mulaw" ? floatToMulaw(samples) : floatToPcm16(samples);
  const bytesPer20ms = (c.rate / 50) * (c.encoding === "mulaw" ? 1 : 2);
  return {
    ...c,
    query: `?encoding=${c.encoding}&sample_rate=${c.rate}&interim_results=true&vad_events=true&utterance_end_ms=1000`,
    frames: frames(bytes, bytesPer20ms),
  };
}

async function runAlone(p: Prepared): Promise<ServerJson[]> {
  const client = await TestClient.open(p.query);
  for (const frame of p.frames) client.sendAudio(frame);
  await client.finish();
  return client.messages;
}

describe("eight concurrent sessions", () => {
  it("each get exactly their own events", async () => {
    const prepared = await Promise.all(CASES.map(prepare));
    const alone: ServerJson[][] = [];
    for (const p of prepared) alone.push(await runAlone(p));
    // The references must be worth comparing: speech produced results, silence produced none.
    expect(alone[0]?.some((m) => m.type === "Results" && m.is_final === true)).toBe(true);
    expect(alone[3]?.filter((m) => m.type === "SpeechStarted")).toEqual([]);

    const clients = await Promise.all(prepared.map((p) => TestClient.open(p.query)));
    // Interleave: one frame of each session in turn, yielding between rounds.
    const rounds = Math.max(...prepared.map((p) => p.frames.length));
    for (let i = 0; i < rounds; i++) {
      prepared.forEach((p, s) => {
        const frame = p.frames[i];
        if (frame) clients[s]?.sendAudio(frame);
      });
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await Promise.all(clients.map((c) => c.finish()));

    clients.forEach((client, s) => {
      const reference = alone[s] ?? [];
      const ids = new Set(
        client.messages.flatMap((m) => {
          const metadata = m.metadata as { request_id?: string } | undefined;
          return [m.request_id, metadata?.request_id].filter((id) => id !== undefined);
        }),
      );
      expect(ids, `session ${s} ids`).toEqual(new Set([client.sessionId]));
      // Metadata's `created` differs between runs; everything else must be identical.
      const strip = (ms: ServerJson[]) =>
        withoutIds(ms).map((m) => ({ ...(m as object), created: undefined }));
      expect(strip(client.messages), `session ${s} (${prepared[s]?.clip})`).toEqual(
        strip(reference),
      );
    });
  });
});
