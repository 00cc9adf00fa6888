// Optional configuration that is neither a [vars] entry (which would ship to production) nor a
// required secret (wrangler.toml [secrets]).
interface Env {
  /** "on" enables the demo page's token route (local development only; scripts/dev.ts sets it). */
  EARSHOT_DEMO_TOKENS?: string;
}
