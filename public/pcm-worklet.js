// @ts-nocheck -- AudioWorkletGlobalScope (sampleRate, registerProcessor) is not in TS's DOM lib.
/**
 * The microphone's audio thread: downmixes to mono, resamples from the device rate to 16 kHz with
 * a windowed-sinc low-pass (so speech above 8 kHz does not alias into the band Whisper hears),
 * converts to 16-bit PCM and posts one frame every FRAME_MS, with the frame's level. The main
 * thread only forwards frames to the socket: no audio is processed there.
 *
 * Messages posted: {type: "frame", pcm: ArrayBuffer (Int16 LE), rms, peak} (the buffer is
 * transferred, not copied) and {type: "flushed"} after a "flush" request, whose partial frame (if
 * any) is posted first. Messages received: {type: "flush"}.
 */

/** What the server is told (`sample_rate=16000`) and what Whisper and Silero run at. */
const TARGET_RATE = 16_000;
/**
 * 50 ms per frame = 800 samples = 1 600 bytes. Deepgram asks for 20–100 ms; 50 ms is 20 messages
 * a second (negligible per-message overhead) and adds at most 50 ms before audio leaves the page.
 */
const FRAME_MS = 50;
const FRAME_SAMPLES = (TARGET_RATE * FRAME_MS) / 1000;
/**
 * The low-pass kernel spans this many zero crossings of its sinc on each side. 8 gives a
 * transition band of about 1/8 of the cutoff frequency (~0.9 kHz at 7.2 kHz) with a Blackman
 * window's ~70 dB stop band; at 48 kHz input that is 2 × 27 = 54 taps per output sample, i.e.
 * 16 000 × 54 ≈ 0.9 M multiply-adds a second, well under 1% of an audio thread's budget.
 */
const ZERO_CROSSINGS = 8;
/** Cutoff as a fraction of the output's Nyquist frequency: 0.9 × 8 kHz = 7.2 kHz. */
const PASSBAND = 0.9;
/**
 * Fractional input positions are rounded to 1/PHASES of a sample, and the kernel is tabulated
 * once per phase: 512 phases × 54 taps ≈ 28 k floats (110 KB). The rounding moves a sample by at
 * most 1/1024 of an input sample (~20 ns at 48 kHz), far below anything audible or measurable in
 * a transcript.
 */
const PHASES = 512;

/** Streaming windowed-sinc resampler from `inputRate` to TARGET_RATE; state carries across calls. */
class Resampler {
  constructor(inputRate) {
    this.passThrough = inputRate === TARGET_RATE;
    /** Input samples per output sample (3 at 48 kHz, 2.75625 at 44.1 kHz). */
    this.step = inputRate / TARGET_RATE;
    // Cutoff in cycles per input sample; downsampling lowers it below the output's Nyquist.
    const cutoff = 0.5 * Math.min(1, TARGET_RATE / inputRate) * PASSBAND;
    this.half = Math.ceil(ZERO_CROSSINGS / (2 * cutoff));
    this.taps = 2 * this.half;
    this.kernel = new Float32Array(PHASES * this.taps);
    for (let phase = 0; phase < PHASES; phase++) {
      const frac = phase / PHASES;
      let sum = 0;
      for (let k = 0; k < this.taps; k++) {
        // Distance from the output position to input sample (i0 - half + 1 + k).
        const d = k - this.half + 1 - frac;
        const x = 2 * cutoff * d;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        const w = Math.abs(d) >= this.half ? 0 : blackman(d / this.half);
        const value = sinc * w;
        this.kernel[phase * this.taps + k] = value;
        sum += value;
      }
      // Unity gain at DC for every phase, so the level does not ripple with the phase.
      for (let k = 0; k < this.taps; k++) this.kernel[phase * this.taps + k] /= sum;
    }
    // Input history: `half` zeros before the first sample, so the first output is centred on
    // input sample 0. Capacity: the kernel's span plus one render quantum (128) with room to spare.
    this.history = new Float32Array(this.taps + 1024);
    this.length = this.half;
    /** Position of the next output sample, in input samples relative to history[0]. */
    this.position = this.half;
  }

