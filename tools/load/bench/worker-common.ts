/**
 * What the two bench workers (tools/load/bench/vad-worker.ts, tools/load/bench/whisper-worker.ts)
 * share: their timing and their request routing. Runs in workerd.
 *
 * Timing: on Cloudflare, workerd freezes `Date.now()` / `performance.now()` while JS runs (Spectre
 * mitigation) and advances them only across I/O, and the clock has 1 ms resolution. So measured
 * work is closed by an I/O boundary (`tick`): the reading after the boundary is the time the work
 * finished, whether or not the local clock is frozen (the vad bench's /clock reports which).
 */

/** Crosses an I/O boundary (a timer) and reads the clock on the far side of it. */
export async function tick(): Promise<number> {
  await scheduler.wait(0);
  return performance.now();
}

type Route<Env> = (request: Request, url: URL, env: Env) => Promise<Response>;

/**
 * A worker's fetch handler from routes keyed "METHOD /path": 404 for any other request, and a
 * failure's stack as the 500 body, which the bench prints: a broken run must say why.
 */
export function router<Env = unknown>(
  routes: Record<string, Route<Env>>,
): ExportedHandlerFetchHandler<Env> {
  return async (request, env) => {
    const url = new URL(request.url);
    const route = routes[`${request.method} ${url.pathname}`];
    if (route === undefined) return new Response("not found", { status: 404 });
    try {
      return await route(request, url, env);
    } catch (error) {
      const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
      return new Response(detail, { status: 500 });
    }
  };
}
