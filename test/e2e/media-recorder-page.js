// @ts-check
// The whole page of media-recorder.e2e.ts, run on the server's origin: what a web app built on
// Deepgram's browser example does. The microphone through MediaRecorder, each `dataavailable` blob
// sent as it is over a WebSocket opened with no `encoding` and no `sample_rate` (the key as the
// `token` subprotocol), CloseStream once the recorder stopped, then wait for the server's close.
// It keeps what it sent and what it received, for the test to compare with the server's Metadata.

/**
 * @typedef {object} RecordOptions
 * @property {string} url ws://…/v1/listen?… (no encoding, no sample_rate)
 * @property {string} apiKey
 * @property {string} mimeType e.g. "audio/webm;codecs=opus"
 * @property {number} timesliceMs MediaRecorder.start's timeslice
 * @property {number} recordMs how long the recorder runs (wall time)
 * @property {number} closeTimeoutMs how long to wait for the server's close after CloseStream
 * @property {boolean | MediaTrackConstraints} audio getUserMedia's audio constraints
 */

/** @param {Uint8Array} bytes */
function toBase64(bytes) {
  let binary = "";
  // 32 KiB at a time: String.fromCharCode takes its bytes as arguments, and those are bounded.
  for (let at = 0; at < bytes.length; at += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  }
  return btoa(binary);
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @param {RecordOptions} options */
async function recordAndSend(options) {
  const started = performance.now();
  const now = () => Math.round(performance.now() - started);
  const stream = await navigator.mediaDevices.getUserMedia({ audio: options.audio });
  const socket = new WebSocket(options.url, ["token", options.apiKey]);
  /** @type {{ t: number, data: string }[]} */
  const received = [];
  socket.addEventListener("message", (event) => {
    received.push({ t: now(), data: String(event.data) });
  });
  /** @type {Promise<{ t: number, code: number, reason: string }>} */
  const closed = new Promise((resolve) => {
    socket.addEventListener("close", (event) => {
      resolve({ t: now(), code: event.code, reason: event.reason });
    });
  });
  const open = await Promise.race([
    new Promise((resolve) => socket.addEventListener("open", () => resolve(true))),
    closed.then(() => false),
  ]);
  if (!open) throw new Error(`the socket closed before it opened: ${JSON.stringify(received)}`);

  const recorder = new MediaRecorder(stream, { mimeType: options.mimeType });
  /** @type {Blob[]} */
  const blobs = [];
  /** @type {number[]} */
  const blobTimes = [];
  recorder.addEventListener("dataavailable", (event) => {
    if (event.data.size === 0) return;
    blobs.push(event.data);
    blobTimes.push(now());
    // A Blob, as Deepgram's example sends it; the socket sends queued blobs in order.
    socket.send(event.data);
  });
  const stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve));
  recorder.start(options.timesliceMs);
  const recordingFrom = now();
  await sleep(options.recordMs);
  recorder.stop();
  await stopped; // the last dataavailable comes before stop
  const recordingTo = now();
  for (const track of stream.getTracks()) track.stop();
  socket.send(JSON.stringify({ type: "CloseStream" }));
  const close = await Promise.race([closed, sleep(options.closeTimeoutMs).then(() => null)]);
  const bytes = new Uint8Array(await new Blob(blobs).arrayBuffer());
  return {
    mimeType: recorder.mimeType,
    blobSizes: blobs.map((blob) => blob.size),
    blobTimes,
    recordingMs: recordingTo - recordingFrom,
    bytesBase64: toBase64(bytes),
    received,
    close,
  };
}

Object.assign(window, { recordAndSend });
