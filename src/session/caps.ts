/**
 * Every limit a session enforces, with its arithmetic and what happens at it. Tests exercise each
 * (test/session-*.test.ts).
 */

/**
 * Largest binary frame: 256 KiB ≈ 2.7 s of 48 kHz PCM16 mono (48 000 × 2 = 96 000 B/s) or 8.2 s at
 * 16 kHz. Deepgram clients send 20–250 ms per frame; a larger frame is a client bug, and one frame
 * is processed as a whole, so it bounds the work a single message can queue.
 * At the cap: close 1009 (message too big), nothing of the frame is kept.
 */
export const MAX_FRAME_BYTES = 256 * 1024;

/**
 * Audio received but not yet processed, in seconds of the client's audio: 20 s, i.e. at most
 * 20 × 48 000 × 2 = 1.92 MB per session at the highest rate. A client may stream faster than real
 * time (uploading a file), but a session that falls this far behind is being flooded.
 * At the cap: close 1008 with reason BUF-0000; audio already accepted is still processed first.
 */
export const MAX_QUEUED_AUDIO_SECONDS = 20;
// Under container detection (no encoding, no sample_rate) the byte cap is the default format's
// (20 s × 32 000 B/s = 640 000 B): a 48 kHz stereo WAV (192 000 B/s) may run 3.3 s ahead, not
// 20 s. A WAV header is held up to MAX_WAV_HEADER_BYTES (64 KiB, src/audio/wav-header.ts).

/**
 * Messages (audio frames, Finalize) waiting in a session's queue: 2 000, i.e. 20 s of the smallest
 * sensible frames (10 ms). The byte cap alone does not bound memory: a queued task costs about
 * 650 bytes of V8 heap whatever its size (600 000 one-byte tasks measured 389 MB in V8), so
 * 640 000 one-byte frames would fit under the 640 000-byte cap and take ~415 MB, and Finalize
 * carries no bytes at all. 2 000 tasks ≈ 1.3 MB. At the cap: close 1008 BUF-0000, as for bytes.
 */
export const MAX_QUEUED_TASKS = 2_000;

/**
 * The byte cap for a format of `bytesPerSecond`: MAX_QUEUED_AUDIO_SECONDS of it (e.g. 20 × 16 000
 * × 2 = 640 000 bytes of linear16 at 16 kHz), but never below two of the largest frames: at 8 kHz
 * µ-law, 20 s is only 160 000 bytes, less than one legal 256-KiB frame, which must not read as a
 * flood.
 */
export function maxQueuedBytes(bytesPerSecond: number): number {
  return Math.max(MAX_QUEUED_AUDIO_SECONDS * bytesPerSecond, 2 * MAX_FRAME_BYTES);
}

/**
 * Why queuing one more task with `audioBytes` of audio would pass a queue cap (the close reason's
 * detail, naming the cap), or null when it would not.
 */
export function floodDetail(
  queue: { readonly pendingAudioBytes: number; readonly pendingTasks: number },
  audioBytes: number,
  maxBytes: number,
): string | null {
  if (queue.pendingAudioBytes + audioBytes > maxBytes) {
    return `more than ${MAX_QUEUED_AUDIO_SECONDS} s of audio queued; send at most real time`;
  }
  if (queue.pendingTasks >= MAX_QUEUED_TASKS) {
    return `more than ${MAX_QUEUED_TASKS} messages queued; send at most real time, 20-250 ms a frame`;
  }
  return null;
}

/**
 * Longest utterance one final covers: 15 s of 16 kHz audio. Whisper could take 29 s (a 30-s window
 * with 1 s of padding), but memory decides: the decoder's cross-attention cache grows with the
 * window and is copied into ORT's heap on every step. Measured in workerd (test/whisper-session):
 * windows up to 12.7 s peak at 87.3 MiB of heap, 25-s windows at 104.8 MiB — over the tests'
 * 100 MB ceiling inside a 128 MB isolate. Past MAX_UTTERANCE_SOFT_SECONDS an utterance ends at its
 * next pause, when speech comes back after it (early finals with endpointing up to 1 s,
 * early-finals.ts; otherwise the pipeline cuts at the first quiet frame), so a word is not split;
 * at the hard cap it cuts anyway. The audio after a
 * cut continues as the next utterance: no sample is lost or fed twice.
 */
