/**
 * Turns of the event loop between the model runs of one transcription.
 *
 * ORT-web's wasm `run` settles its promise without giving the event loop a turn, so without them
 * a whole transcription (the encoder and every decoder run, 0.2–1 s) is one chain of microtasks:
 * the isolate's socket messages wait behind it, every session's VAD stops, and an abort raised by
 * what they carry (speech came back after the pause an early final started at; a final an interim
 * must make way for) lands only when the decode is over (src/stt/whisper/decoder-run.ts
 * `beforeRun` awaits the turn before checking the abort).
 */
import { sleep } from "./own-context.ts";

/**
 * A transcription gives the event loop a turn before its first two model runs (the encoder's, and
 * the prompt's after the encoder's ~50–250 ms) and then before every YIELD_EVERY_RUNS-th: a
 * zero-delay timer, the cheapest wait that lets socket messages in, costs ~1.15 ms in workerd
 * (1 000 in a row: 1 155 ms; a MessageChannel message costs 0.007 ms but lets no I/O in), against
 * a decoder step's ~14 ms. So an abort lands within 4 decoder steps (~60 ms), for ~2 % of a
 * decode's time.
 */
export const YIELD_EVERY_RUNS = 4;

/**
 * The turn-taking of one transcription (`yieldTurn`), in the session's own I/O context;
 * `onTurn` runs after each turn the event loop had.
 */
export function turns(onTurn?: () => void): () => Promise<void> {
  let runs = 0;
  return async () => {
    runs += 1;
    if (runs > 2 && runs % YIELD_EVERY_RUNS !== 0) return;
    await sleep(0);
    onTurn?.();
  };
}
