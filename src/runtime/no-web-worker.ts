/**
 * Stands in for `@eshaz/web-worker` in the worker's bundle (wrangler.toml [alias], and the same
 * alias in vitest.config.ts).
 *
 * `opus-decoder` imports its Web Worker variant with its main decoder, and that variant's module
 * evaluates `class extends (globalThis.Worker || NodeWorker)` on load. The package's browser build
 * is `module.exports = Worker`, a ReferenceError in workerd (no Worker global), and its Node build
 * loads worker_threads. Earshot only uses the synchronous OpusDecoder, so the Worker variant gets
 * this class, which refuses to be constructed.
 */
export default class NoWebWorker {
  constructor() {
    throw new Error("Web Workers are not available in workerd; use OpusDecoder, not its worker");
  }
}
