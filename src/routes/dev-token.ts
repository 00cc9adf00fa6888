/**
 * Local-only routes for the demo page (public/), mounted at `/dev`. OFF unless
 * `EARSHOT_DEMO_TOKENS = "on"`: wrangler.toml's [vars] ship "off" to production
 * (test/deploy-config.test.ts), and tools/dev/dev.ts writes "on" into the local .dev.vars, which
 * `wrangler dev` reads for declared vars only — hence the declaration. When off, every route
 * answers exactly what an unknown path does (404 NOT_FOUND), so a deployment does not even reveal
 * that they exist.
 *
 *   POST /dev/token      → {access_token, expires_in}: a bearer token for the demo account's key,
 *                          so the page never holds an API key (Deepgram's grant shape).
 *   POST /dev/handshake  {access_token, query} → {status, err_code?, err_msg?, retry_after?}: why
 *                          the server refuses a `/v1/listen` handshake. A browser's WebSocket hides
 *                          the HTTP status of a refused upgrade (it only sees close code 1006), so
 *                          the page asks the worker to replay the same handshake in-process and
 *                          read the answer (401, 429, 400, 503…). When the replay is accepted, its
 *                          socket is closed at once (the session it opened ends with no audio) and
 *                          the answer is `{status: 101}`: the earlier failure was transient. (A
 *                          probed resume is closed like a dropped connection instead, so the
 *                          session it attached to waits for the page's own resume.)
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { findKeyById } from "../accounts/account-store";
import { DEMO_ACCOUNT_ID, DEMO_KEY_ID } from "../accounts/demo-seed";
import { signAccessToken, TokenSecretError } from "../auth/access-token";
import { httpError, serviceUnavailable } from "../protocol/http-errors";
import { readBoundedText } from "../runtime/bounded-body";
import { createLogger } from "../runtime/log";
import { probeRequest } from "./listen";

/**
 * Lifetime of a demo token, seconds. The page asks for a fresh one before every connection
 * attempt, so it only has to outlive one handshake; 60 s leaves room for a slow first load of the
 * model on the server without making a leaked token worth much.
 */
export const DEMO_TOKEN_TTL_SECONDS = 60;

/**
 * Largest `/dev/handshake` body: a token (≤ 1 024 characters, the verifier's own cap) plus a query
 * string (≤ 2 048 characters, far more than every listen option at once, ~300) plus JSON framing.
 * 4 KiB bounds what the route buffers and parses.
 */
const MAX_PROBE_BODY_BYTES = 4096;
const MAX_PROBE_QUERY_CHARS = 2048;
const MAX_PROBE_TOKEN_CHARS = 1024;

/** What these routes read from the worker's environment. */
export interface DevTokenEnv {
  /** The account store, to check the demo key is seeded and live before minting for it. */
  DB: D1Database;
  /** HMAC secret for access tokens (at least 32 characters). */
  EARSHOT_TOKEN_SECRET?: string;
  /** Exactly "on" enables these routes; anything else (or unset) leaves them 404. */
  EARSHOT_DEMO_TOKENS?: string;
}

/**
 * The worker's own request handler, used to replay a handshake in-process, e.g.
 * `(request, env, ctx) => app.fetch(request, env, ctx)`. Passed in rather than imported so the
 * replay goes through exactly the routing and middleware a real client meets.
 */
export type Handshake = (
  request: Request,
  env: DevTokenEnv,
  ctx: HonoExecutionContext | undefined,
) => Response | Promise<Response>;

/** Hono's view of the runtime's ExecutionContext (what `app.fetch` takes). */
type HonoExecutionContext = Context["executionCtx"];

/** What `/dev/handshake` reports: the replayed handshake's status and, for a refusal, its body. */
export interface HandshakeReport {
  status: number;
  err_code?: string;
  err_msg?: string;
  retry_after?: number;
}

type DevContext = { Bindings: DevTokenEnv };

const log = createLogger({ route: "dev" });

function notFound(method: string, path: string): Response {
  // Same words as the worker's notFound handler (src/index.ts), so "off" looks like "absent".
  return httpError(404, "NOT_FOUND", `no route for ${method} ${path}`, crypto.randomUUID());
}

function jsonNoStore(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}

const enabled: MiddlewareHandler<DevContext> = async (c, next) => {
  if (c.env.EARSHOT_DEMO_TOKENS !== "on") {
    return notFound(c.req.method, new URL(c.req.url).pathname);
  }
  await next();
};

