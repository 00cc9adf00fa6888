/**
 * One session's Whisper transcription: the utterance in progress, its interims, its finals in
 * order (one per utterance the pipeline ends); the models and scheduler are the isolate's.
 *
 * Interims (interim_results=true) are interims.ts's: the growing utterance re-transcribed as it
 * grows, stopped when the utterance's final is asked for.
 *
 * Early finals (on unless EARSHOT_EARLY_FINALS=off; wrangler.toml says why): at the first silence
 * after speech (`speculate`) the utterance so far is submitted as its final at once, while the
 * endpointing wait or the client's Finalize is still to come. If
 * only silence follows until the flush, that decode is the final, and the final covers exactly the
 * audio it decoded (the silence fed after it is left out), so it is what a fresh decode of the
 * final's audio gives; if anything else follows (`dropSpeculation`), it is aborted — out of the
 * queue if it still waits, stopped at its next turn (below) if it runs — counted as wasted,
 * and the flush transcribes the whole utterance as usual. An early final with no words (empty, or
 * dropped as no speech) is not trusted either: the flush decodes the whole utterance, silence
 * after it included, as without early finals (counted as redone). Cut at the first silence, a short
 * quiet phrase can score as no speech where the same phrase with the silence after it does not
 * (JFK's "ask not" at 4 of 9 stream starts, test/whisper-session-stream-start.test.ts).
 * When speech comes back after a long utterance's pause, the pipeline may keep the early final
 * instead (`endAtPause`, src/session/early-finals.ts says when): it is the final of the audio it
 * decoded, and what was fed after the pause starts the next utterance.
 *
 * A transcription gives the event loop turns between its model runs (runtime/turns.ts), so the
 * isolate's sessions go on reading audio while it decodes and the aborts above land within a few
 * runs.
 *
 * Continuation (with EARSHOT_CONTINUATION=on; not with language=multi): a short utterance's
 * final may continue this session's previous final, never another session's (continuation.ts).
 */
import { percentile } from "../runtime/percentile";
import { turns } from "../runtime/turns";
import { VAD_FRAME_SAMPLES } from "../vad/silero";
import { DEFAULT_BEAM_SIZE } from "./beam-size";
import type { InferenceScheduler, JobOutcome } from "./inference-scheduler";
import { Interims } from "./interims";
import {
  type FlushReason,
  TRANSCRIBER_SAMPLE_RATE,
  type TranscriberContext,
  type TranscriberSession,
} from "./transcriber";
import { type PauseCut, UtteranceAudio } from "./utterance-audio";
import { type Continuation, SessionContinuation } from "./whisper/continuation";
import { keytermBias, type TokenBias } from "./whisper/keyterm-bias";
import type { WhisperModel } from "./whisper/model";
import type { VadEvidence } from "./whisper/speech-evidence";
import { transcribe } from "./whisper/transcribe";
import { empty, noText, toTranscript, type WhisperResult } from "./whisper-result";

/**
 * Finals of one session in flight (flushed, not yet emitted) before `ready` makes its pipeline
 * wait: 2, one decoding and one waiting, so the isolate always has this session's next final at
 * hand; with the utterance's early final that keeps a session under the scheduler's
 * MAX_PENDING_FINALS_PER_SESSION (4), which only a session that stopped waiting would reach.
 */
export const FINALS_AHEAD = 2;

interface Speculation {
  job: Promise<JobOutcome<WhisperResult>>;
  /** Aborted when speech makes it useless: it leaves the queue, or stops at its next turn. */
  abort: AbortController;
  /** Samples of the utterance it decodes: a prefix of the utterance's audio. */
  samples: number;
  /** Makes it due: it may stop other sessions' running interims (inference-scheduler.ts). */
  due: () => void;
}

export class WhisperSession implements TranscriberSession {
  readonly #utterance = new UtteranceAudio();
  /** Bumped at every flush (continuation.ts tells utterances apart by it). */
  #utteranceNumber = 0;
  readonly #interims: Interims;
  /** Finals of this session, in order. */
  #finals: Promise<void> = Promise.resolve();
  /** The current utterance's early final, while only silence has followed it. */
  #speculation: Speculation | null = null;
  /**
   * Early finals started, used as finals, thrown away because speech followed, used but
   * decoded again whole because they had no text; and long utterances ended at a pause
   * (`endAtPause`).
   */
  readonly #speculations = { started: 0, used: 0, wasted: 0, redone: 0, splits: 0 };
  /** Finals flushed and not yet emitted (or failed). */
  #unfinished = 0;
  /** This session's keyterms as token sequences to favour, encoded once the tokenizer exists. */
  #bias: TokenBias | undefined;
  /** This session's last final with text, which its next utterance may continue. */
  readonly #continuation: SessionContinuation;

