/**
 * Accuracy through the real session (workerd, real models; the "whisper" project of
 * vitest.config.ts): every speech clip of ../shared/eval/dev and ../shared/eval/short streamed
 * through `/v1/listen` at endpointing 10 (Deepgram's default), 300 and 500 ms, scored by WER per
 * setting and per category with deletions and insertions apart; short phrases cut out of the
 * aligned LibriVox clips and joined with pauses (PHRASE_ERRORS); no words at all on the
 * no-speech clips and on generated noise and music.
 *
 * A ratchet: each clip's errors at each setting may not exceed the budget measured when it was
 * last improved (ERROR_BUDGETS), and no clip may lose two or more consecutive reference words
 * (a dropped short turn, or the edge of a segment) beyond the runs listed in KNOWN_DELETION_RUNS.
 * When a change improves a clip, lower its budget in the same commit. The table printed by each
 * run is the one quoted in docs/accuracy.md.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { decodeCounters } from "../src/stt/whisper/transcribe";
import { seededRandom } from "../tools/eval/random";
import {
  allWords,
  type ClipScore,
  deletionRuns,
  finalText,
  report,
  scoreClip,
  streamClip,
  totals,
} from "./helpers/accuracy";
import { floatToPcm16 } from "./helpers/audio";
import { fixture, manifest, pcm16ToFloat, wavFixture } from "./helpers/fixtures";
import { brownNoise, hum, melody, whiteNoise } from "./helpers/generated-audio";
import { seedModels } from "./helpers/models";

const Q = "?encoding=linear16&sample_rate=16000";
const SETTINGS = [10, 300, 500] as const;
type Setting = (typeof SETTINGS)[number];

/**
 * This file runs twice: in the `whisper` project as deployed (EARSHOT_CONTINUATION off in
 * wrangler.toml) and in `whisper-continuation` with it on (vitest.config.ts). Each has its budgets;
 * the figures below name which. Measured with it off on 2026-12-06: 14 / 14 / 14 errors, each clip
 * as with it on but sb_lj050_0131 at 10 and 300 (3, "a system"), and the phrases 29 / 33 / 22.
 */
const CONTINUATION = env.EARSHOT_CONTINUATION === "on";

/**
 * Errors over all 206 reference words allowed per setting (the ratchet's sum). With early finals
 * on (the default since they cut end-of-speech → final p50 by ~40%), 300 and 500 decode the same
 * audio (up to the first silence) and read alike. A 3-beam decode of the finals up to 5 s whose
 * greedy decode is unsure (EARSHOT_BEAM_SIZE, BEAM_BELOW_LOGPROB) took them from 23 / 19 / 19 to
 * 18 / 16 / 16; keeping a word the VAD heard said twice (repetition.ts `saidTwice`) to 18 / 15 / 15;
 * finals that continue the utterance before them (src/stt/whisper/continuation.ts) to 14 / 13 / 14;
 * a long utterance ended at its pause (src/session/early-finals.ts) to 14 / 12 / 13; no utterance
 * ending at a pause shorter than a phrase's (MIN_ENDPOINTING_MS, 256 ms) to 12 / 12 / 13; keeping
 * a sure decode the repetition guard cut without temperature retries (retry-policy.ts
 * SURE_AFTER_CUT_LOGPROB) to 13 / 13 / 14: JFK's "ask not" reads "is not" again (below), and with
 * continuation off, the default, the errors stay 14 / 14 / 14 while the retries fall 10 → 4.
 */
const MAX_ERRORS: Record<Setting, number> = CONTINUATION
  ? { 10: 13, 300: 13, 500: 14 }
  : { 10: 14, 300: 14, 500: 14 };

/**
 * Errors allowed per clip and setting: the measured baseline, lowered as fixes land. Two clips
 * went up by one, with the beams and with continuation, while the totals fell; they are marked.
 * JFK went up by one at every setting when sure guard-cut decodes stopped being retried: its first
 * phrase is cut where Whisper starts reading it again, and was sampled again at 0.2 ("and so my
 * fellow Americans", no comma); continuing that text, the next phrase read "ask not", continuing
 * the greedy text ("And so my fellow Americans,") it reads "is not", as it does with continuation
 * off before and after the change. The retry never changed a word of the phrase it redid.
 */
