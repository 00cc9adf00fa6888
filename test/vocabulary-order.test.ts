/**
 * The English head of Whisper's vocabulary and the order the prepared table's rows are in
 * (src/stt/whisper/vocabulary-order.ts), and decoder runs through it (decoder-run.ts with the
 * projection of projection.ts). The projection's own exactness is in projection.test.ts; what
 * the head does to accuracy is measured by the accuracy suite.
 */
import { describe, expect, it } from "vitest";
import { ort } from "../src/runtime/ort";
import type { WhisperDecoder } from "../src/stt/whisper/decode-types";
import { runDecoder } from "../src/stt/whisper/decoder-run";
import { VocabularyProjection } from "../src/stt/whisper/projection";
import projectionKernel from "../src/stt/whisper/projection.wasm";
import { type AddedTokens, type Vocab, WhisperTokenizer } from "../src/stt/whisper/tokenizer";
import { encodeTableHeader } from "../src/stt/whisper/vocab-table";
import {
  englishHeadIds,
  englishOrder,
  keepHead,
  scopeFor,
  vocabularyOrder,
} from "../src/stt/whisper/vocabulary-order";
import { referenceLogits } from "./helpers/projection-reference";
import { whisperJson } from "./helpers/whisper-files";

describe("the English head", () => {
  it("holds every printable-ASCII token, every byte and every special token, and nothing else", async () => {
    const vocab = await whisperJson<Vocab>("vocab.json");
    const tokenizer = new WhisperTokenizer(
      vocab,
      await whisperJson<AddedTokens>("added_tokens.json"),
    );
    const ids = englishHeadIds(vocab, tokenizer);
    expect(ids.every((id, i) => i === 0 || id > (ids[i - 1] as number))).toBe(true);
    const head = new Set(ids);
    // <|endoftext|> onwards: task, language, no-speech and the 1501 timestamp tokens.
    for (let id = tokenizer.special.endOfText; id < tokenizer.vocabSize; id++) {
      expect(head.has(id), `special ${id}`).toBe(true);
    }
    // Single bytes: any text stays writable, a foreign letter byte by byte.
    for (let id = 0; id < 256; id++) expect(head.has(id)).toBe(true);
    // English as transcripts write it, words no dictionary lists included.
    const text =
      " Yes. Five five. My number is 415-555-0132, call me at 9:30 on Dec. 5th! NASA's " +
      'well-known rover; "Hello," she said, (and then) 100% sure. Mr. Dashwood\'s leisure. ' +
      "Anyways, Covid APIs on Kubernetes, ahh, the Centre's DIY guide.";
    for (const id of tokenizer.encode(text)) {
      expect(head.has(id), tokenizer.decode([id])).toBe(true);
    }
    // Every other token is one with a byte outside printable ASCII: other scripts, accents.
    const utf8 = new TextDecoder();
    for (let id = 256; id < tokenizer.special.endOfText; id++) {
      const printable = /^[\x20-\x7e]+$/.test(utf8.decode(tokenizer.tokenBytes(id)));
      if (printable !== head.has(id)) throw new Error(`token ${id} is misplaced`);
    }
    expect(tokenizer.encode(" 你好，世界。Привет").some((id) => !head.has(id))).toBe(true);
    // About three quarters of the table: the rest is what an English cache step skips.
    expect(ids.length / tokenizer.vocabSize).toBeGreaterThan(0.7);
    expect(ids.length / tokenizer.vocabSize).toBeLessThan(0.8);
    expect(englishOrder(vocab, tokenizer).headSize).toBe(ids.length);
  });
});

