/**
 * Whisper behind the Transcriber seam. Shared per isolate: the prepared models (loaded from R2 once,
 * src/stt/model-store.ts) and the inference scheduler. Per session: the audio of the utterance in
 * progress, its interim state, and the chain that keeps its finals in order.
 *
 * Finals: every utterance the pipeline ends (endpoint, Finalize, CloseStream, max length) is
 * transcribed whole and emitted as one final; finals of one session are emitted in order.
 *
 * Interims (interim_results=true): the growing utterance is re-transcribed every time it has grown
 * by the interim interval. The interval adapts to load: it stretches (×1.5, up to 4 s) when the
 * isolate has work waiting and shrinks back (÷1.25, down to 1 s) when it does not; and an interim
 * still waiting when a newer one is asked for is replaced (the scheduler drops it).
 * Stable prefix: a word is settled once two consecutive hypotheses agree on it and everything before
 * it; later interims of the utterance keep settled words as they are and only rewrite the tail, so
 * the beginning of a caption does not flicker. The final is transcribed fresh and replaces all.
 *
 * Early finals (on unless EARSHOT_EARLY_FINALS=off; wrangler.toml says why): at
 * the first silence after speech (`speculate`) the utterance so far is submitted
 * as its final at once, while the endpointing wait or the client's Finalize is still to come. If
 * only silence follows until the flush, that decode is the final, and the final covers exactly the
 * audio it decoded (the silence fed after it is left out), so it is what a fresh decode of the
 * final's audio gives; if anything else follows (`dropSpeculation`), it is aborted — out of the
 * queue if it still waits, stopped before its next decoder step if it runs — counted as wasted,
 * and the flush transcribes the whole utterance as usual. An early final with no words (empty, or
 * dropped as no speech) is not trusted either: the flush decodes the whole utterance, silence
 * after it included, as without early finals (counted as redone). Cut at the first silence, a short
 * quiet phrase can score as no speech where the same phrase with the silence after it does not
 * (JFK's "ask not" at 4 of 9 stream starts, test/whisper-session-stream-start.test.ts).
 */
import { IsolateOnce } from "../runtime/own-context";
import { VAD_FRAME_SAMPLES } from "../vad/silero";
import { InferenceScheduler, type JobOutcome } from "./inference-scheduler";
import { loadWhisper } from "./model-store";
import {
  type FlushReason,
  type ModelInfo,
  TRANSCRIBER_SAMPLE_RATE,
  type Transcriber,
  type TranscriberContext,
  type TranscriberSession,
  type Transcript,
  type TranscriptWord,
} from "./transcriber";
import type { TokenBias } from "./whisper/decode";
import type { WhisperTokenizer } from "./whisper/tokenizer";
import { createWhisperModel, transcribe, type WhisperModel } from "./whisper/transcribe";
import { noSpeechVerdict, type VadEvidence, vadEvidence } from "./whisper/transcript";

/** Audio added to the utterance before the next interim, in seconds (adapts between these). */
export const INTERIM_MIN_INTERVAL_SECONDS = 1;
export const INTERIM_MAX_INTERVAL_SECONDS = 4;
/** No interim for less audio than this: too little for Whisper to say anything useful. */
export const INTERIM_MIN_AUDIO_SECONDS = 0.6;

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

function percentile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? null;
}

