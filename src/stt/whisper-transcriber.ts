/**
 * Whisper behind the Transcriber seam. Shared per isolate: the prepared models (loaded from R2 once,
 * src/stt/model-store.ts) and the inference scheduler, both here. Per session: a WhisperSession
 * (whisper-session.ts, which says how finals, interims, the stable prefix and early finals work).
 */
import { IsolateOnce } from "../runtime/own-context";
import { beamSizeVar } from "./beam-size";
import { InferenceScheduler } from "./inference-scheduler";
import { loadWhisper } from "./model-store";
import type { ModelInfo, Transcriber } from "./transcriber";
import { createWhisperModel, type WhisperModel } from "./whisper/model";
import { WhisperSession } from "./whisper-session";

const manifestModel: ModelInfo = {
  name: "whisper-tiny",
  version: "xenova-5332fcc-int8x2T",
  arch: "whisper",
  // Deepgram's model_uuid: fixed per prepared model set.
  uuid: "9a1c6f3e-5d2b-4e7a-9c31-7f0e2a6b8d45",
};

/** The isolate's models; sessions that arrive during the load await its end (own-context.ts). */
const model = new IsolateOnce<WhisperModel>();

/** The isolate's models, loading them on first use (exported for tests that decode directly). */
export function whisperModel(bucket: R2Bucket): Promise<WhisperModel> {
  // A failed load is forgotten: the next session retries it.
  return model.get(async () =>
    createWhisperModel({ ...(await loadWhisper(bucket)), variableLength: true }),
  );
}

/** The isolate's one scheduler: every session of the isolate queues its inferences here. */
export const isolateScheduler = new InferenceScheduler();

export interface WhisperEnv {
  MODELS: R2Bucket;
  /**
   * "off" turns early finals off (whisper-session.ts, "Early finals"); anything else leaves them
   * on.
   */
  EARSHOT_EARLY_FINALS?: string;
  /** Beams for finals of short utterances: `beamSizeVar`. */
  EARSHOT_BEAM_SIZE?: string;
  /**
   * "on" lets a short utterance's final continue the one before it (whisper-session.ts,
   * "Continuation"); anything else decodes every final alone.
   */
  EARSHOT_CONTINUATION?: string;
}

export function whisperTranscriber(env: WhisperEnv): Transcriber {
  const load = () => whisperModel(env.MODELS);
  return {
    model: manifestModel,
    prepare: async () => {
      await load();
    },
    open: (context) =>
      new WhisperSession(
        context,
        load,
        isolateScheduler,
        env.EARSHOT_EARLY_FINALS !== "off",
        beamSizeVar(env.EARSHOT_BEAM_SIZE),
        env.EARSHOT_CONTINUATION === "on",
      ),
  };
}
