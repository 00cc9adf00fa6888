import type { Logger } from "./log";

/**
 * Runs async work that nobody awaits (started from a socket handler or a timer) under a label, so
 * a failure is logged with its context instead of vanishing as an unhandled rejection.
 * `onError` lets the caller also act on it (e.g. close the session with an error code).
 */
export function runBackground(
  log: Logger,
  label: string,
  work: () => Promise<unknown>,
  onError?: (error: unknown) => void,
): void {
  void work().catch((error: unknown) => {
    log.error("background task failed", { task: label, error });
    onError?.(error);
  });
}
