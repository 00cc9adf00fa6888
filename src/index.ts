/**
 * The Earshot worker: routes HTTP and WebSocket handshakes; holds no session state.
 * Static files (the demo page in public/) are served by the assets binding before this runs.
 */
import { Hono } from "hono";
import { httpError } from "./protocol/http-errors";
import { accountRoutes } from "./routes/account-api";
import { adminRoutes } from "./routes/admin";
import { devTokenRoutes } from "./routes/dev-token";
import { isolateStatsRoutes } from "./routes/isolate-stats";
import { listen } from "./routes/listen";
import { createLogger } from "./runtime/log";

export { AccountLimiter } from "./limits/account-limiter";
export { SessionObject } from "./session/session-object";

const app = new Hono<{ Bindings: Env }>();

app.get("/v1/listen", listen);
app.all("/v1/listen", () =>
  httpError(405, "METHOD_NOT_ALLOWED", "use GET with Upgrade: websocket", crypto.randomUUID()),
);
app.route("/admin", adminRoutes);
// After the admin API, whose `*` middleware then authenticates it too (test/isolate-stats).
app.route("/admin/isolate", isolateStatsRoutes);
app.route("/v1", accountRoutes);
// The demo page's local-only routes: 404 unless EARSHOT_DEMO_TOKENS=on ("off" in wrangler.toml,
// "on" in the .dev.vars that npm run dev writes).
app.route(
  "/dev",
  devTokenRoutes((request, env, ctx) => app.fetch(request, env, ctx)),
);
app.notFound((c) =>
  httpError(
    404,
    "NOT_FOUND",
    `no route for ${c.req.method} ${new URL(c.req.url).pathname}`,
    crypto.randomUUID(),
  ),
);
app.onError((error, c) => {
  createLogger().error("unhandled", { method: c.req.method, path: c.req.path, error });
  return httpError(500, "INTERNAL_ERROR", "internal error", crypto.randomUUID());
});

export default app satisfies ExportedHandler<Env>;
