/**
 * One session's path from 16 kHz audio to utterances: cuts the stream into 32 ms VAD frames, asks
 * Silero for each frame's speech probability (with this session's own recurrent state), runs the
 * VAD state machine, and feeds the transcriber exactly the audio of each utterance — the pre-roll
 * padding before its first speech frame, then every frame until its end — with no sample fed twice
 * and none skipped inside an utterance.
 *
 * Timeline: sample n of the session's 16 kHz stream is at n / 16 000 s; frame f covers samples
 * [512 f, 512 (f + 1)).
 *
 * Longer than the house's 300 lines: what ends an utterance (endpoint, Finalize and close, the
 * soft and hard caps, UtteranceEnd, early finals' pauses) is decided frame by frame in one place,
 * because their order on a frame is the invariant (no sample fed twice or skipped); the pure
 * parts are already apart (vad-machine.ts, early-finals.ts).
 */

import { sleep } from "../runtime/own-context";
import type { TranscriberSession } from "../stt/transcriber";
import { type FrameScorer, sileroScorer, VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE } from "../vad/silero";
import { type VadEvent, VadMachine, type VadOptions } from "../vad/vad-machine";
import { MAX_UTTERANCE_SECONDS, MAX_UTTERANCE_SOFT_SECONDS } from "./caps";
import { EarlyFinals } from "./early-finals";

export interface PipelineListener {
  /** A confirmed utterance began; `seconds` is its first speech frame (not the padding). */
  speechStarted(seconds: number): void;
  /**
   * `utteranceEndMs` of silence followed the last speech (`lastSpeechEnd`, seconds: the VAD's),
   * and the finals queued before it were produced.
   */
  utteranceEnded(lastSpeechEnd: number): void;
  /** A final that was not awaited failed (e.g. transcription fell behind): the session ends. */
  failed(error: unknown): void;
  /**
   * An utterance ended (by silence, Finalize or close); its last speech frame ended at
   * `speechEndSample`, in audio the session received at `receivedAtMs` (final-latency.ts).
   */
  speechEnded(speechEndSample: number, receivedAtMs: number): void;
}

interface Frame {
  index: number;
  samples: Float32Array;
  /** Silero's speech probability for the frame; the transcriber weighs it as evidence. */
  probability: number;
}

const FRAME_SECONDS = VAD_FRAME_SAMPLES / VAD_SAMPLE_RATE;
/**
 * Frames run through the VAD back to back before yielding to the isolate's event loop: 32 (≈ 1 s
 * of audio, ≈ 16 ms of CPU at 0.5 ms a frame). Silero's calls never yield by themselves, so a
 * session draining a backlog (a client that sent faster than real time, up to 20 s queued) would
 * otherwise hold the isolate for up to 2 s, during which no other session's timers or messages
 * run (measured: 325–1 830 ms with no 5-ms tick).
 */
const FRAMES_BETWEEN_YIELDS = 32;
const MAX_UTTERANCE_FRAMES = Math.floor(MAX_UTTERANCE_SECONDS / FRAME_SECONDS);
/**
 * Past the soft cut, the longest endpointing the pipeline waits for before it cuts at a quiet
 * frame itself (#softCutIsEarlyFinals): twice the default's 500 ms.
 */
const SOFT_CUT_ENDPOINT_WAIT_MS = 1_000;

/** Frames after which an utterance is cut at its first quiet frame, for `softCutSeconds`. */
function softCutFrames(seconds: number): number {
  return Math.floor(Math.min(seconds, MAX_UTTERANCE_SECONDS) / FRAME_SECONDS);
}

export class SpeechPipeline {
  readonly #vad: VadMachine;
  /** This session's Silero state, primed with silence before the first frame (silero.ts). */
  /** Samples that do not fill a frame yet. */
  #partial = new Float32Array(0);
  /** Recent frames kept for the pre-roll of the next utterance (bounded, see constructor). */
  #recent: Frame[] = [];
  readonly #recentLimit: number;
  /** First frame not yet fed to the transcriber. */
  #fedUntil = 0;
  /** Frames fed to the current utterance since it began or was last cut. */
  #utteranceFrames = 0;
  /** Whether one of them was speech (p ≥ the positive threshold). */
  #speechInPart = false;
  #inUtterance = false;
  /** An UtteranceEnd due while its utterance was still open (its last speech end, s). */
  #heldUtteranceEnd: number | null = null;
  /** When this session's transcriber is told an utterance may be complete. */
  readonly #early: EarlyFinals;
  /** When the audio being pushed was received (push's `receivedAtMs`). */
  #receivedAtMs = 0;
  /** The end of the latest speech frame (p ≥ the positive threshold), and its audio's receipt. */
  #lastSpeech = { sample: 0, receivedAtMs: 0 };

