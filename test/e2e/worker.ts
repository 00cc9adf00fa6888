/**
 * The worker under the browser test while src/index.ts does not mount the demo routes yet: the
 * real app, with `/dev` mounted in front of it exactly as the one-line mount in src/index.ts will
 * (global-setup.ts switches to src/index.ts as soon as it mounts them).
 */
import { Hono } from "hono";
import app from "../../src/index";
import { devTokenRoutes } from "../../src/routes/dev-token";

export * from "../../src/index";

const withDemoRoutes = new Hono<{ Bindings: Env }>();
withDemoRoutes.route(
  "/dev",
  devTokenRoutes((request, env, ctx) => app.fetch(request, env, ctx)),
);
withDemoRoutes.all("*", (c) => app.fetch(c.req.raw, c.env, c.executionCtx));

export default withDemoRoutes satisfies ExportedHandler<Env>;
