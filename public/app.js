// @ts-check
/**
 * The demo page: wires the microphone (mic-capture.js) to the live connection (live-client.js)
 * and renders what comes back. Finals are settled text in #transcript; the current interim sits
 * beside it in #interim and is replaced, never appended.
 */
import { LiveClient } from "./live-client.js";
import { describeMicError, MicCapture, RecorderCapture, recorderSupported } from "./mic-capture.js";

/**
 * Level meter scale: RMS in dBFS mapped linearly from −60 dB (empty) to 0 dB (full). Speech at a
 * normal distance sits around −30 to −15 dBFS, i.e. the middle of the bar.
 */
const METER_FLOOR_DB = -60;
const COPY_LABEL = "Copy text";
/** The latency after the last word is shown when it differs from the first figure by this much. */
const SECOND_FIGURE_MIN_MS = 20;
/** How long the Copy button says "Copied". */
const COPIED_FEEDBACK_MS = 1500;
/**
 * A handshake that takes longer than this is most likely the server loading the speech model: the
 * first session after a server starts waits 1.5–4 s for it before the connection opens.
 */
const MODEL_LOAD_HINT_MS = 800;

/** @param {string} id */
function byId(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`index.html has no #${id}`);
  return element;
}

const ui = {
  start: /** @type {HTMLButtonElement} */ (byId("start")),
  stop: /** @type {HTMLButtonElement} */ (byId("stop")),
  copy: /** @type {HTMLButtonElement} */ (byId("copy")),
  clear: /** @type {HTMLButtonElement} */ (byId("clear")),
  status: byId("status"),
  speaking: byId("speaking"),
  level: /** @type {HTMLMeterElement} */ (byId("level")),
  latency: byId("latency"),
  latencySpeech: byId("latency-speech"),
  model: byId("model"),
  message: byId("message"),
  hint: byId("hint"),
  transcript: byId("transcript"),
  interim: byId("interim"),
  placeholder: byId("placeholder"),
  copied: byId("copied"),
  capture: /** @type {HTMLSelectElement} */ (byId("capture")),
};

// MediaRecorder (WebM/Opus) where the browser can record it; PCM through the worklet always.
const recorderOption = ui.capture.querySelector('option[value="webm"]');
if (recorderOption instanceof HTMLOptionElement && !recorderSupported()) {
  recorderOption.disabled = true;
  recorderOption.textContent += " (not supported by this browser)";
}

/** One Start…Stop run: its microphone and connection. */
let run =
  /** @type {{ mic: MicCapture | RecorderCapture, client: LiveClient, stopping?: boolean } | null} */ (
    null
  );
/** Whether any Results came back in this run (to explain a server without a transcriber). */
let sawResults = false;
/** Says "loading the speech model" while a handshake is slow; cleared when it ends either way. */
let slowConnectTimer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);

/**
 * @param {string} text
 * @param {string} state idle | busy | live | warn | error | stopped
 */
function setStatus(text, state) {
  ui.status.textContent = text;
  ui.status.dataset.state = state;
}

/** @param {string | null} text */
function showMessage(text) {
  ui.message.textContent = text ?? "";
  ui.message.hidden = text === null;
}

/** @param {string | null} text */
function showHint(text) {
  ui.hint.textContent = text ?? "";
  ui.hint.hidden = text === null;
}

/** @param {boolean} speaking */
function setSpeaking(speaking) {
  ui.speaking.dataset.speaking = String(speaking);
  ui.speaking.textContent = speaking ? "Speaking" : "Not speaking";
}

function finalsText() {
  return Array.from(ui.transcript.children, (span) => span.textContent ?? "")
    .filter((text) => text !== "")
    .join(" ");
}

function refreshButtons() {
  const running = run !== null;
  ui.start.disabled = running;
  ui.stop.disabled = !running;
  ui.capture.disabled = running;
  const hasText = ui.transcript.childElementCount > 0;
  ui.copy.disabled = !hasText;
  ui.clear.disabled = !hasText || running;
  ui.placeholder.hidden = hasText || ui.interim.textContent !== "";
}

