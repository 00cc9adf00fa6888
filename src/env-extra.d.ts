// Optional configuration that is neither a [vars] entry (which would ship to production) nor a
// required secret (wrangler.toml [secrets]).
interface Env {
  /** "on" enables the demo page's token route (local development only; scripts/dev.ts sets it). */
  EARSHOT_DEMO_TOKENS?: string;
  /**
   * "on" starts each utterance's final at the first silence after speech (src/stt/whisper-
   * transcriber.ts, "Early finals"). Off by default: the final then leaves out the silence after
   * the speech, which changes Whisper's words on some clips (dev WER 0.077 → 0.088, measured).
   */
  EARSHOT_EARLY_FINALS?: string;
}
