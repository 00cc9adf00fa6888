/** The soak's progress lines (stderr, with the seconds since it started), its clock, its errors. */
const started = performance.now();

export function elapsedSeconds(): number {
  return (performance.now() - started) / 1000;
}

export function log(message: string): void {
  console.error(`[soak +${elapsedSeconds().toFixed(0)}s] ${message}`);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