/** @param {string} text */
function setInterim(text) {
  ui.interim.textContent = text;
  refreshButtons();
}

/**
 * @param {Record<string, any>} results
 * @param {import("./live-client.js").FinalTiming | null} timing
 */
function addFinal(results, timing) {
  setInterim("");
  const text = String(results.channel?.alternatives?.[0]?.transcript ?? "").trim();
  if (text === "") return; // an empty final only closes a flush; there is nothing to show
  const span = document.createElement("span");
  span.className = "final";
  span.textContent = text;
  // Seconds of this session's audio, and which session: for tests and for anyone inspecting.
  span.dataset.start = String(results.start);
  span.dataset.end = String(Number(results.start) + Number(results.duration));
  span.dataset.session = String(results.metadata?.request_id ?? "");
  // A real space between finals, so the element's text reads (and copies) as one passage.
  if (ui.transcript.childElementCount > 0) ui.transcript.append(" ");
  ui.transcript.append(span);
  showTiming(timing);
  refreshButtons();
}

/**
 * @param {import("./live-client.js").FinalTiming | null} timing
 */
function showTiming(timing) {
  if (timing === null || timing.afterAudioMs === null) return;
  ui.latency.textContent = `${Math.round(timing.afterAudioMs)} ms`;
  const afterSpeech = timing.afterSpeechMs;
  // Only worth a second figure when the final's audio ran on past its last word.
  ui.latencySpeech.textContent =
    afterSpeech !== null && afterSpeech - timing.afterAudioMs >= SECOND_FIGURE_MIN_MS
      ? `${Math.round(afterSpeech)} ms after the last word`
      : "";
}

/**
 * @param {Record<string, any>} message
 * @param {import("./live-client.js").FinalTiming | null} timing
 */
function onServerMessage(message, timing) {
  switch (message.type) {
    case "Results": {
      sawResults = true;
      showHint(null);
      const name = message.metadata?.model_info?.name;
      if (typeof name === "string") ui.model.textContent = name;
      if (message.is_final) addFinal(message, timing);
      else setInterim(String(message.channel?.alternatives?.[0]?.transcript ?? ""));
      break;
    }
    case "SpeechStarted":
      setSpeaking(true);
      break;
    case "UtteranceEnd":
      setSpeaking(false);
      if (!sawResults) {
        showHint(
          "Speech was detected, but no words came back: the server may be running without a transcriber (EARSHOT_TRANSCRIBER=none).",
        );
      }
      break;
    case "Metadata": {
      const info = Object.values(message.model_info ?? {})[0];
      if (info && typeof info.name === "string") ui.model.textContent = info.name;
      break;
    }
    case "Error":
      console.warn("server error message", message);
      showMessage(`The server reported an error: ${message.description ?? message.code}`);
      break;
    default:
      console.warn("unknown server message", message);
  }
}

/** @param {import("./live-client.js").ConnectionState} state */
function onConnectionState(state) {
  clearTimeout(slowConnectTimer);
  switch (state.kind) {
    case "connecting":
      setStatus(
        state.attempt === 0 ? "Connecting…" : `Connecting (attempt ${state.attempt + 1})…`,
        "busy",
      );
      // Only a first connection may wait for the model; a reconnect keeps its reason on screen.
      if (state.attempt === 0) {
        slowConnectTimer = setTimeout(() => {
          setStatus("Loading the speech model…", "busy");
          showMessage(
            "The first session after the server starts loads the speech model: a few seconds. Keep talking: your audio is kept and sent once connected.",
          );
        }, MODEL_LOAD_HINT_MS);
      }
      break;
    case "open":
      setStatus("Listening", "live");
      showMessage(null);
      break;
    case "reconnecting":
      setInterim(""); // that utterance's final will not come on a new connection
      setSpeaking(false);
      setStatus(
        `Reconnecting in ${(state.delayMs / 1000).toFixed(1)} s (attempt ${state.attempt})…`,
        "warn",
      );
      showMessage(state.reason);
      break;
    case "closing":
      setStatus("Finishing…", "busy");
      break;
    case "closed":
      finish("Stopped", "stopped", state.note);
      break;
    case "failed":
      finish("Not connected", "error", state.message);
      break;
  }
}