function concat(chunks: Float32Array[], length: number): Float32Array {
  const out = new Float32Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * How much a keyterm's tokens are favoured: +3 on the logit, e^3 ≈ 20 times as likely. Measured
 * in Node on every dev and short clip (docs/accuracy.md, "Keyterms"): at +2 and +3 `clubs` turns
 * "4 Queen of Clothes" into "4 Queen of clubs" and changes no other transcript; at +4 a keyterm's
 * first piece (" Cl") starts words it is not ("The Cluster"), at +6 it replaces right words.
 */
export const KEYTERM_BONUS = 3;

/**
 * A session's keyterms as the token sequences the decoder favours: each as given, with a leading
 * space (Whisper's words start with one), and with its first letter raised and lowered, since a
 * keyterm may start a sentence or sit inside one. Empty for no keyterms. A term in a script that
 * takes no spaces (its spaced spelling begins with a lone space token) is favoured as written.
 */
export function keytermBias(tokenizer: WhisperTokenizer, keyterms: readonly string[]): TokenBias {
  const spellings = new Set<string>();
  for (const term of keyterms) {
    const first = term.charAt(0);
    const rest = term.slice(1);
    for (const variant of [term, first.toUpperCase() + rest, first.toLowerCase() + rest]) {
      spellings.add(` ${variant}`);
    }
  }
  const sequences = [...spellings].map((spelling) => {
    const tokens = tokenizer.encode(spelling);
    // Scripts whose words take no leading space (CJK): the space is a token of its own, and
    // favouring it would favour a space at every step. Such a term is favoured as written.
    const first = tokens[0];
    return first !== undefined && tokenizer.decode([first]).trim() === ""
      ? tokenizer.encode(spelling.trimStart())
      : tokens;
  });
  return { sequences: sequences.filter((tokens) => tokens.length > 0), bonus: KEYTERM_BONUS };
}

/** Seconds of one VAD frame: the evidence's frame indices count these from the utterance start. */
const VAD_FRAME_SECONDS = VAD_FRAME_SAMPLES / TRANSCRIBER_SAMPLE_RATE;

interface TimedWord {
  word: string;
  punctuatedWord: string;
  start: number;
  end: number;
  confidence: number;
}

/**
 * Whisper opens an utterance's first segment at <|0.00|> even when the pre-roll's silence
 * (speechPadMs, 300 ms) comes before the first word, and shares the segment's span among its
 * words by characters, so every word of that segment came out early. The VAD knows where speech
 * begins: the first segment's words are moved into [onset, segment end], keeping their order and
 * proportions (measured on the aligned LibriVox clips, test/whisper-session-word-timing.test.ts).
 */
function fromOnset(
  words: readonly TimedWord[],
  firstSegment: { start: number; end: number } | undefined,
  onset: number,
): readonly TimedWord[] {
  if (firstSegment === undefined) return words;
  const { start: s0, end: s1 } = firstSegment;
  if (onset <= s0 || onset >= s1) return words;
  const scale = (s1 - onset) / (s1 - s0);
  const move = (t: number) => (t <= s1 ? onset + (Math.max(t, s0) - s0) * scale : t);
  return words.map((w) => (w.start < s1 ? { ...w, start: move(w.start), end: move(w.end) } : w));
}

/** Words of a Whisper transcript on the session's timeline, clamped into [start, end]. */
function sessionWords(words: readonly TimedWord[], offset: number, end: number): TranscriptWord[] {
  return words.map((w) => {
    const start = Math.min(end, offset + Math.max(0, w.start));
    return {
      word: w.word,
      punctuatedWord: w.punctuatedWord,
      start,
      end: Math.min(end, Math.max(start, offset + w.end)),
      confidence: w.confidence,
    };
  });
}

/** Length of the common prefix of two word lists, compared by their plain form. */
function agreed(a: readonly TranscriptWord[], b: readonly TranscriptWord[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n]?.word === b[n]?.word) n++;
  return n;
}

interface Speculation {
  job: Promise<JobOutcome<WhisperResult>>;
  /** Aborted when speech makes it useless: it leaves the queue, or stops between decoder steps. */
  abort: AbortController;
  /** Samples of the utterance it decodes: a prefix of the utterance's audio. */
  samples: number;
}

type WhisperResult = Awaited<ReturnType<typeof transcribe>>;