describe("vocabulary order", () => {
  const order = vocabularyOrder([1, 4, 6], 8);

  it("puts the head's ids first, the rest after, each ascending, and maps back", () => {
    expect([...order.ids]).toEqual([1, 4, 6, 0, 2, 3, 5, 7]);
    for (let id = 0; id < 8; id++) expect(order.ids[order.columns[id] as number]).toBe(id);
    expect(order.headSize).toBe(3);
  });

  it("keeps a whole row to the head, and English decodes only to it", () => {
    const row = Float32Array.of(0, 10, 20, 30, 40, 50, 60, 70);
    keepHead(order, row);
    expect([...row]).toEqual([-Infinity, 10, -Infinity, -Infinity, 40, -Infinity, 60, -Infinity]);
    expect(scopeFor(order, "en")).toBe("head");
    expect(scopeFor(order, "fr")).toBe("all");
    expect(scopeFor(order, "multi")).toBe("all");
    expect(scopeFor(undefined, "en")).toBe("all");
  });

  it("keeps to the head only where every keyterm token is in it", () => {
    expect(scopeFor(order, "en", [[1, 4], [6]])).toBe("head");
    // A keyterm spelled with a token outside the head could never be picked from the head.
    expect(
      scopeFor(order, "en", [
        [1, 4],
        [6, 5],
      ]),
    ).toBe("all");
  });
});

describe("decoder runs with the table outside", () => {
  const VOCAB = 8;
  const WIDTH = 384;
  const order = vocabularyOrder([1, 4, 6], VOCAB);
  /** The table by id: row v holds bytes 16·v + k mod 256. */
  const byId = Uint8Array.from(
    { length: VOCAB * WIDTH },
    (_, i) => (16 * Math.floor(i / WIDTH) + i) % 256,
  );
  const file = new Uint8Array(24 + VOCAB * WIDTH);
  file.set(encodeTableHeader({ vocabulary: VOCAB, width: WIDTH, headSize: 3, zeroPoint: 127 }));
  order.ids.forEach((id, row) => {
    file.set(byId.subarray(id * WIDTH, (id + 1) * WIDTH), 24 + row * WIDTH);
  });
  const projection = new VocabularyProjection(projectionKernel, file);
  /** What the stand-in decoder returns: one token's two quantized rows. */
  const quantized = {
    rows: Uint8Array.from({ length: 2 * WIDTH }, (_, i) => (i * 7) % 256),
    batch: 1,
    perBatch: 1,
    zeros: Uint8Array.of(120, 3),
    scales: Float32Array.of(0.01, 0.0002),
  };

  /** A stand-in decoder session: records feeds, returns `quantized`. */
  function fakeModel(seen: Record<string, ort.Tensor>[]): WhisperDecoder {
    const decoder = {
      inputNames: ["input_ids", "token_rows"],
      outputNames: [],
      run: async (feeds: Record<string, ort.Tensor>) => {
        seen.push(feeds);
        const out: Record<string, ort.Tensor> = {
          logit_rows: new ort.Tensor("uint8", quantized.rows, [1, 2, WIDTH]),
          logit_zeros: new ort.Tensor("uint8", quantized.zeros, [2]),
          logit_scales: new ort.Tensor("float32", quantized.scales, [2]),
        };
        for (let layer = 0; layer < 4; layer++) {
          for (const kind of ["key", "value"]) {
            out[`present.${layer}.decoder.${kind}`] = new ort.Tensor("float32", [0], [1]);
          }
        }
        return out;
      },
    };
    return {
      decoder: decoder as unknown as WhisperDecoder["decoder"],
      tokenizer: { vocabSize: VOCAB } as unknown as WhisperTokenizer,
      rules: {} as WhisperDecoder["rules"],
      external: { order, projection },
    };
  }

  it("feeds each token's table row, and projects the head or every id as asked, by id", async () => {
    const seen: Record<string, ort.Tensor>[] = [];
    const model = fakeModel(seen);
    const states = new ort.Tensor("float32", new Float32Array(WIDTH), [1, 1, WIDTH]);
    const cache = { self: {}, cross: {} };
    const head = await runDecoder(model, [5], states, cache, [0], "head");
    const all = await runDecoder(model, [7], states, cache, [0], "all");
    expect(seen[0]?.token_rows?.data).toEqual(byId.subarray(5 * WIDTH, 6 * WIDTH));
    expect(seen[1]?.token_rows?.data).toEqual(byId.subarray(7 * WIDTH, 8 * WIDTH));
    expect([...(seen[1]?.input_ids?.data ?? [])]).toEqual([7n]);
    const [expected] = referenceLogits(byId, 127, WIDTH, quantized);
    expect(all.rows[0]).toEqual(expected);
    expect([...(head.rows[0] ?? [])]).toEqual(
      [...(expected ?? [])].map((v, id) => ([1, 4, 6].includes(id) ? v : -Infinity)),
    );
  });
});