/**
 * Ends the run: releases the microphone, keeps the settled text, drops an unsettled interim.
 * @param {string} status
 * @param {string} state
 * @param {string | null} message
 */
function finish(status, state, message) {
  const ended = run;
  run = null;
  void ended?.mic.stop().catch((error) => console.error("microphone stop failed", error));
  setInterim("");
  setSpeaking(false);
  ui.level.value = 0;
  setStatus(status, state);
  showMessage(message);
  refreshButtons();
  ui.start.focus();
}

async function start() {
  if (run !== null) return;
  showMessage(null);
  showHint(null);
  sawResults = false;
  const format = ui.capture.value === "webm" ? "webm" : "pcm";
  const client = new LiveClient(
    { onState: onConnectionState, onMessage: onServerMessage },
    { format },
  );
  /** @param {import("./mic-capture.js").Frame} frame */
  const onFrame = (frame) => {
    // A frame can arrive after the run ended (stopping the microphone is asynchronous): ignore it.
    if (run === null) return;
    // The capture measured the level; the page only maps it to the meter.
    const db = 20 * Math.log10(Math.max(frame.rms, 1e-6));
    ui.level.value = Math.min(1, Math.max(0, 1 - db / METER_FLOOR_DB));
    client.sendFrame(frame.pcm, frame.capturedAt, frame.endSample);
  };
  const mic = format === "webm" ? new RecorderCapture(onFrame) : new MicCapture(onFrame);
  run = { mic, client };
  refreshButtons();
  setStatus("Requesting microphone…", "busy");
  try {
    await mic.start();
  } catch (error) {
    // Stop pressed while the microphone started: stopping it is what made start fail.
    if (run?.mic !== mic || run.stopping) return;
    console.error("microphone failed", error);
    run = null;
    setStatus("Microphone unavailable", "error");
    showMessage(describeMicError(error));
    refreshButtons();
    ui.start.focus();
    return;
  }
  if (run?.mic !== mic || run.stopping) {
    // Stop was pressed while the permission prompt was open, or the microphone started.
    await mic.stop();
    return;
  }
  client.start();
  ui.stop.focus();
}

async function stop() {
  const current = run;
  if (current === null) return;
  current.stopping = true;
  ui.stop.disabled = true;
  setStatus("Finishing…", "busy");
  // The worklet's partial last frame goes out before CloseStream.
  await current.mic.stop().catch((error) => console.error("microphone stop failed", error));
  if (current.client.running) await current.client.stop();
  // The client may have failed (its message is on screen) while the microphone stopped.
  else if (run === current) finish("Stopped", "stopped", null);
}

async function copy() {
  const text = finalsText();
  try {
    await navigator.clipboard.writeText(text);
    ui.copied.textContent = "Transcript copied to the clipboard.";
  } catch (error) {
    // No clipboard permission (or an insecure context): select the text so Ctrl+C works.
    console.warn("clipboard write failed", error);
    const range = document.createRange();
    range.selectNodeContents(ui.transcript);
    const selection = getSelection();
    selection?.removeAllRanges();
    selection?.addRange(range);
    ui.copied.textContent = "Copying was not allowed; the text is selected, press Ctrl+C.";
  }
  ui.copy.textContent = "Copied";
  setTimeout(() => {
    ui.copy.textContent = COPY_LABEL;
  }, COPIED_FEEDBACK_MS);
}

function clear() {
  ui.transcript.replaceChildren();
  ui.latency.textContent = "–";
  ui.latencySpeech.textContent = "";
  setInterim("");
  refreshButtons();
}

ui.start.addEventListener("click", () => void start());
ui.stop.addEventListener("click", () => void stop());
ui.copy.addEventListener("click", () => void copy());
ui.clear.addEventListener("click", clear);
refreshButtons();
