/**
 * The English head of Whisper's vocabulary and the column order the prepared decoder works in
 * (src/stt/whisper/vocabulary-order.ts). The decoder's side, bit-identical logits per id, is in
 * graph-rewrite.test.ts; what the head does to accuracy is measured by the accuracy suite.
 */
import { describe, expect, it } from "vitest";
import { ort } from "../src/runtime/ort";
import type { WhisperDecoder } from "../src/stt/whisper/decode-types";
import { runDecoder } from "../src/stt/whisper/decoder-run";
import { type AddedTokens, type Vocab, WhisperTokenizer } from "../src/stt/whisper/tokenizer";
import {
  englishHeadIds,
  englishOrder,
  keepHead,
  logitsById,
  scopeFor,
  toColumns,
  vocabularyOrder,
} from "../src/stt/whisper/vocabulary-order";
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

  it("gives logits in id order, −Infinity for what was not projected", () => {
    const head = Float32Array.of(10, 40, 60);
    const tail = Float32Array.of(0, 20, 30, 50, 70);
    expect([...logitsById(order, head, tail)]).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
    const headOnly = [...logitsById(order, head, undefined)];
    expect(headOnly).toEqual([-Infinity, 10, -Infinity, -Infinity, 40, -Infinity, 60, -Infinity]);
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

  it("feeds ids as columns and refuses an id outside the vocabulary", () => {
    expect(toColumns(order, [0, 4, 7])).toEqual([3, 1, 7]);
    expect(() => toColumns(order, [8])).toThrow(RangeError);
    expect(() => toColumns(order, [-1])).toThrow(RangeError);
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

/** The int64 values of feed `name` of run `run`. */
function fed(seen: Record<string, ort.Tensor>[], run: number, name: string): BigInt64Array {
  const data = seen[run]?.[name]?.data;
  if (!(data instanceof BigInt64Array)) throw new Error(`run ${run} was not fed int64 ${name}`);
  return data;
}

describe("decoder runs with a vocabulary head", () => {
  const VOCAB = 8;
  const order = vocabularyOrder([1, 4, 6], VOCAB);
  /** A stand-in decoder session: records feeds, returns logits whose value is 100 + column. */
  function fakeModel(seen: Record<string, ort.Tensor>[]): WhisperDecoder {
    const decoder = {
      inputNames: ["input_ids", "tail_rows"],
      outputNames: [],
      run: async (feeds: Record<string, ort.Tensor>) => {
        seen.push(feeds);
        const tailRows = fed([feeds], 0, "tail_rows").length;
        const rows = tailRows === 0 ? 0 : 1;
        const width = VOCAB - order.headSize;
        const out: Record<string, ort.Tensor> = {
          logits: new ort.Tensor("float32", Float32Array.of(100, 101, 102), [1, 1, 3]),
          logits_tail: new ort.Tensor(
            "float32",
            Float32Array.from({ length: rows * width }, (_, c) => 103 + c),
            [1, rows, width],
          ),
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
      order,
    };
  }

  it("feeds columns, projects the tail only when asked, and returns logits by id", async () => {
    const seen: Record<string, ort.Tensor>[] = [];
    const model = fakeModel(seen);
    const states = new ort.Tensor("float32", new Float32Array(384), [1, 1, 384]);
    const cache = { self: {}, cross: {} };
    const head = await runDecoder(model, [4], states, cache, [0], "head");
    const all = await runDecoder(model, [7], states, cache, [0], "all");
    // Id 4 is column 1, id 7 column 7.
    expect([...fed(seen, 0, "input_ids")]).toEqual([1n]);
    expect([...fed(seen, 1, "input_ids")]).toEqual([7n]);
    expect(fed(seen, 0, "tail_rows")).toHaveLength(0);
    expect([...fed(seen, 1, "tail_rows")]).toEqual([0n, 1n]);
    // Column c's logit is 100 + c, put back at id order.ids[c].
    expect([...(head.rows[0] ?? [])]).toEqual([
      -Infinity,
      100,
      -Infinity,
      -Infinity,
      101,
      -Infinity,
      102,
      -Infinity,
    ]);
    expect([...(all.rows[0] ?? [])]).toEqual([103, 100, 104, 105, 101, 106, 102, 107]);
  });
});