export const MAX_UTTERANCE_SECONDS = 15;
export const MAX_UTTERANCE_SOFT_SECONDS = 11;

/**
 * Longest a session may run, wall time: 4 h, unless the account's limit is lower. It bounds what a
 * forgotten client can cost. At the cap: flush, Metadata, close 1000 with reason MAX-0000 (a normal
 * close, so Deepgram's SDK does not reconnect).
 */
export const MAX_SESSION_SECONDS = 4 * 60 * 60;

/** Default idle timeout (Deepgram's): nothing received for 10 s → close 1011 NET-0001. */
export const DEFAULT_IDLE_TIMEOUT_MS = 10_000;

/**
 * How long a resumable session waits for its client after the connection drops: 30 s. Long enough
 * for a Wi-Fi-to-cellular handover or a laptop waking up (a few seconds) with room to spare; short
 * enough that a client that is really gone gives its concurrency slot back soon (the slot is held
 * while the session waits: it is still transcribing what it received). After it: the session ends
 * as if the client had closed, its finals stored, and a resume is refused 410.
 */
export const RESUME_WINDOW_MS = 30_000;

/**
 * A resumable session acknowledges held audio about once a second of audio (EarshotAck): the
 * client keeps at most ~1 s plus what is in flight to re-send after a drop, for a message a second
 * — next to tens of audio frames a second.
 */
export const ACK_EVERY_AUDIO_SECONDS = 1;

/**
 * Sessions one isolate runs at once when they transcribe with Whisper: 12. An isolate has one
 * thread, and every session's VAD and Whisper share it (one inference at a time). Measured with
 * `EARSHOT_BENCH_SECTIONS=capacity npm run bench` on the 2-core machine (one local isolate,
 * real-time sessions with interims, endpointing=300, ~40 s of dev clips each;
 * tools/load/bench/capacity.ts), speech end → final p95, with Silero prepared (2026-12-05, night,
 * three runs): 11 sessions 731 ms; 12 1485, 1178, 1456, 1449, 1615, 1483 — sustained (every final
 * equal to the session's alone, p95 ≤ 1.5 s) at 12 five times of six, the sixth 8 % over. With the
 * stock Silero, a run between the first two: 11 758; 12 1433, 1552 (one of two). Earlier caps
 * waited for every run to pass; this one does not, on purpose: at 12 no final changed and no
 * session failed in any run, the soak at 12 passes (below), and a twelfth caller answered a little
 * late at the p95 is served better than one refused. The margin is thin on this 2-core machine.
 * (Before, 11 in every run: 12 1584, 1869 after the log-sum-exp moved into the projection kernel;
 * 10 with the kernel alone; 8 before it.) Past it the isolate degrades without failing (at 14: no
 * session lost, no final changed, the p95 3.1 s), but every session of the isolate waits longer, so
 * at the cap: 503 at the handshake with Retry-After (PROTOCOL.md: "503 when the service itself is
 * full"); sessions already running are untouched. (The cap was 6 until 2026-12-04, 8, 10 and 11 on
 * 12-05.) Memory with 12 sessions live: JS heap in use 18.4 MiB (garbage included) + every
 * WebAssembly memory (ORT's heap and the projection kernel's) 68.3 MiB = 86.6 MiB, under 128 MB.
 * The soak at 12 (`npm run soak -- --launch whisper --sessions 12 --seconds 90`, seed 1: four
 * real-time sessions, two at 2× real time, three with pauses, three resumable with drops) passes:
 * 194 finals, every one equal to its session's alone, 6 drops all resumed, last audio byte →
 * final p50 733 / p95 1867 / max 4417 ms (endpointing's 300–800 ms included; the soak at 11
 * before: 712 / 1897 / 4289). The two 2× sessions make it ~14 real-time sessions' work.
 * `EARSHOT_MAX_SESSIONS_PER_ISOLATE` overrides it (any transcriber; the fake and "none"
 * transcribers cost almost nothing and have no cap by default).
 */
export const MAX_WHISPER_SESSIONS_PER_ISOLATE = 12;
