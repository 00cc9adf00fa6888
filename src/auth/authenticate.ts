/**
 * Who is calling. The handshake and the HTTP API depend only on `authenticate`; the account store
 * behind it can change (the accounts issue replaces the demo key with D1-backed keys and tokens).
 */
import type { Credential } from "./credentials";

export interface AccountLimits {
  /** Simultaneous sessions the account may hold. */
  maxConcurrentSessions: number;
  /** Longest a single session may run, in seconds; null = the service-wide cap only. */
  maxSessionSeconds: number | null;
}

export interface Principal {
  accountId: string;
  via: "key" | "bearer";
  limits: AccountLimits;
}

export interface AuthEnv {
  /** Local development only (.dev.vars): an API key accepted for the `demo` account. */
  EARSHOT_DEMO_KEY?: string;
}

export const DEMO_ACCOUNT_ID = "demo";
const DEMO_LIMITS: AccountLimits = { maxConcurrentSessions: 50, maxSessionSeconds: null };

/** Resolves a credential to an account, or null when it is not valid. */
export async function authenticate(
  env: AuthEnv,
  credential: Credential,
): Promise<Principal | null> {
  const demoKey = env.EARSHOT_DEMO_KEY;
  if (
    credential.scheme === "token" &&
    demoKey &&
    (await constantTimeEqual(credential.secret, demoKey))
  ) {
    return { accountId: DEMO_ACCOUNT_ID, via: "key", limits: DEMO_LIMITS };
  }
  return null;
}

/** Compares secrets by their SHA-256 digests so the time taken does not depend on the secret. */
async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [da, db] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(da, db);
}
