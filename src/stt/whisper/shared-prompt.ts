/**
 * The prompt run of one encoded window, shared by the window's decodes (the greedy one, its
 * beams, the fallback's retries: transcribe.ts makes one per window).
 */
import type { Tensor } from "onnxruntime-web/wasm";
import type { WhisperDecoder } from "./decode-types.ts";
import { runDecoder, type Step } from "./decoder-run.ts";

/**
 * The same tokens over the same encoder states give the same logits and cache, so the prompt runs
 * once; a later decode of the window skips a run of ~30–40 ms. Each caller gets its own copy of
 * the logits rows (the logit rules edit them in place); the cache's tensors are only ever read
 * (fed to later runs).
 */
export class SharedPrompt {
  #ids: readonly number[] = [];
  #positions: readonly number[] = [];
  #encoderStates: Tensor | null = null;
  #step: Step | null = null;

  /**
   * The prompt's step, from the run before when it had the same ids, positions and encoder
   * states (`ran` false), else from `runDecoder` (`ran` true).
   */
  async run(
    model: WhisperDecoder,
    ids: readonly number[],
    encoderStates: Tensor,
    positions: readonly number[],
  ): Promise<{ step: Step; ran: boolean }> {
    const same =
      this.#step !== null &&
      this.#encoderStates === encoderStates &&
      sameNumbers(this.#ids, ids) &&
      sameNumbers(this.#positions, positions);
    const ran = !same;
    if (ran) {
      // Callers get copies of its rows, below: this one is never edited.
      this.#step = await runDecoder(model, ids, encoderStates, undefined, positions);
      this.#ids = [...ids];
      this.#positions = [...positions];
      this.#encoderStates = encoderStates;
    }
    const kept = this.#step as Step;
    return { step: { rows: kept.rows.map((row) => row.slice()), cache: kept.cache }, ran };
  }
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}
