/**
 * The browser test (`npm run test:e2e`): runs in Node, not in workerd, so it is kept out of the
 * main suite (test/*.test.ts) by its own file suffix, `.e2e.ts`.
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ["**/*.e2e.ts"],
    environment: "node",
    globalSetup: ["./global-setup.ts"],
    // One browser and one server for the whole run; files share them, so run files one by one.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 90_000,
  },
});