const ERROR_BUDGETS: Record<Setting, Record<string, number>> = {
  10: {
    // wcpp_jfk: 2 → 0 when endpointing acted at 256 ms at least (session-config.ts
    // MIN_ENDPOINTING_MS): "ask | not" is no longer cut in two at its 192-ms gap; 0 → 1 ("is
    // not") when sure guard-cut decodes were no longer retried (see above).
    wcpp_jfk: 1,
    // psx_librivox_0870: 2 → 0 with continuation ("in his power", was "and is power").
    psx_librivox_0880: 3,
    // 2 → 3 with continuation: "is to be able to suppose" (was "all-desposed").
    psx_librivox_0890: 3,
    // sb_spk1_snt1: 1 → 0 with continuation ("hurt. The small dog", was "this small dog").
    // 3 → 2 with the 256-ms endpointing floor.
    sb_lj050_0131: 2,
    // 5 → 3 with beams: "She had the dark suit and greasy wash" (greedy: "the duxu").
    ds_ldc93s1: 3,
    // psx_cards_002: 1 → 0 with continuation ("4, Queen of clubs.", was "clothes"); 0 → 1 with
    // the 256-ms endpointing floor: "four" and "queen of clubs" are one utterance, read as at 300.
    psx_cards_002: 1,
    // psx_cards_003: 2 → 1 with beams ("seven of clips,"), 1 → 0 with continuation.
    // psx_tidigits_2934z: 2 → 0 with beams: "29340." for "two nine three four zero".
  },
  300: {
    // wcpp_jfk: 1 → 0 with continuation ("ask not", was "is not"); 0 → 1 when sure guard-cut
    // decodes were no longer retried (see above).
    wcpp_jfk: 1,
    psx_librivox_0880: 3,
    psx_librivox_0890: 3,
    // 3 → 2 with continuation ("there under, in this regard").
    sb_lj050_0131: 2,
    // 5 → 3 with beams.
    ds_ldc93s1: 3,
    // lhotse_2412_153948_0000: 1 → 0 when a long utterance ended at its pause (early-finals.ts).
    // 0 → 1 with beams: "4 Queen of Clothes" (greedy had "clubs" right here, not at 10 ms).
    psx_cards_002: 1,
    // psx_cards_004: 1 → 0 when the VAD's bursts showed "five" said twice ("five, five,").
    // psx_tidigits_2934z: 2 → 0 with beams.
  },
  500: {
    // wcpp_jfk: 1 → 0 with continuation ("ask not", was "is not"); 0 → 1 when sure guard-cut
    // decodes were no longer retried (see above).
    wcpp_jfk: 1,
    // 1 → 3 with early finals: "He was not, and he'll dispose young man."
    psx_librivox_0880: 3,
    psx_librivox_0890: 3,
    // "unless the system is established … there under. in this regard." (the pause's split at
    // its first silence frame read "a system" and counted 2; ending in the pause reads "the").
    sb_lj050_0131: 3,
    // 5 → 3 with beams.
    ds_ldc93s1: 3,
    // lhotse_2412_153948_0000: 1 → 0 when a long utterance ended at its pause.
    // 0 → 1 with beams: "4 Queen of Clothes".
    psx_cards_002: 1,
    // psx_cards_004: 1 → 0 when the VAD's bursts showed "five" said twice ("five, five,").
    // psx_tidigits_2934z: 2 → 0 with beams.
  },
};

/** The clips whose budget differs with continuation off, as deployed (the measurement above). */
const WITHOUT_CONTINUATION: Partial<Record<Setting, Record<string, number>>> = {
  // "unless a system is established": 3, where continuation reads "the" (2).
  10: { sb_lj050_0131: 3 },
  300: { sb_lj050_0131: 3 },
};

/** Clips that still lose a run of 2+ consecutive words at a setting (should only ever shrink). */
const KNOWN_DELETION_RUNS: Record<Setting, string[]> = {
  10: [],
  300: [],
  500: [],
};