  /** Appends input samples and calls `emit(sample)` for every 16 kHz sample now computable. */
  push(input, emit) {
    if (this.passThrough) {
      for (let i = 0; i < input.length; i++) emit(input[i]);
      return;
    }
    if (this.length + input.length > this.history.length) {
      const grown = new Float32Array((this.length + input.length) * 2);
      grown.set(this.history.subarray(0, this.length));
      this.history = grown;
    }
    this.history.set(input, this.length);
    this.length += input.length;
    const { history, kernel, taps, half, step } = this;
    // An output at position p needs inputs floor(p) - half + 1 … floor(p) + half, or one more
    // when its phase rounds up to the next sample (see below).
    while (Math.floor(this.position) + half + 1 < this.length) {
      const i0 = Math.floor(this.position);
      let phase = Math.round((this.position - i0) * PHASES);
      let first = i0 - half + 1;
      if (phase === PHASES) {
        phase = 0;
        first += 1;
      }
      const row = phase * taps;
      let acc = 0;
      for (let k = 0; k < taps; k++) acc += history[first + k] * kernel[row + k];
      emit(acc);
      this.position += step;
    }
    // Keep only what the next output still needs.
    const keepFrom = Math.max(0, Math.floor(this.position) - half + 1);
    history.copyWithin(0, keepFrom, this.length);
    this.length -= keepFrom;
    this.position -= keepFrom;
  }
}

/** Blackman window over t in [-1, 1]. */
function blackman(t) {
  const x = Math.PI * (t + 1); // 0 … 2π across the window
  return 0.42 - 0.5 * Math.cos(x) + 0.08 * Math.cos(2 * x);
}

class Pcm16CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.resampler = new Resampler(sampleRate);
    this.mono = new Float32Array(128);
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
    this.sumSquares = 0;
    this.peak = 0;
    this.emit = (sample) => this.append(sample);
    this.port.onmessage = (event) => {
      if (event.data?.type === "flush") {
        if (this.filled > 0) this.post();
        this.port.postMessage({ type: "flushed" });
      }
    };
  }

  append(sample) {
    const clamped = Math.min(1, Math.max(-1, sample));
    this.sumSquares += clamped * clamped;
    const magnitude = Math.abs(clamped);
    if (magnitude > this.peak) this.peak = magnitude;
    // Full scale is 32768 on the negative side and 32767 on the positive side.
    this.frame[this.filled++] = Math.round(clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff);
    if (this.filled === FRAME_SAMPLES) this.post();
  }

  post() {
    const pcm = this.frame.slice(0, this.filled).buffer;
    const rms = Math.sqrt(this.sumSquares / this.filled);
    this.port.postMessage({ type: "frame", pcm, rms, peak: this.peak }, [pcm]);
    this.filled = 0;
    this.sumSquares = 0;
    this.peak = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    // No channels yet (the source is still starting): nothing to do, keep the node alive.
    if (channels === undefined || channels.length === 0) return true;
    const frames = channels[0].length;
    if (this.mono.length < frames) this.mono = new Float32Array(frames);
    const mono = this.mono.subarray(0, frames);
    mono.set(channels[0]);
    if (channels.length > 1) {
      // Downmix: the average of all channels (a stereo mic's two sides, or a multi-mic array).
      for (let c = 1; c < channels.length; c++) {
        const channel = channels[c];
        for (let i = 0; i < frames; i++) mono[i] += channel[i];
      }
      const scale = 1 / channels.length;
      for (let i = 0; i < frames; i++) mono[i] *= scale;
    }
    this.resampler.push(mono, this.emit);
    return true;
  }
}

registerProcessor("pcm16-capture", Pcm16CaptureProcessor);
