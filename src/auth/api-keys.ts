/**
 * API keys and ids: generation and the one-way hash stored in D1.
 *
 * Why a plain SHA-256 with no salt and no slow hash (bcrypt/scrypt/argon2): those defend
 * low-entropy secrets (passwords) against guessing, offline from a leaked table. A generated key
 * carries 256 random bits, so there is nothing to guess: inverting SHA-256 or searching 2^256
 * candidates is infeasible with or without a salt, and a salt would only stop us finding the
 * row by its hash (an indexed `WHERE key_hash = ?`). Fast hashing also keeps the handshake cheap.
 * The local demo key (`earshot-demo-key`) is the one low-entropy key; it is public by design.
 */

/** Bytes of randomness in a generated key: 32 bytes = 256 bits. */
export const API_KEY_RANDOM_BYTES = 32;
/** Prefix that makes a leaked key recognisable (secret scanners, logs): "earshot secret key". */
export const API_KEY_PREFIX = "esk_";
/** Bytes of randomness in account and key ids: 12 bytes = 96 bits, 16 base64url characters. */
const ID_RANDOM_BYTES = 12;

/** base64url without padding (RFC 4648 §5): safe in URLs, headers and WebSocket subprotocols. */
export function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url (no padding); null when the text is not base64url. */
export function fromBase64url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const padded =
    text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function randomBytes(count: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(count));
}

/** A new API key: `esk_` + 43 base64url characters (32 random bytes). */
export function generateApiKey(): string {
  return API_KEY_PREFIX + base64url(randomBytes(API_KEY_RANDOM_BYTES));
}

/** A new opaque id such as `acc_Xy3...` or `key_Q9...` (96 random bits). */
export function generateId(prefix: "acc" | "key"): string {
  return `${prefix}_${base64url(randomBytes(ID_RANDOM_BYTES))}`;
}

/** The stored form of a key: lowercase hex SHA-256 of its UTF-8 bytes (64 characters). */
export async function hashApiKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
