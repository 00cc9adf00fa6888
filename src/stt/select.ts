/**
 * Which transcriber sessions use, from EARSHOT_TRANSCRIBER:
 * - "whisper" (the default): Whisper tiny, prepared models from the MODELS R2 bucket.
 * - "none": no speech recognition (VAD events only). The service never invents transcripts.
 * - "fake": the deterministic fingerprint transcriber, for tests at the protocol seam.
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

export type TranscriberKind = "whisper" | "none" | "fake";

export function selectTranscriber(kind: string | undefined, env: WhisperEnv): Transcriber {
  switch (kind ?? "whisper") {
    case "whisper":
      return whisperTranscriber(env);
    case "none":
      return noTranscriber;
    case "fake":
      return fakeTranscriber;
    default:
      throw new Error(`EARSHOT_TRANSCRIBER must be "whisper", "none" or "fake", got "${kind}"`);
  }
}