const dev = await manifest("dev");
const short = await manifest("short");
const speech = [
  ...dev.filter((r) => r.category === "speech").map((r) => ({ ...r, category: "dev" })),
  ...short.filter((r) => r.category === "speech").map((r) => ({ ...r, category: "short" })),
];
const noSpeechClips = dev.filter((r) => r.category !== "speech");

beforeAll(seedModels);

/** Forced alignment of a LibriVox dev clip (../shared/eval/dev/alignments). */
interface Alignment {
  w: { b: number; d: number; t: string }[];
}

/** The LibriVox clips with word alignments. */
const ALIGNED = ["psx_librivox_0870", "psx_librivox_0880", "psx_librivox_0890"];
/** Pauses put between phrases, seconds: the range of a person's pauses between turns. */
const PAUSE_RANGE = [0.3, 1.5] as const;
const RATE = 16_000;

/**
 * Short turns built from real speech: each aligned clip cut into phrases of 1–3 words at its
 * alignment boundaries (50 ms either side), joined with seeded pauses of digital silence in
 * PAUSE_RANGE. The reference is the clip's words in order.
 */
async function phrasesWithPauses(id: string, seed: number) {
  const audio = pcm16ToFloat((await wavFixture(`${id}.wav`)).pcm);
  const alignment = JSON.parse(
    new TextDecoder().decode(await fixture(`alignments/${id}.json`)),
  ) as Alignment;
  const words = alignment.w.filter((w) => !w.t.startsWith("<"));
  const random = seededRandom(seed);
  const parts: Float32Array[] = [];
  for (let i = 0; i < words.length; ) {
    const span = words.slice(i, i + 1 + Math.floor(random() * 3));
    i += span.length;
    const first = span[0];
    const last = span.at(-1);
    if (!first || !last) break;
    const from = Math.max(0, Math.round((first.b - 0.05) * RATE));
    const to = Math.min(audio.length, Math.round((last.b + last.d + 0.05) * RATE));
    const [low, high] = PAUSE_RANGE;
    parts.push(
      audio.slice(from, to),
      new Float32Array(Math.round((low + random() * (high - low)) * RATE)),
    );
  }
  const joined = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  const reference = words.map((w) => w.t.replace(/\(\d+\)$/, "")).join(" ");
  return { pcm: floatToPcm16(joined), reference };
}

/**
 * Errors allowed over the phrases-with-pauses streams (44 words) per setting: the measured ones
 * when the set was built (WER 0.50 / 0.43 / 0.43), with finals continuing the utterance before
 * them; decoded alone (EARSHOT_CONTINUATION=off) they were 26 / 30 / 20. 10: 22 → 18 with the
256-ms endpointing floor (alone: 26, unchanged). Far from the short turns'
 * 0.10: words cut out of fluent speech lose their transitions ("to consider" → "too consider"),
 * and Whisper tiny invents words around 1-word fragments ("It had", "The fourth"). A ratchet.
 * 10: 18 → 19 and 300: 19 → 20 when the VAD's minSpeech went 400 → 250 ms (vad-machine.ts), so
 * that short and quiet phrases reach Whisper: a 1-word fragment then becomes an utterance of its
 * own instead of joining the next phrase across the pause, and Whisper tiny, without context,
 * hears "ill" as "it." (0890: "to be the oldest post" → "to be it. All the sposed"); 0870's
 * deleted word came back at 10 and 300. The dev and short clips' errors did not move.
 * 500: 19 → 20 when greedy decodes of English kept to the English head (vocabulary-order.ts):
 * a log-probability over the head alone runs 0.00–0.05 higher (the rest's mass is not in its
 * sum), so a decision at a threshold can fall the other way on a fragment; 0870's "his power
 * did he? put up" became "… I do the fourth. For them." The dev and short clips' transcripts,
 * beam searches and fallbacks did not change at any setting.
 */
const PHRASE_ERRORS: Record<Setting, number> = CONTINUATION
  ? { 10: 19, 300: 20, 500: 20 }
  : { 10: 29, 300: 33, 500: 22 };