  /** An utterance this many frames long is cut at its next quiet frame (MAX_UTTERANCE_SOFT_SECONDS). */
  readonly #softCutFrames: number;
  /**
   * Whether the soft cut is left to early finals (early-finals.ts: at the pause, once speech comes
   * back, or the endpoint ends the utterance there): only when the transcriber takes such cuts and
   * the endpoint comes within SOFT_CUT_ENDPOINT_WAIT_MS. With a longer endpointing, or none,
   * silence would hold the utterance open to the hard cap (15-s windows, and its final seconds
   * later): the pipeline cuts at the first quiet frame, as without early finals.
   */
  readonly #softCutIsEarlyFinals: boolean;

  constructor(
    private readonly options: VadOptions,
    private readonly transcriber: TranscriberSession,
    private readonly listener: PipelineListener,
    softCutSeconds: number = MAX_UTTERANCE_SOFT_SECONDS,
    private readonly scoreFrame: FrameScorer = sileroScorer(),
  ) {
    this.#softCutFrames = softCutFrames(softCutSeconds);
    const { minSilenceMs } = options;
    this.#softCutIsEarlyFinals =
      transcriber.endsAtPauses === true &&
      minSilenceMs !== false &&
      minSilenceMs <= SOFT_CUT_ENDPOINT_WAIT_MS;
    this.#early = new EarlyFinals(transcriber, options, this.#softCutFrames);
    this.#vad = new VadMachine(options);
    // The pre-roll reaches padFrames before the first speech frame, and a start is confirmed
    // after minSpeechFrames speech frames — usually within a few frames, but pauses shorter than
    // the misfire gap and frames between the two thresholds can stretch a tentative start. Four
    // misfire gaps cover that: 10 + 4 × 13 + 1 = 63 frames ≈ 2 s at the defaults, 2 KiB a frame.
    // A start stretched longer than that loses its earliest frames (those more than 2 s before
    // confirmation).
    this.#recentLimit = this.#vad.padFrames + 4 * this.#vad.misfireFrames + 1;
  }

  /** 16 kHz samples received so far that went through the VAD. */
  get samplesProcessed(): number {
    return this.#vad.framesSeen * VAD_FRAME_SAMPLES;
  }

  get speaking(): boolean {
    return this.#inUtterance;
  }

