// @ts-check
/**
 * Microphone capture: getUserMedia → AudioContext → the PCM16 worklet (pcm-worklet.js), which
 * does all the audio work on the audio thread. This module only starts and stops the graph and
 * passes the worklet's frames on.
 */

/** Milliseconds Stop waits for the worklet to hand over its partial last frame. */
const FLUSH_TIMEOUT_MS = 500;

/**
 * Why the microphone could not start, in words a person can act on. `DOMException.name` values
 * are the ones getUserMedia rejects with (Media Capture and Streams §10, "getUserMedia").
 * @param {unknown} error
 * @returns {string}
 */
export function describeMicError(error) {
  const name = error instanceof DOMException ? error.name : "";
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was denied. Allow the microphone for this page in the browser's site settings, then press Start again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one, then press Start again.";
    case "NotReadableError":
    case "AbortError":
      return "The microphone could not be opened: another application may be using it.";
    default:
      return `The microphone could not be started: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/**
 * The microphone, as both captures open it. Rejects with the getUserMedia error, or
 * NotSupportedError where the page has no microphone API (an insecure origin).
 * @returns {Promise<MediaStream>}
 */
function openMicrophone() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new DOMException(
      "this browser exposes no microphone API here (the page must be served over https or from localhost)",
      "NotSupportedError",
    );
  }
  return navigator.mediaDevices.getUserMedia({
    audio: {
      // Echo cancellation keeps the speakers' sound out of the transcript. Noise suppression and
      // automatic gain are off: their artefacts hurt recognition more than noise does, and the
      // server's VAD and Whisper's normalised features do not need a steady level.
      echoCancellation: true,
      noiseSuppression: false,
      autoGainControl: false,
    },
  });
}

/**
 * @typedef {{ pcm: ArrayBuffer, rms: number, peak: number, capturedAt: number, endSample?: number }} Frame
 * `capturedAt` is performance.now() when the frame reached the main thread, ms: within one render
 * quantum (128 samples, ≤ 3 ms) plus one message hop of the frame's last sample being captured.
 * `endSample` (RecorderCapture only): where the blob ends in the recording, in 16-kHz samples,
 * by the clock (a WebM blob's bytes do not say how much audio it holds).
 */

export class MicCapture {
  /** @param {(frame: Frame) => void} onFrame */
  constructor(onFrame) {
    this.onFrame = onFrame;
    /** @type {MediaStream | null} */ this.stream = null;
    /** @type {AudioContext | null} */ this.context = null;
    /** @type {AudioWorkletNode | null} */ this.node = null;
    /** @type {(() => void) | null} */ this.onFlushed = null;
  }

  /**
   * Opens the microphone and starts posting frames. Call from a click handler: browsers only let
   * an AudioContext start after a user gesture. Rejects with the getUserMedia error.
   */
  async start() {
    this.stream = await openMicrophone();
    try {
      // The device's own rate; the worklet resamples to 16 kHz itself.
      this.context = new AudioContext({ latencyHint: "interactive" });
      await this.context.audioWorklet.addModule(new URL("pcm-worklet.js", import.meta.url));
      const source = this.context.createMediaStreamSource(this.stream);
      this.node = new AudioWorkletNode(this.context, "pcm16-capture", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
      });
      this.node.port.onmessage = (event) => this.#onMessage(event.data);
      source.connect(this.node);
      // A node is only processed while something pulls it; its output is silence (it writes
      // nothing), so connecting it to the speakers plays nothing.
      this.node.connect(this.context.destination);
      if (this.context.state === "suspended") await this.context.resume();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** The device's sample rate in Hz (before resampling), or null when not running. */
  get deviceRate() {
    return this.context?.sampleRate ?? null;
  }

  /** @param {{type: string, pcm?: ArrayBuffer, rms?: number, peak?: number}} message */
  #onMessage(message) {
    if (message.type === "frame" && message.pcm) {
      this.onFrame({
        pcm: message.pcm,
        rms: message.rms ?? 0,
        peak: message.peak ?? 0,
        capturedAt: performance.now(),
      });
    } else if (message.type === "flushed") {
      this.onFlushed?.();
    }
  }

  /** Hands over the partial last frame, then releases the microphone. Safe to call twice. */
  async stop() {
    const node = this.node;
    if (node) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, FLUSH_TIMEOUT_MS);
        this.onFlushed = () => {
          clearTimeout(timer);
          resolve(undefined);
        };
        node.port.postMessage({ type: "flush" });
      });
      this.onFlushed = null;
      node.port.onmessage = null;
      node.disconnect();
    }
    this.node = null;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    const context = this.context;
    this.context = null;
    if (context && context.state !== "closed") await context.close();
  }
}

/**
 * The MIME type the MediaRecorder path asks for: WebM with Opus, what Chromium and Firefox
 * record; the server detects the container (no `encoding` or `sample_rate` is sent).
 */
export const RECORDER_MIME_TYPE = "audio/webm;codecs=opus";
/** A blob every 250 ms, as Deepgram's browser examples send them. */
export const RECORDER_TIMESLICE_MS = 250;

/** Whether this browser can record RECORDER_MIME_TYPE. */
export function recorderSupported() {
  return typeof MediaRecorder !== "undefined" && MediaRecorder.isTypeSupported(RECORDER_MIME_TYPE);
}

/**
 * Microphone capture through MediaRecorder (WebM/Opus), the way most Deepgram pages capture: each
 * `dataavailable` blob is passed on whole, in order. The level meter reads an AnalyserNode beside
 * the recorder. Same interface as MicCapture: `frame.pcm` holds the blob's bytes (WebM, not PCM),
 * `capturedAt` when the blob reached the page.
 */
export class RecorderCapture {
  /** @param {(frame: Frame) => void} onFrame */
  constructor(onFrame) {
    this.onFrame = onFrame;
    /** @type {MediaStream | null} */ this.stream = null;
    /** @type {MediaRecorder | null} */ this.recorder = null;
    /** @type {AudioContext | null} */ this.context = null;
    /** @type {AnalyserNode | null} */ this.analyser = null;
    /** Blobs are read one after the other, so they are passed on in the order recorded. */
    /** @type {Promise<void>} */ this.chain = Promise.resolve();
    /** performance.now() when recording started. */
    this.startedAt = 0;
  }

  async start() {
    if (!recorderSupported()) {
      throw new DOMException(
        `this browser cannot record ${RECORDER_MIME_TYPE}; choose the PCM capture`,
        "NotSupportedError",
      );
    }
    this.stream = await openMicrophone();
    try {
      this.context = new AudioContext({ latencyHint: "interactive" });
      this.analyser = this.context.createAnalyser();
      this.analyser.fftSize = 2048;
      this.context.createMediaStreamSource(this.stream).connect(this.analyser);
      const recorder = new MediaRecorder(this.stream, { mimeType: RECORDER_MIME_TYPE });
      recorder.ondataavailable = (event) => this.#onBlob(event.data);
      this.recorder = recorder;
      recorder.start(RECORDER_TIMESLICE_MS);
      this.startedAt = performance.now();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** The device's sample rate in Hz (the recorder encodes at 48 kHz whatever it is), or null. */
  get deviceRate() {
    return this.context?.sampleRate ?? null;
  }

  /** @param {Blob} blob */
  #onBlob(blob) {
    if (blob.size === 0) return;
    const level = this.#level();
    const capturedAt = performance.now();
    const endSample = Math.round(((capturedAt - this.startedAt) / 1000) * 16_000);
    this.chain = this.chain
      .then(async () => {
        const bytes = await blob.arrayBuffer();
        this.onFrame({ pcm: bytes, ...level, capturedAt, endSample });
      })
      .catch((error) => console.error("reading a recorded blob failed", error));
  }

  /** RMS and peak of the analyser's latest window. */
  #level() {
    const analyser = this.analyser;
    if (analyser === null) return { rms: 0, peak: 0 };
    const samples = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    let peak = 0;
    for (const s of samples) {
      sum += s * s;
      peak = Math.max(peak, Math.abs(s));
    }
    return { rms: Math.sqrt(sum / samples.length), peak };
  }

  /** Stops the recorder (its last blob is passed on first), then releases the microphone. */
  async stop() {
    const recorder = this.recorder;
    this.recorder = null;
    if (recorder && recorder.state !== "inactive") {
      await new Promise((resolve) => {
        recorder.onstop = () => resolve(undefined);
        recorder.stop();
      });
    }
    await this.chain;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    const context = this.context;
    this.context = null;
    this.analyser = null;
    if (context && context.state !== "closed") await context.close();
  }
}
