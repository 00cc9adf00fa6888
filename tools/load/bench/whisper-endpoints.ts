/**
 * Where the server's utterances end, replayed in Node: the same Silero v5 model (onnxruntime-web,
 * tools/load/bench/vad-node.ts; it matches workerd's probabilities to ~1e-7, see the vad section)
 * over the same 16 kHz stream the session received, through the same state machine
 * (src/vad/vad-machine.ts) with the session's default endpointing (DEFAULT_ENDPOINTING_MS), from
 * the same primed state (silence first, as src/vad/silero.ts primes every session). Each endpoint
 * gives
 * - `decidedAtSample`: the end of the frame whose silence completed the endpointing window, i.e.
 *   the end of the audio the final covers (the server feeds that frame to the utterance too);
 * - `speechEndSample`: the end of the utterance's last speech frame (probability ≥ 0.5).
 * The bench matches them to the finals it received by where a final ends: at `decidedAtSample`, or
 * earlier, from the last speech frame on, when the final came from the decode the server started
 * at the first silence (an early final). A replay that diverged from the server is detected, not
 * trusted.
 */
import { DEFAULT_ENDPOINTING_MS } from "../../../src/protocol/option-schema.ts";
import {
  DEFAULT_VAD_OPTIONS,
  VAD_PRIMING_FRAMES,
  VadMachine,
} from "../../../src/vad/vad-machine.ts";
import { loadNodeModel, nodeRound, VAD_FRAME_SAMPLES } from "./vad-node.ts";

export interface Endpoint {
  /** Exclusive end of the last speech frame, samples. */
  speechEndSample: number;
  /** End of the frame at which the endpointing silence was complete, samples. */
  decidedAtSample: number;
}

/**
 * Endpoints of each stream (16 kHz mono floats, each from the start of its own session), with the
 * session's default options or another silence run (`endpointing=300`; or a client's own VAD that
 * stops 200 ms after speech).
 */
export async function replayEndpoints(
  root: string,
  streams: Float32Array[],
  minSilenceMs: number = DEFAULT_ENDPOINTING_MS,
): Promise<Endpoint[][]> {
  const model = await loadNodeModel(root);
  const clips = streams.map((samples, i) => ({ file: `stream ${i}`, samples }));
  const layout = clips.map(() => []);
  const { row } = await nodeRound(model, clips, layout, false, VAD_PRIMING_FRAMES);
  return row.map((run) => {
    const machine = new VadMachine({ ...DEFAULT_VAD_OPTIONS, minSilenceMs });
    const endpoints: Endpoint[] = [];
    for (const [frame, probability] of run.probabilities.entries()) {
      for (const event of machine.push(probability)) {
        if (event.type !== "speech-end" || event.forced) continue;
        endpoints.push({
          speechEndSample: event.endFrame * VAD_FRAME_SAMPLES,
          decidedAtSample: (frame + 1) * VAD_FRAME_SAMPLES,
        });
      }
    }
    return endpoints;
  });
}