describe("accuracy through the session", () => {
  for (const setting of SETTINGS) {
    it(`endpointing=${setting}: WER per clip within its budget, no run of 2+ deleted words`, {
      timeout: 900_000,
    }, async () => {
      const scores: ClipScore[] = [];
      const counted = { ...decodeCounters };
      for (const row of speech) {
        const client = await streamClip(
          (await wavFixture(row.file)).pcm,
          `${Q}&endpointing=${setting}`,
        );
        scores.push(scoreClip(row.id, row.category, row.reference, finalText(client)));
      }
      console.log(report(`endpointing=${setting}`, scores));
      console.log(
        `temperature fallback at ${setting}: ${decodeCounters.fallbacks - counted.fallbacks} of ${decodeCounters.decodes - counted.decodes} decodes (${decodeCounters.improved - counted.improved} kept a sampled decode, ${decodeCounters.retries - counted.retries} retries); beams on ${decodeCounters.beams - counted.beams}`,
      );
      console.log(
        `errors at ${setting}: ${JSON.stringify(Object.fromEntries(scores.map((s) => [s.id, s.score.errors])))}`,
      );
      const runs = scores
        .filter((s) => deletionRuns(s.score.alignment).some((r) => r >= 2))
        .map((s) => s.id);
      console.log(`deletion runs at ${setting}: ${JSON.stringify(runs)}`);

      for (const s of scores) {
        const budget =
          (CONTINUATION ? undefined : WITHOUT_CONTINUATION[setting]?.[s.id]) ??
          ERROR_BUDGETS[setting][s.id] ??
          0;
        expect(s.score.errors, `${s.id} at endpointing=${setting}`).toBeLessThanOrEqual(budget);
      }
      for (const id of runs) expect(KNOWN_DELETION_RUNS[setting]).toContain(id);
      expect(totals(scores).errors).toBeLessThanOrEqual(MAX_ERRORS[setting]);
    });
  }

  for (const setting of SETTINGS) {
    it(`endpointing=${setting}: short phrases cut from real speech, joined with pauses`, {
      timeout: 300_000,
    }, async () => {
      const scores: ClipScore[] = [];
      for (const [i, id] of ALIGNED.entries()) {
        const { pcm, reference } = await phrasesWithPauses(id, i + 1);
        const client = await streamClip(pcm, `${Q}&endpointing=${setting}`);
        scores.push(scoreClip(`${id} phrases`, "phrases", reference, finalText(client)));
      }
      console.log(report(`phrases with pauses, endpointing=${setting}`, scores));
      expect(totals(scores).errors).toBeLessThanOrEqual(PHRASE_ERRORS[setting]);
    });
  }

  it("never loops on the multilingual clips (language=multi)", async () => {
    for (const row of await manifest("multilingual")) {
      const client = await streamClip(
        (await wavFixture(row.file)).pcm,
        `${Q}&endpointing=500&language=multi`,
      );
      const text = finalText(client);
      console.log(`${row.id} (multi): "${text}"`);
      const letters = text.toLowerCase().replace(/[^\p{L}\p{N}]/gu, "");
      // No block of 4+ letters twice in a row (the loop was "炸自己的脚臭" three times).
      expect(letters, row.id).not.toMatch(/(.{4,})\1/u);
    }
  });

  it("sends no words on the clips without speech", { timeout: 300_000 }, async () => {
    for (const setting of SETTINGS) {
      for (const row of noSpeechClips) {
        const client = await streamClip(
          (await wavFixture(row.file)).pcm,
          `${Q}&endpointing=${setting}&interim_results=true`,
        );
        expect(allWords(client), `${row.file} at ${setting}`).toEqual([]);
      }
    }
  });

  it("sends no words on generated noise and music", { timeout: 300_000 }, async () => {
    const sounds: [string, Float32Array][] = [
      ["white noise, loud", whiteNoise(5, 0.1, 1)],
      ["white noise, quiet", whiteNoise(5, 0.01, 2)],
      ["brown noise", brownNoise(5, 0.1, 3)],
      ["mains hum", hum(5, 0.05, 4)],
      ["plucked melody", melody(8, 0.1, 5)],
      ["plucked melody, other tune", melody(8, 0.2, 6)],
    ];
    for (const setting of SETTINGS) {
      for (const [name, samples] of sounds) {
        const client = await streamClip(floatToPcm16(samples), `${Q}&endpointing=${setting}`);
        expect(allWords(client), `${name} at ${setting}`).toEqual([]);
      }
    }
  });
});