class WhisperSession implements TranscriberSession {
  #chunks: Float32Array[] = [];
  /** The VAD's speech probability of each fed frame of the utterance (evidence, see flush). */
  #vad: number[] = [];
  #samples = 0;
  #start: number | null = null;
  /** Bumped at every flush: an interim of an ended utterance is never emitted. */
  #utterance = 0;
  #sinceInterim = 0;
  #interval = INTERIM_MIN_INTERVAL_SECONDS;
  #interimInFlight = false;
  #settled: TranscriptWord[] = [];
  #previous: TranscriptWord[] = [];
  /** Finals of this session, in order. */
  #finals: Promise<void> = Promise.resolve();
  /** The current utterance's early final, while only silence has followed it. */
  #speculation: Speculation | null = null;
  /**
   * Early finals started, used as finals, thrown away because speech followed, and used but
   * decoded again whole because they had no text.
   */
  readonly #speculations = { started: 0, used: 0, wasted: 0, redone: 0 };
  /** This session's keyterms as token sequences to favour, encoded once the tokenizer exists. */
  #bias: TokenBias | undefined;

  constructor(
    private readonly context: TranscriberContext,
    private readonly loadModel: () => Promise<WhisperModel>,
    private readonly scheduler: InferenceScheduler,
    private readonly earlyFinals: boolean,
    /** Beams for finals (EARSHOT_BEAM_SIZE, `beamSizeVar`); interims always decode greedily. */
    private readonly beamSize: number = DEFAULT_BEAM_SIZE,
  ) {}