  constructor(
    private readonly context: TranscriberContext,
    private readonly loadModel: () => Promise<WhisperModel>,
    private readonly scheduler: InferenceScheduler,
    private readonly earlyFinals: boolean,
    /** Beams for finals (EARSHOT_BEAM_SIZE, `beamSizeVar`); interims always decode greedily. */
    private readonly beamSize: number = DEFAULT_BEAM_SIZE,
    /** Finals may continue the utterance before them (EARSHOT_CONTINUATION; see the header). */
    continuation = true,
  ) {
    this.#continuation = new SessionContinuation(continuation);
    this.#interims = new Interims(context, scheduler, (audio, vad, job) =>
      this.#transcribe(audio, "interim", vad, job),
    );
  }

  feed(samples: Float32Array, startSample: number, speechProbability?: number): void {
    const utterance = this.#utterance;
    const start = utterance.feed(samples, startSample, speechProbability);
    if (this.context.interimResults && this.#interims.due(samples.length, utterance.samples)) {
      this.#interims.take(start, utterance.audio(), utterance.evidence());
    }
  }

  get endsAtPauses(): boolean {
    return this.earlyFinals;
  }

  speculate(): void {
    const start = this.#utterance.start;
    if (!this.earlyFinals || start === null || this.#utterance.samples === 0) return;
    this.dropSpeculation();
    this.#interims.stop();
    const audio = this.#utterance.audio();
    const final = { utterance: this.#utteranceNumber, start };
    const vad = this.#utterance.evidence(); // now: the job may start after more frames, or a flush
    const abort = new AbortController();
    let due = false;
    const job = this.scheduler.submit(
      this.context.sessionId,
      "final",
      (progress) =>
        this.#transcribe(audio, "final", vad, { signal: abort.signal, final, onTurn: progress }),
      abort.signal,
      () => due,
    );
    // Observed here: an early final that is never used must not be an unhandled rejection. A used
    // one's failure also ends the session (through the final); a dropped one's is said here.
    job.catch((error: unknown) => {
      if (!abort.signal.aborted) this.context.log.warn("early final failed", { error });
    });
    this.#speculation = { job, abort, samples: audio.length, due: () => (due = true) };
    this.#speculations.started += 1;
  }

  speculationDue(): void {
    this.#speculation?.due();
  }

  dropSpeculation(): void {
    if (this.#speculation === null) return;
    // Out of the queue if it is still waiting; if it runs, it stops before its next decoder step.
    this.#speculation.abort.abort();
    this.#speculation = null;
    this.#speculations.wasted += 1;
  }

  flush(reason: FlushReason, atSample: number): Promise<void> {
    return this.#end(reason, atSample, null);
  }

  /**
   * Speech came back after a long utterance's pause: the utterance ends there (frame `end`), and
   * what was fed from frame `rest` on starts the next utterance. Its early final, held since the
   * pause, is its final when it decoded exactly those frames; otherwise the final decodes them.
   * Part of early finals: with them off (EARSHOT_EARLY_FINALS=off) an utterance ends only at its
   * end, its length cap, or a Finalize.
   */
  endAtPause(end: number, rest: number): Promise<void> | null {
    const cut = { end, rest };
    if (!this.earlyFinals || !this.#utterance.canCut(cut)) return null;
    if (this.#speculation?.samples !== end * VAD_FRAME_SAMPLES) this.dropSpeculation();
    this.#speculations.splits += 1;
    // A split has audio: `atSample` places only empty finals.
    return this.#end("pause", 0, cut);
  }

  #end(reason: FlushReason, atSample: number, cut: PauseCut | null): Promise<void> {
    const speculation = this.#speculation;
    this.#speculation = null;
    speculation?.due(); // the utterance's final now
    // A split ends at the pause; what follows it goes on as the next utterance.
    const { audio: whole, start, vad } = this.#utterance.take(cut);
    // With an early final, only silence came after it: the final covers what it decoded.
    const early = whole.subarray(0, speculation?.samples ?? whole.length);
    const final = start === null ? undefined : { utterance: this.#utteranceNumber, start };
    this.#utteranceNumber += 1;
    this.#interims.ended(); // a waiting interim leaves the queue, a running one stops

    const speechFinal = reason === "endpoint";
    const fromFinalize = reason === "finalize" || reason === "close";
    const flags = { isFinal: true, speechFinal, fromFinalize };
    if (speculation) this.#speculations.used += 1;
    const decodeWhole = () =>
      this.scheduler.submit(this.context.sessionId, "final", (progress) =>
        this.#transcribe(whole, "final", vad, { final, onTurn: progress }),
      );
    const job = start === null || whole.length === 0 ? null : (speculation?.job ?? decodeWhole());
    // Observed here so it is never an unhandled rejection; the failure surfaces through `emitted`.
    job?.catch(() => {});
    // Each final waits for the ones before it, but not for their success: one failed final must
    // not skip the rest (the session ends on the failure, and the rest is still stored).
    const emitted = this.#finals
      .catch(() => {})
      .then(async () => {
        if (job === null || start === null) {
          if (fromFinalize) this.context.emit(empty(atSample / TRANSCRIBER_SAMPLE_RATE, flags));
          return;
        }
        let outcome = await job;
        let audio = speculation ? early : whole;
        // (A split's early final decoded all of its audio: there is no more to decode.)
        if (speculation && !cut && outcome.status === "done" && noText(outcome.value, audio, vad)) {
          // An early final with no text to show is not trusted: cut at the first silence, a short
          // quiet phrase can score as no speech ("ask not" at 4 of 9 stream starts) where the same
          // phrase decoded with the silence that followed it does not. The final decodes the whole
          // utterance, as without early finals; only finals with no words pay for it.
          this.#speculations.redone += 1;
          audio = whole;
          outcome = await decodeWhole();
        }
        if (outcome.status === "dropped") throw new Error("a final was dropped by the scheduler");
        this.context.emit(
          toTranscript(this.context.log, outcome.value, start, audio.length, flags, vad),
        );
      });
    this.#unfinished += 1;
    // `emitted`'s rejection is the caller's to handle; this branch only counts.
    emitted.then(
      () => (this.#unfinished -= 1),
      () => (this.#unfinished -= 1),
    );
    this.#finals = emitted;
    return emitted;
  }

  afterFinals(): Promise<void> {
    return this.#finals.catch(() => {});
  }

  ready(): Promise<void> {
    return this.#unfinished < FINALS_AHEAD ? Promise.resolve() : this.afterFinals();
  }

  close(): void {
    // An early final no flush took: nobody will read it.
    this.dropSpeculation();
    this.scheduler.forget(this.context.sessionId);
    // The isolate's inference queue, as this session leaves it: depth and recent waiting times.
    const stats = this.scheduler.stats();
    this.context.log.info("inference queue", {
      waiting: stats.waiting,
      peakWaiting: stats.peakWaiting,
      finals: stats.completed.final,
      interims: stats.completed.interim,
      droppedInterims: stats.droppedInterims,
      finalWaitP50Ms: percentile(stats.waitMs.final, 0.5),
      finalWaitP95Ms: percentile(stats.waitMs.final, 0.95),
    });
    this.context.log.info("early finals", { ...this.#speculations });
    this.context.log.info("interims", { ...this.#interims.counts });
    this.context.log.info("continued finals", { ...this.#continuation.counts });
  }

  async #transcribe(
    audio: Float32Array,
    kind: "final" | "interim",
    vad: VadEvidence | undefined,
    job: {
      signal?: AbortSignal;
      /** A final's utterance and where it starts (absent for interims): for continuation.ts. */
      final?: { utterance: number; start: number };
      /** Called at each of the transcription's turns (`turns`), after the event loop's. */
      onTurn?: () => void;
    },
  ): Promise<WhisperResult> {
    const whisper = await this.loadModel();
    this.#bias ??= keytermBias(whisper.tokenizer, this.context.keyterms);
    const options = {
      language: this.context.language,
      fallback: kind === "final",
      ...(kind === "final" ? { beamSize: this.beamSize } : {}),
      ...(job.signal ? { signal: job.signal } : {}),
      yieldTurn: turns(job.onTurn),
      ...(this.#bias.sequences.length > 0 ? { bias: this.#bias } : {}),
      ...(vad ? { speechBursts: vad.speechBursts } : {}),
    };
    const decode = (continueFrom?: Continuation) =>
      transcribe(whisper, audio, { ...options, ...(continueFrom ? { continueFrom } : {}) });
    const { final } = job;
    if (final === undefined || this.context.language === "multi") return decode(); // see header
    const rate = TRANSCRIBER_SAMPLE_RATE;
    const shows = (result: WhisperResult) => !noText(result, audio, vad);
    return this.#continuation.decode(final, audio, rate, whisper.tokenizer, decode, shows);
  }
}
