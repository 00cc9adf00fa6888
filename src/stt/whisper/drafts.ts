/**
 * The greedy loop's cache runs, with drafts (issue 11): tokens the decode expects to pick — an
 * interim's picks of the same utterance — verified as one batched run of the decoder's draft
 * path (decoder-run.ts `runDrafts`) instead of one run per token.
 *
 * Each of a draft run's k rows is, bit for bit, the logits the one-token step feeding that draft
 * would give, and its self-attention cache the cache those k steps would grow
 * (test/whisper-session-draft-rows.test.ts). The loop still picks every token from the row in
 * front of it by its own rules; a row is only used while every pick so far equalled the draft it
 * was run with. So when the loop picks the next expected draft it gets that draft's row instead
 * of a step; at the first pick that differs, the cache is cut back to the drafts accepted and
 * ordinary steps go on. The picks are therefore those of the decode without drafts, whatever the
 * drafts are: a wrong draft costs only its wasted row.
 *
 * Drafts stop at their first disagreement (no realignment): an interim decoded a prefix of the
 * final's audio, so what it can predict is the final's opening.
 */
import { Tensor } from "onnxruntime-web/wasm";
import { type DraftStats, NO_DRAFTS, type WhisperDecoder } from "./decode-types.ts";
import { D_MODEL } from "./decoder-feeds.ts";
import {
  beforeRun,
  type DraftRows,
  type RunControl,
  runDecoder,
  runDrafts,
  type Step,
} from "./decoder-run.ts";
import { TIMESTAMP_STEP_S, type WhisperTokenizer } from "./tokenizer.ts";
import type { VocabularyScope } from "./vocabulary-order.ts";

/**
 * Rows of one draft run at most. A row is projected only when the decode uses it, so a row past a
 * disagreement costs only its share of the ORT run, which grows with k: one run of 16 drafts cost
 * ~13 ms of ORT time against ~55–65 for 16 steps (docs/decoder-profile.md, step 1), 16 keeps most
 * of that gain. When all of a run's rows are accepted, the next run follows.
 */
export const MAX_DRAFT_ROWS = 16;

/**
 * Rows of a decode's first draft run; each following run (only ever after one whose rows were all
 * accepted) doubles, up to MAX_DRAFT_ROWS. A small first run was measured and does not pay
 * (tools/models/draft-timing.ts, Node, 4 clips × drafts from the clip less 1 and 2 s, arms
 * alternated, medians of 9, two runs): starting at 4 saved 5–9 ms of a ~165-ms decode where the
 * drafts disagree at their second token (sb_lj050_0131; once +6 in a noisy round), and cost
 * 1–11 ms (one or two runs more) wherever they run on (lhotse_2412_153948, wcpp_jfk,
 * psx_librivox_0870); 8 fell between. Through the service drafts mostly run on
 * (docs/decoder-profile.md, step 2: 158 of 242 rows accepted in 25 runs), so every run is
 * MAX_DRAFT_ROWS.
 */
export const FIRST_DRAFT_ROWS = MAX_DRAFT_ROWS;

/** `a` + `b`, field by field. */
export function addDraftStats(a: DraftStats, b: DraftStats): DraftStats {
  return {
    runs: a.runs + b.runs,
    rows: a.rows + b.rows,
    accepted: a.accepted + b.accepted,
    wasted: a.wasted + b.wasted,
  };
}

/** A session's finals' drafts, summed for its end log. */
export class DraftTally {
  /**
   * Final decodes, those given drafts, and the drafts' use summed over them; and of those, the
   * decodes that continued the utterance before (their drafts moved onto the window) and the
   * drafts they accepted.
   */
  readonly counts = { decodes: 0, withDrafts: 0, ...NO_DRAFTS, continued: 0, continuedAccepted: 0 };

  add(stats: DraftStats, given: boolean, continued: boolean): void {
    const { counts } = this;
    counts.decodes += 1;
    if (!given) return;
    counts.withDrafts += 1;
    Object.assign(counts, addDraftStats(counts, stats));
    if (continued) {
      counts.continued += 1;
      counts.continuedAccepted += stats.accepted;
    }
  }
}

/**
 * An interim's tokens (text and timestamps, timed from the utterance's start) as drafts of a
 * decode whose window opens with `offsetSeconds` of other audio (a continuation, continuation.ts):
 * the timestamps move `offsetSeconds` later, and the opening timestamp goes, since a continued
 * decode's forced tokens end with the timestamp that opens the utterance. Other ids are dropped.
 * With no offset: the text and timestamp tokens as they are.
 */
export function draftsOnWindow(
  tokens: readonly number[],
  offsetSeconds: number,
  tokenizer: WhisperTokenizer,
): number[] {
  const kept = tokens.filter((id) => tokenizer.isText(id) || tokenizer.isTimestamp(id));
  if (offsetSeconds === 0) return kept;
  const shift = Math.round(offsetSeconds / TIMESTAMP_STEP_S);
  const { timestampEnd } = tokenizer.special;
  const shifted = kept.map((id) =>
    tokenizer.isTimestamp(id) ? Math.min(timestampEnd, id + shift) : id,
  );
  const opening = shifted.findIndex((id) => !tokenizer.isTimestamp(id));
  return opening < 0 ? [] : shifted.slice(opening);
}

/** The current draft run and how many of its rows were used. */
interface DraftRun {
  rows: DraftRows;
  /** Self-attention positions of the cache the run started from. */
  base: number;
  /** Its rows used so far (the next one is `rows.row(used)`). */
  used: number;
}

