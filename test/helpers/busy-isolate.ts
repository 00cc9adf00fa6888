/**
 * Makes the isolate busy the way a long Whisper inference of another session does: holds the
 * isolate's one inference lock (src/runtime/inference-lock.ts), so every session's VAD and
 * transcription wait and its serial queue fills with whatever its client sends. Deterministic,
 * unlike waiting for a real transcription to be slow enough. The test and the session objects
 * share the isolate (and so the lock) in the vitest pool.
 */
import { runExclusive } from "../../src/runtime/inference-lock";

/** Takes the lock (waiting for it if an inference runs); resolves once held, with `release`. */
export async function holdInferenceLock(): Promise<{ release(): Promise<void> }> {
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let acquired = () => {};
  const acquiredOnce = new Promise<void>((resolve) => {
    acquired = resolve;
  });
  const done = runExclusive(async () => {
    acquired();
    await held;
  });
  await acquiredOnce;
  return {
    async release() {
      release();
      await done;
    },
  };
}
