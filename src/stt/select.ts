/**
 * Which transcriber sessions use, from EARSHOT_TRANSCRIBER:
 * - "whisper" (the default): Whisper tiny, prepared models from the MODELS R2 bucket.
 * - "none": no speech recognition (VAD events only). The service never invents transcripts.
 * - "fake": the deterministic fingerprint transcriber, for tests at the protocol seam. It exists
 *   only in builds with EARSHOT_TEST_SEAMS defined true (`npm run dev`, the test suites); the
 *   deployed bundle defines it false (wrangler.toml [define]), so the bundler drops the fake and a
 *   production worker configured with "fake" refuses to start its sessions instead of answering
 *   with fingerprints.
 */
import { fakeTranscriber } from "./fake-transcriber";
import type { Transcriber, TranscriberSession } from "./transcriber";
import { type WhisperEnv, whisperTranscriber } from "./whisper-transcriber";

const NONE_SESSION: TranscriberSession = {
  feed: () => {},
  flush: async () => {},
  afterFinals: async () => {},
  close: () => {},
};

export const noTranscriber: Transcriber = {
  model: { name: "none", version: "0", arch: "none", uuid: "00000000-0000-4000-8000-000000000000" },
  open: () => NONE_SESSION,
};

/**
 * Build-time constant (wrangler.toml [define], `--define` in tools/dev/dev.ts, vitest.config.ts).
 */
declare const EARSHOT_TEST_SEAMS: boolean;

export type TranscriberKind = "whisper" | "none" | "fake";

export function selectTranscriber(kind: string | undefined, env: WhisperEnv): Transcriber {
  switch (kind ?? "whisper") {
    case "whisper":
      return whisperTranscriber(env);
    case "none":
      return noTranscriber;
    case "fake":
      if (EARSHOT_TEST_SEAMS) return fakeTranscriber;
      throw new Error(
        'EARSHOT_TRANSCRIBER "fake" is a test seam and is not in this build (EARSHOT_TEST_SEAMS ' +
          'is false, as deployed); use "whisper" or "none"',
      );
    default:
      throw new Error(`EARSHOT_TRANSCRIBER must be "whisper", "none" or "fake", got "${kind}"`);
  }
}