/**
 * The cache runs after the prompt of one greedy decode: `next` feeds a picked token and returns
 * the step that follows, from a draft row when the token was the expected draft, else from an
 * ordinary one-token run (on the cache cut back to the accepted drafts).
 */
export class GreedySteps {
  /** Decoder runs made: steps and draft runs. */
  runs = 0;
  readonly #stats = { runs: 0, rows: 0, accepted: 0 };
  readonly #drafts: readonly number[];
  /** Index in `#drafts` of the draft expected next; past the end when drafts are over. */
  #next = 0;
  #run: DraftRun | null = null;
  /** Rows of the next draft run (before the token cap): FIRST_DRAFT_ROWS, doubling. */
  #runRows: number;
  /** The one-row stand-in for the encoder states a cache run gets (decoder-run.ts says why). */
  readonly #stateRows = new Tensor("float32", new Float32Array(D_MODEL), [1, 1, D_MODEL]);
  readonly #model: WhisperDecoder;
  readonly #scope: VocabularyScope;
  readonly #control: RunControl;

  constructor(
    model: WhisperDecoder,
    scope: VocabularyScope,
    control: RunControl,
    /** Tokens the decode is expected to pick, in order; empty: none, every token a step. */
    drafts: readonly number[],
    /** Rows of the first draft run (FIRST_DRAFT_ROWS unless a measurement sets it). */
    firstRunRows = FIRST_DRAFT_ROWS,
  ) {
    if (!(Number.isInteger(firstRunRows) && firstRunRows >= 1)) {
      throw new RangeError(`a first draft run of ${firstRunRows} rows`);
    }
    this.#runRows = Math.min(MAX_DRAFT_ROWS, firstRunRows);
    this.#model = model;
    this.#scope = scope;
    this.#control = control;
    this.#drafts = model.takesDrafts === true ? drafts : [];
  }

  get stats(): DraftStats {
    const { runs, rows, accepted } = this.#stats;
    return { runs, rows, accepted, wasted: rows - accepted };
  }

  /**
   * The step after feeding `id`, the pick just made after `step`. `room`: picks this decode may
   * still make after `id` (a draft run never computes rows past the token cap).
   */
  async next(id: number, step: Step, room: number): Promise<Step> {
    let cache = step.cache;
    if (this.#next < this.#drafts.length) {
      if (id === this.#drafts[this.#next]) {
        this.#next += 1;
        return this.#run && this.#run.used < this.#run.rows.count
          ? this.#accept(this.#run)
          : this.#accept(await this.#startRun(cache, room));
      }
      // The first disagreement ends the drafts: the cache keeps only the accepted rows' positions.
      this.#next = this.#drafts.length;
      if (this.#run) cache = { ...cache, self: cutSelf(this.#run, cache.self) };
    }
    this.#run = null;
    await beforeRun(this.#control);
    this.runs += 1;
    return runDecoder(this.#model, [id], this.#stateRows, cache, [0], this.#scope);
  }

  /**
   * A draft run of the expected drafts from the one just picked (`#next − 1`) on. Called for a
   * decode's first run and after a run whose rows were all accepted: each is twice the last.
   */
  async #startRun(cache: Step["cache"], room: number): Promise<DraftRun> {
    const from = this.#next - 1;
    const ids = this.#drafts.slice(from, from + Math.max(1, Math.min(this.#runRows, room)));
    this.#runRows = Math.min(MAX_DRAFT_ROWS, this.#runRows * 2);
    await beforeRun(this.#control);
    const rows = await runDrafts(this.#model, ids, cache, this.#scope);
    this.runs += 1;
    this.#stats.runs += 1;
    this.#stats.rows += ids.length;
    this.#run = { rows, base: positions(cache.self), used: 0 };
    return this.#run;
  }

  /** The run's next row, projected now, as the step after the draft just picked. */
  #accept(run: DraftRun): Step {
    if (run.used >= run.rows.count) throw new Error("draft run has no row left");
    const row = run.rows.row(run.used);
    run.used += 1;
    this.#stats.accepted += 1;
    return { rows: [row], cache: run.rows.cache };
  }
}

/** Self-attention positions a cache holds (axis 2 of its [1, heads, positions, head_dim]). */
function positions(self: Step["cache"]["self"]): number {
  const first = Object.values(self)[0];
  return first?.dims[2] ?? 0;
}

/**
 * `self` (a draft run's grown cache) cut back to the run's base plus the rows it used: the
 * positions of the drafts not accepted go, as if they had never been fed.
 */
function cutSelf(run: DraftRun, self: Step["cache"]["self"]): Step["cache"]["self"] {
  const keep = run.base + run.used;
  const out: Step["cache"]["self"] = {};
  for (const [name, tensor] of Object.entries(self)) {
    const [batch, heads, length, width] = tensor.dims;
    if (batch !== 1 || heads === undefined || length === undefined || width === undefined) {
      throw new Error(`self-attention cache ${name} has unexpected shape ${tensor.dims}`);
    }
    if (!(tensor.data instanceof Float32Array)) throw new Error(`${name} is not float32`);
    if (keep === length) {
      out[name] = tensor;
      continue;
    }
    const data = new Float32Array(heads * keep * width);
    for (let h = 0; h < heads; h++) {
      const from = h * length * width;
      data.set(tensor.data.subarray(from, from + keep * width), h * keep * width);
    }
    out[name] = new Tensor("float32", data, [1, heads, keep, width]);
  }
  return out;
}
