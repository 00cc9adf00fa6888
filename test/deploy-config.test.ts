/**
 * The demo page's token routes as a deployment has them: the worker runs here with wrangler.toml's
 * own [vars] (vitest.config.ts overrides other names, never EARSHOT_DEMO_TOKENS), which is exactly
 * what `wrangler deploy` ships — a deployment never reads .dev.vars. test/e2e/deploy.e2e.ts checks
 * the same value in `wrangler deploy --dry-run`'s own list of bindings.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEMO_KEY } from "./helpers/client";

describe("the deployed configuration", () => {
  it("ships EARSHOT_DEMO_TOKENS as off", () => {
    expect(env.EARSHOT_DEMO_TOKENS).toBe("off");
  });

  it("answers 404 on the demo token routes, as for any unknown path", async () => {
    const token = await exports.default.fetch("http://earshot.test/dev/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(token.status).toBe(404);
    const handshake = await exports.default.fetch("http://earshot.test/dev/handshake", {
      method: "POST",
      headers: { "content-type": "application/json", Authorization: `Token ${DEMO_KEY}` },
      body: JSON.stringify({ access_token: "x", query: "encoding=linear16" }),
    });
    expect(handshake.status).toBe(404);
    const unknown = await exports.default.fetch("http://earshot.test/dev/nothing-here", {
      method: "POST",
    });
    expect(unknown.status).toBe(404);
    expect(await token.json()).toMatchObject({ err_code: "NOT_FOUND" });
  });
});
