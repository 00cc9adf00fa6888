/**
 * Short-lived browser tokens: a JWT (RFC 7519) signed with HMAC-SHA256 through WebCrypto.
 *
 * A browser cannot set headers on a WebSocket, and a long-lived API key must never reach a page,
 * so a backend trades its key for a token (`POST /v1/auth/grant`) and hands that to the page,
 * which connects with `Sec-WebSocket-Protocol: bearer, <token>`. base64url and "." are legal in a
 * subprotocol token (RFC 6455 §4.1 / RFC 7230 tchar), so the JWT travels unchanged.
 *
 * Claims: `sub` = account id, `kid` = the id of the key that minted it (revoking that key, or
 * disabling the account, ends its tokens too: checked on every use), `aud` = what it is good for
 * (opening sockets only), `iat`/`exp` in seconds.
 */
import { base64url, fromBase64url } from "./api-keys";

/** Deepgram's grant default is 30 s: long enough to hand to a page and connect, short if leaked. */
export const DEFAULT_TOKEN_TTL_SECONDS = 30;
/** Upper bound on a requested TTL: 10 minutes. A token only opens sockets; it never needs long. */
export const MAX_TOKEN_TTL_SECONDS = 600;
/**
 * HMAC-SHA256 keys shorter than the 32-byte digest weaken it (RFC 2104 §3), so a shorter
 * EARSHOT_TOKEN_SECRET is a configuration error rather than a silent weak key.
 */
export const MIN_TOKEN_SECRET_CHARS = 32;
/** The only audience this service mints: a token that opens `/v1/listen` sockets. */
export const TOKEN_AUDIENCE = "earshot:listen";
/**
 * A JWT from this service is ~300 characters (header 36 + claims ~150 + signature 43, base64url);
 * anything far longer is not ours and is refused before any decoding or crypto.
 */
const MAX_TOKEN_CHARS = 1024;
/** `iat` may be this far in the future: isolates' clocks are NTP-synced but not identical. */
const MAX_CLOCK_SKEW_SECONDS = 5;

/** The fixed header; verifying compares it byte for byte, so `alg: none` and friends never pass. */
const HEADER = base64url(new TextEncoder().encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));

export interface AccessTokenClaims {
  /** Account id. */
  sub: string;
  /** Id of the API key that minted the token. */
  kid: string;
  aud: typeof TOKEN_AUDIENCE;
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expires at, seconds since the epoch (exclusive). */
  exp: number;
}

export type TokenVerification =
  | { ok: true; claims: AccessTokenClaims }
  | { ok: false; reason: "malformed" | "signature" | "expired" };

/** Thrown when EARSHOT_TOKEN_SECRET is missing or too short; callers answer 503, not 401. */
export class TokenSecretError extends Error {
  override name = "TokenSecretError";
}

/** One imported key per isolate (importKey is async and not free); re-imported if the secret changes. */
let cachedKey: { secret: string; key: Promise<CryptoKey> } | null = null;

function hmacKey(secret: string | undefined): Promise<CryptoKey> {
  if (secret === undefined || secret.length < MIN_TOKEN_SECRET_CHARS) {
    throw new TokenSecretError(
      `EARSHOT_TOKEN_SECRET must be set to at least ${MIN_TOKEN_SECRET_CHARS} characters`,
    );
  }
  if (cachedKey?.secret !== secret) {
    const key = crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    cachedKey = { secret, key };
  }
  return cachedKey.key;
}

/** Mints a token for `accountId`, bound to the key `keyId`, valid for `ttlSeconds` from `nowMs`. */
export async function signAccessToken(
  secret: string | undefined,
  grant: { accountId: string; keyId: string; ttlSeconds: number; nowMs: number },
): Promise<string> {
  const key = await hmacKey(secret);
  const iat = Math.floor(grant.nowMs / 1000);
  const claims: AccessTokenClaims = {
    sub: grant.accountId,
    kid: grant.keyId,
    aud: TOKEN_AUDIENCE,
    iat,
    exp: iat + grant.ttlSeconds,
  };
  const signingInput = `${HEADER}.${base64url(new TextEncoder().encode(JSON.stringify(claims)))}`;
  const signature = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(signingInput));
  return `${signingInput}.${base64url(new Uint8Array(signature))}`;
}

/**
 * Checks a token's signature (constant-time, by WebCrypto), shape and expiry at `nowMs`. Does not
 * look at the database: the caller checks that the key and account are still live.
 */
export async function verifyAccessToken(
  secret: string | undefined,
  token: string,
  nowMs: number,
): Promise<TokenVerification> {
  const key = await hmacKey(secret);
  if (token.length > MAX_TOKEN_CHARS) return { ok: false, reason: "malformed" };
  const parts = token.split(".");
  const [header, payload, signature] = parts;
  if (parts.length !== 3 || header !== HEADER || payload === undefined || signature === undefined) {
    return { ok: false, reason: "malformed" };
  }
  const signatureBytes = fromBase64url(signature);
  if (signatureBytes === null) return { ok: false, reason: "malformed" };
  const valid = await crypto.subtle.verify(
    "HMAC",
    key,
    signatureBytes,
    new TextEncoder().encode(`${header}.${payload}`),
  );
  if (!valid) return { ok: false, reason: "signature" };
  // The signature is ours, so the payload is JSON we wrote; still check every field's type.
  const claims = parseClaims(payload);
  if (claims === null) return { ok: false, reason: "malformed" };
  const nowSeconds = nowMs / 1000;
  if (
    nowSeconds >= claims.exp ||
    claims.iat > nowSeconds + MAX_CLOCK_SKEW_SECONDS ||
    claims.exp - claims.iat > MAX_TOKEN_TTL_SECONDS
  ) {
    return { ok: false, reason: "expired" };
  }
  return { ok: true, claims };
}

function parseClaims(payload: string): AccessTokenClaims | null {
  const bytes = fromBase64url(payload);
  if (bytes === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    // Not JSON: a malformed token, reported to the caller as such (never a 500).
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { sub, kid, aud, iat, exp } = value as Record<string, unknown>;
  if (
    typeof sub !== "string" ||
    typeof kid !== "string" ||
    aud !== TOKEN_AUDIENCE ||
    typeof iat !== "number" ||
    typeof exp !== "number"
  ) {
    return null;
  }
  return { sub, kid, aud, iat, exp };
}