  feed(samples: Float32Array, startSample: number, speechProbability?: number): void {
    if (this.#start === null) this.#start = startSample;
    this.#chunks.push(samples);
    if (speechProbability !== undefined) this.#vad.push(speechProbability);
    this.#samples += samples.length;
    this.#sinceInterim += samples.length;
    if (this.context.interimResults) this.#maybeInterim();
  }

  speculate(): void {
    if (!this.earlyFinals || this.#start === null || this.#samples === 0) return;
    this.dropSpeculation();
    const audio = concat(this.#chunks, this.#samples);
    const abort = new AbortController();
    const job = this.scheduler.submit(
      this.context.sessionId,
      "final",
      () => this.#transcribe(audio, "final", abort.signal),
      abort.signal,
    );
    // Observed here: an early final that is never used must not be an unhandled rejection.
    job.catch(() => {});
    this.#speculation = { job, abort, samples: audio.length };
    this.#speculations.started += 1;
  }

  dropSpeculation(): void {
    if (this.#speculation === null) return;
    // Out of the queue if it is still waiting; if it runs, it stops before its next decoder step.
    this.#speculation.abort.abort();
    this.#speculation = null;
    this.#speculations.wasted += 1;
  }

  flush(reason: FlushReason, atSample: number): Promise<void> {
    const speculation = this.#speculation;
    this.#speculation = null;
    const whole = concat(this.#chunks, this.#samples);
    // With an early final, only silence came after it: the final covers what it decoded.
    const early = whole.subarray(0, speculation?.samples ?? this.#samples);
    const start = this.#start;
    const vad = vadEvidence(this.#vad);
    this.#chunks = [];
    this.#vad = [];
    this.#samples = 0;
    this.#start = null;
    this.#utterance += 1;
    this.#sinceInterim = 0;
    this.#settled = [];
    this.#previous = [];
    this.scheduler.cancelInterim(this.context.sessionId);

    const speechFinal = reason === "endpoint";
    const fromFinalize = reason === "finalize" || reason === "close";
    const flags = { isFinal: true, speechFinal, fromFinalize };
    if (speculation) this.#speculations.used += 1;
    const decodeWhole = () =>
      this.scheduler.submit(this.context.sessionId, "final", () =>
        this.#transcribe(whole, "final"),
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
        if (speculation && outcome.status === "done" && this.#noText(outcome.value, audio, vad)) {
          // An early final with no text to show is not trusted: cut at the first silence, a short
          // quiet phrase can score as no speech ("ask not" at 4 of 9 stream starts) where the same
          // phrase decoded with the silence that followed it does not. The final decodes the whole
          // utterance, as without early finals; only finals with no words pay for it.
          this.#speculations.redone += 1;
          audio = whole;
          outcome = await decodeWhole();
        }
        if (outcome.status === "dropped") throw new Error("a final was dropped by the scheduler");
        this.context.emit(this.#toTranscript(outcome.value, start, audio.length, flags, vad));
      });
    this.#finals = emitted;
    return emitted;
  }

  afterFinals(): Promise<void> {
    return this.#finals.catch(() => {});
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
  }

  #maybeInterim(): void {
    const rate = TRANSCRIBER_SAMPLE_RATE;
    if (this.#interimInFlight || this.#start === null) return;
    if (this.#samples < INTERIM_MIN_AUDIO_SECONDS * rate) return;
    if (this.#sinceInterim < this.#interval * rate) return;
    this.#sinceInterim = 0;
    this.#interimInFlight = true;
    const utterance = this.#utterance;
    const start = this.#start;
    const audio = concat(this.#chunks, this.#samples);
    const vad = vadEvidence(this.#vad);
    const job = this.scheduler.submit(this.context.sessionId, "interim", () =>
      this.#transcribe(audio, "interim"),
    );
    // Adapt the cadence to the isolate's load at the time of asking.
    this.#interval = this.scheduler.busy
      ? Math.min(INTERIM_MAX_INTERVAL_SECONDS, this.#interval * 1.5)
      : Math.max(INTERIM_MIN_INTERVAL_SECONDS, this.#interval / 1.25);
    job
      .then((outcome) => {
        if (outcome.status !== "done" || utterance !== this.#utterance) return;
        const flags = { isFinal: false, speechFinal: false, fromFinalize: false };
        const hypothesis = this.#toTranscript(outcome.value, start, audio.length, flags, vad);
        this.context.emit(this.#stabilise(hypothesis));
      })
      .catch((error: unknown) => {
        // An interim is a preview: losing one is not worth ending the session. The final of the
        // same audio will surface a persistent failure.
        this.context.log.warn("interim failed", { error });
      })
      .finally(() => {
        this.#interimInFlight = false;
      });
  }

  /** Keeps settled words as they were; settles what two hypotheses in a row agree on. */
  #stabilise(hypothesis: Transcript): Transcript {
    const words = hypothesis.words;
    const keep = agreed(this.#settled, words) === this.#settled.length;
    const tail = keep ? words.slice(this.#settled.length) : words;
    const combined = keep ? [...this.#settled, ...tail] : words;
    const nowAgreed = agreed(this.#previous, combined);
    if (nowAgreed > this.#settled.length) this.#settled = combined.slice(0, nowAgreed);
    this.#previous = combined;
    return {
      ...hypothesis,
      words: combined,
      text: combined.map((w) => w.punctuatedWord).join(" "),
    };
  }

  async #transcribe(
    audio: Float32Array,
    kind: "final" | "interim",
    signal?: AbortSignal,
  ): Promise<WhisperResult> {
    const whisper = await this.loadModel();
    this.#bias ??= keytermBias(whisper.tokenizer, this.context.keyterms);
    return transcribe(whisper, audio, {
      language: this.context.language,
      fallback: kind === "final",
      ...(kind === "final" ? { beamSize: this.beamSize } : {}),
      ...(signal ? { signal } : {}),
      ...(this.#bias.sequences.length > 0 ? { bias: this.#bias } : {}),
    });
  }

  /** Whether a decode shows no words: empty, or dropped as no speech (see #toTranscript). */
  #noText(result: WhisperResult, audio: Float32Array, vad: VadEvidence | undefined): boolean {
    return result.text === "" || verdictOf(result, audio.length, vad).noSpeech;
  }

  #toTranscript(
    result: WhisperResult,
    startSample: number,
    samples: number,
    flags: Pick<Transcript, "isFinal" | "speechFinal" | "fromFinalize">,
    vad?: VadEvidence,
  ): Transcript {
    const start = startSample / TRANSCRIBER_SAMPLE_RATE;
    const end = (startSample + samples) / TRANSCRIBER_SAMPLE_RATE;
    if (result.text === "") return { ...empty(start, flags), end };
    const verdict = verdictOf(result, samples, vad);
    if (verdict.noSpeech) {
      this.context.log.debug("dropped as no speech", {
        final: flags.isFinal,
        rule: verdict.rule,
        noSpeech: result.noSpeechProbability,
        avgLogprob: result.avgLogprob,
        compressionRatio: result.compressionRatio,
        seconds: samples / TRANSCRIBER_SAMPLE_RATE,
        vad,
      });
      return { ...empty(start, flags), end };
    }
    return {
      start,
      end,
      text: result.text,
      confidence: result.confidence,
      words: sessionWords(
        fromOnset(result.words, result.segments[0], onsetSeconds(vad)),
        start,
        end,
      ),
      ...flags,
    };
  }
}

/** The no-speech decision on a decode of `samples` samples, with the utterance's VAD evidence. */
function verdictOf(result: WhisperResult, samples: number, vad: VadEvidence | undefined) {
  return noSpeechVerdict({
    noSpeechProbability: result.noSpeechProbability,
    avgLogprob: result.avgLogprob,
    compressionRatio: result.compressionRatio,
    seconds: samples / TRANSCRIBER_SAMPLE_RATE,
    ...(vad ? { vad } : {}),
  });
}

/** Where speech begins in the utterance, by its VAD frames (0 when unknown). */
function onsetSeconds(vad: VadEvidence | undefined): number {
  const frame = vad?.firstSpeechFrame ?? -1;
  return frame > 0 ? frame * VAD_FRAME_SECONDS : 0;
}

function empty(
  at: number,
  flags: Pick<Transcript, "isFinal" | "speechFinal" | "fromFinalize">,
): Transcript {
  return { start: at, end: at, text: "", confidence: 0, words: [], ...flags };
}

export interface WhisperEnv {
  MODELS: R2Bucket;
  /** "off" turns early finals off (see the header); anything else leaves them on. */
  EARSHOT_EARLY_FINALS?: string;
  /** Beams for finals of short utterances: `beamSizeVar`. */
  EARSHOT_BEAM_SIZE?: string;
}

/**
 * Beam search for finals of utterances up to BEAM_MAX_AUDIO_SECONDS whose greedy decode is unsure
 * (src/stt/whisper/transcribe.ts BEAM_BELOW_LOGPROB), 3 beams by default. Measured through the
 * session on the 18 dev and short speech clips (test/whisper-session-accuracy.test.ts,
 * docs/accuracy.md), errors of 206 words at endpointing 10 / 300 / 500: greedy 23 / 19 / 19, 3
 * beams 18 / 16 / 16 (on every final up to 5 s: 20 / 14 / 13, for a Finalize p50 1.39× greedy's).
 * 5 beams in one run scored worse than 3: the beams share one decoder run, whose activations are
 * quantized per run, not per beam.
 */
export const DEFAULT_BEAM_SIZE = 3;
/** Beams beyond this cost heap (a cross-attention cache copy each) for no measured gain. */
export const MAX_BEAM_SIZE = 5;

/**
 * EARSHOT_BEAM_SIZE: a whole number of beams from 1 (greedy) to MAX_BEAM_SIZE; anything else
 * (unset included) is DEFAULT_BEAM_SIZE.
 */
export function beamSizeVar(value: string | undefined): number {
  const parsed = Number(value);
  return value !== undefined &&
    value.trim() !== "" &&
    Number.isInteger(parsed) &&
    parsed >= 1 &&
    parsed <= MAX_BEAM_SIZE
    ? parsed
    : DEFAULT_BEAM_SIZE;
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
      ),
  };
}