async function readProbeBody(
  request: Request,
): Promise<{ ok: true; token: string; query: string } | { ok: false; message: string }> {
  const body = await readBoundedText(request, MAX_PROBE_BODY_BYTES);
  if (!body.ok) return { ok: false, message: `body is larger than ${MAX_PROBE_BODY_BYTES} bytes` };
  const text = body.text;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `body is not JSON (${String(error)})` };
  }
  if (typeof value !== "object" || value === null) {
    return { ok: false, message: "body must be a JSON object {access_token, query}" };
  }
  const { access_token: token, query } = value as Record<string, unknown>;
  if (typeof token !== "string" || token.length === 0 || token.length > MAX_PROBE_TOKEN_CHARS) {
    return { ok: false, message: `access_token must be a string of 1..${MAX_PROBE_TOKEN_CHARS}` };
  }
  if (typeof query !== "string" || query.length > MAX_PROBE_QUERY_CHARS) {
    return { ok: false, message: `query must be a string of at most ${MAX_PROBE_QUERY_CHARS}` };
  }
  return { ok: true, token, query: query.replace(/^\?/, "") };
}

/** Reads a refusal's Deepgram-shaped JSON body; a body that is not one is reported, not hidden. */
async function refusalReport(response: Response): Promise<HandshakeReport> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    const report: HandshakeReport = { status: response.status };
    if (typeof body.err_code === "string") report.err_code = body.err_code;
    if (typeof body.err_msg === "string") report.err_msg = body.err_msg;
    if (typeof body.retry_after === "number") report.retry_after = body.retry_after;
    return report;
  } catch {
    return { status: response.status, err_msg: text.slice(0, 200) };
  }
}

/**
 * The `/dev` sub-app. Mount it in the worker with
 * `app.route("/dev", devTokenRoutes((request, env, ctx) => app.fetch(request, env, ctx)))`.
 */
export function devTokenRoutes(handshake: Handshake): Hono<DevContext> {
  const routes = new Hono<DevContext>();

  routes.onError((error, c) => {
    log.error("dev route failed", { path: c.req.path, error });
    if (error instanceof TokenSecretError) {
      return serviceUnavailable(crypto.randomUUID(), undefined, error.message);
    }
    return serviceUnavailable(crypto.randomUUID(), 1, `dev route failed: ${String(error)}`);
  });

  routes.post("/token", enabled, async (c) => {
    const key = await findKeyById(c.env.DB, DEMO_KEY_ID);
    if (key === null) {
      return serviceUnavailable(
        crypto.randomUUID(),
        undefined,
        "the demo account is not in the local database: run `npm run dev:setup` (npm run dev does)",
      );
    }
    if (key.keyRevoked || key.accountDisabled) {
      return httpError(
        403,
        "FORBIDDEN",
        `the demo key is ${key.keyRevoked ? "revoked" : "on a disabled account"}`,
        crypto.randomUUID(),
      );
    }
    const accessToken = await signAccessToken(c.env.EARSHOT_TOKEN_SECRET, {
      accountId: DEMO_ACCOUNT_ID,
      keyId: DEMO_KEY_ID,
      ttlSeconds: DEMO_TOKEN_TTL_SECONDS,
      nowMs: Date.now(),
    });
    return jsonNoStore({ access_token: accessToken, expires_in: DEMO_TOKEN_TTL_SECONDS });
  });

  routes.post("/handshake", enabled, async (c) => {
    const body = await readProbeBody(c.req.raw);
    if (!body.ok) return httpError(400, "Bad Request", body.message, crypto.randomUUID());
    const url = new URL(c.req.url);
    url.pathname = "/v1/listen";
    url.search = body.query;
    const request = probeRequest(
      new Request(url, {
        headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": `bearer, ${body.token}` },
      }),
    );
    let ctx: HonoExecutionContext | undefined;
    try {
      ctx = c.executionCtx;
    } catch {
      ctx = undefined; // Hono throws when the runtime gave none (unit tests); the worker has one
    }
    const response = await handshake(request, c.env, ctx);
    // 204: a resume that would be admitted; the session was asked, not attached (listen.ts).
    if (response.status === 204) return jsonNoStore({ status: 101 } satisfies HandshakeReport);
    if (response.status !== 101) return jsonNoStore(await refusalReport(response));
    // A new session's handshake really opened one: close it at once, as its client would.
    const socket = response.webSocket;
    if (socket !== null) {
      socket.accept();
      socket.close(1000, "handshake probe");
    }
    const report: HandshakeReport = { status: 101 };
    return jsonNoStore(report);
  });

  return routes;
}
