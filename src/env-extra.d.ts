// Bindings that are not in wrangler.toml: secrets and .dev.vars values (optional by design).
interface Env {
  /** Local development only: an API key accepted for the demo account (see scripts/dev.ts). */
  EARSHOT_DEMO_KEY?: string;
}