  /**
   * `receivedAtMs`: when the session received the message these samples came from (Date.now()
   * at its arrival); a frame is complete once its last sample is here, so it is the receipt time
   * of every frame this push completes.
   */
  async push(samples: Float32Array, receivedAtMs: number): Promise<void> {
    this.#receivedAtMs = receivedAtMs;
    let input = samples;
    if (this.#partial.length > 0) {
      input = new Float32Array(this.#partial.length + samples.length);
      input.set(this.#partial, 0);
      input.set(samples, this.#partial.length);
    }
    let at = 0;
    for (; at + VAD_FRAME_SAMPLES <= input.length; at += VAD_FRAME_SAMPLES) {
      // Copy: the frame outlives `input` in the pre-roll history.
      await this.#frame(input.slice(at, at + VAD_FRAME_SAMPLES));
      if (this.#vad.framesSeen % FRAMES_BETWEEN_YIELDS === 0) await sleep(0);
    }
    this.#partial = input.slice(at);
  }

  /**
   * Finalize (the session goes on) or close (it ends): the utterance in progress, if any, ends now
   * and its final is emitted, marked from_finalize. On close, the last partial frame belongs to the
   * utterance too.
   */
  async finalize(reason: "finalize" | "close"): Promise<void> {
    const tentative = this.#vad.tentativeStart;
    if (reason === "close" && !this.#inUtterance && tentative !== null) {
      // The stream ends: no frame will confirm the phrase begun, or call it a misfire. It is
      // read with the rest, as everything before a Finalize is (Whisper's no-speech check
      // drops it if it was no speech).
      this.#handle([
        { type: "speech-start", startFrame: tentative, confirmedAtFrame: this.#vad.framesSeen - 1 },
      ]);
    }
    if (reason === "close" && this.#inUtterance && this.#partial.length > 0) {
      // Audio the VAD never judged: the early final may not leave it out.
      this.#early.drop();
      this.transcriber.feed(this.#partial, this.samplesProcessed);
      this.#partial = new Float32Array(0);
    }
    this.#early.ending();
    this.#handle(this.#vad.forceEnd());
    // Everything before the Finalize is closed, but a phrase begun and not yet confirmed
    // (vad-machine.ts forceEnd): its frames from its lead-in on are left to its own final, so the
    // Finalize point, and the empty final that answers it, sit where that lead-in starts.
    const held = reason === "close" ? null : this.#vad.tentativeStart;
    const closedTo =
      held === null ? this.#vad.framesSeen : Math.max(held - this.#vad.padFrames, this.#fedUntil);
    this.#fedUntil = Math.max(this.#fedUntil, closedTo);
    this.#inUtterance = false;
    this.#utteranceFrames = 0;
    const atSample = held === null ? this.samplesProcessed : closedTo * VAD_FRAME_SAMPLES;
    const flushed = this.transcriber.flush(reason, atSample);
    this.#releaseUtteranceEnd();
    await flushed;
  }

  async #frame(samples: Float32Array): Promise<void> {
    const index = this.#vad.framesSeen;
    const probability = await this.scoreFrame(samples);
    const frame = { index, samples, probability };
    if (probability >= this.options.positiveThreshold) {
      // Speech again: the utterance goes on, and the VAD arms a new UtteranceEnd.
      this.#heldUtteranceEnd = null;
      this.#lastSpeech = {
        sample: (index + 1) * VAD_FRAME_SAMPLES,
        receivedAtMs: this.#receivedAtMs,
      };
    }
    this.#recent.push(frame);
    if (this.#recent.length > this.#recentLimit) this.#recent.shift();

    const wasInUtterance = this.#inUtterance;
    const events = this.#vad.push(probability);
    if (wasInUtterance) this.#feed(frame);
    const { ended, utteranceEnds } = this.#handle(events);
    let endedHere = ended;
    if (ended) this.#flushInBackground("endpoint");
    // UtteranceEnd follows the final of the speech it ends, as Deepgram's follows the last
    // finalized word: after the flush just queued (the VAD gives speech-end and utterance-end in
    // one push when endpointing = utterance_end_ms), or once the open utterance ends.
    for (const lastSpeechEnd of utteranceEnds) {
      if (!this.#inUtterance) {
        this.#utteranceEnded(lastSpeechEnd);
      } else if (this.options.minSilenceMs === false) {
        // Without endpointing nothing else ends it on silence (but a soft-cut part with no
        // speech, below): it ends here (is_final, not speech_final). A frame between the
        // thresholds here withdraws an early final.
        if (probability >= this.options.negativeThreshold) this.#early.drop();
        this.#handle(this.#vad.forceEnd());
        this.#utteranceFrames = 0;
        this.#flushInBackground("utterance-end");
        this.#utteranceEnded(lastSpeechEnd);
        endedHere = true;
      } else {
        // Its endpoint is still to come (endpointing > utterance_end_ms, or quiet frames between
        // the thresholds held it open): held until then, dropped if speech comes back first.
        this.#heldUtteranceEnd = lastSpeechEnd;
      }
    }
    if (endedHere) {
      await this.transcriber.ready?.();
      return;
    }
    if (this.#inUtterance && this.#shouldCut(probability)) {
      // A long utterance: its final now, the rest continues as a new one from the next frame.
      // Cut at the hard cap on a frame that is not silence, an early final leaves that frame out.
      if (probability >= this.options.negativeThreshold) this.#early.drop();
      // With endpointing off, a part without one speech frame ends the utterance: it would
      // otherwise go on being cut and read again every soft cut for an empty final. The next
      // speech frame starts a new one at once, with its lead-in (a word too short to confirm a
      // start would have been in the open utterance).
      if (!this.#speechInPart && this.options.minSilenceMs === false) {
        this.#handle(this.#vad.forceEnd(true));
      }
      this.#utteranceFrames = 0;
      this.#speechInPart = false;
      this.#flushInBackground("max-length");
      await this.transcriber.ready?.();
      return;
    }
    if (!this.#inUtterance) return;
    const split = this.#early.frame(probability, this.#utteranceFrames);
    if (split === null) return;
    // A long utterance ended at its pause: the rest continues as the next one.
    this.#utteranceFrames -= split.rest;
    split.ended.catch((error: unknown) => this.listener.failed(error));
    await this.transcriber.ready?.();
  }

  /**
   * Ends the utterance without waiting for its final: audio keeps flowing through the VAD while
   * the transcriber works (it emits finals in order). A Finalize or close awaits them all, since
   * the transcriber chains every flush after the ones before it.
   */
  #flushInBackground(reason: "endpoint" | "max-length" | "utterance-end"): void {
    this.#early.ending();
    this.transcriber
      .flush(reason, this.samplesProcessed)
      .catch((error: unknown) => this.listener.failed(error));
    this.#releaseUtteranceEnd();
  }

  /** Sends the UtteranceEnd held for the utterance just flushed (after its final). */
  #releaseUtteranceEnd(): void {
    if (this.#heldUtteranceEnd === null) return;
    this.#utteranceEnded(this.#heldUtteranceEnd);
    this.#heldUtteranceEnd = null;
  }

  /**
   * Applies VAD events; says whether an utterance ended by silence, and the utterance ends to
   * announce (their last speech end, s) once that utterance's final is queued.
   */
  #handle(events: VadEvent[]): { ended: boolean; utteranceEnds: number[] } {
    let ended = false;
    const utteranceEnds: number[] = [];
    for (const event of events) {
      switch (event.type) {
        case "speech-start": {
          this.#inUtterance = true;
          this.#utteranceFrames = 0;
          this.#speechInPart = false;
          const from = Math.max(event.startFrame - this.#vad.padFrames, this.#fedUntil);
          for (const frame of this.#recent) {
            if (frame.index >= from && frame.index <= event.confirmedAtFrame) this.#feed(frame);
          }
          this.listener.speechStarted(event.startFrame * FRAME_SECONDS);
          break;
        }
        case "speech-end":
          this.#inUtterance = false;
          ended = !event.forced;
          this.listener.speechEnded(this.#lastSpeech.sample, this.#lastSpeech.receivedAtMs);
          break;
        case "utterance-end":
          utteranceEnds.push(event.lastSpeechEndFrame * FRAME_SECONDS);
          break;
      }
    }
    return { ended, utteranceEnds };
  }

  /**
   * UtteranceEnd after every final queued so far: clients close a turn on it, so a final that
   * came later would land in the next turn. (Finals are produced in the background.)
   */
  #utteranceEnded(lastSpeechEnd: number): void {
    void this.transcriber.afterFinals().then(() => this.listener.utteranceEnded(lastSpeechEnd));
  }

  #feed(frame: Frame): void {
    if (frame.index < this.#fedUntil) return; // never twice
    this.transcriber.feed(frame.samples, frame.index * VAD_FRAME_SAMPLES, frame.probability);
    this.#fedUntil = frame.index + 1;
    this.#utteranceFrames += 1;
    if (frame.probability >= this.options.positiveThreshold) this.#speechInPart = true;
  }

  /**
   * The hard cap, or (when the transcriber does not end utterances at their pauses itself) the
   * soft cut: the first quiet frame past it. With early finals the soft cut is theirs
   * (early-finals.ts): cut here, an utterance whose quiet frame was its end sent its words in a
   * final that was not speech_final, and then an empty speech_final for the silence after.
   */
  #shouldCut(probability: number): boolean {
    if (this.#utteranceFrames >= MAX_UTTERANCE_FRAMES) return true;
    return (
      !this.#softCutIsEarlyFinals &&
      this.#utteranceFrames >= this.#softCutFrames &&
      probability < this.options.negativeThreshold
    );
  }
}
