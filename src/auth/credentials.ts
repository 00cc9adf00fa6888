/**
 * Where a client's credential comes from. Deepgram clients send `Authorization: Token <key>` (or
 * `Bearer <jwt>`); browsers cannot set headers on a WebSocket, so they send it as subprotocols:
 * `Sec-WebSocket-Protocol: token, <key>` or `bearer, <jwt>`. The server must then answer with the
 * scheme (`token` / `bearer`) as the selected subprotocol, or the browser drops the socket.
 */
export type Scheme = "token" | "bearer";

export interface Credential {
  scheme: Scheme;
  secret: string;
  /** Set when the credential came as subprotocols: the protocol the response must select. */
  subprotocol: Scheme | null;
}

export type CredentialResult =
  | { ok: true; credential: Credential }
  | { ok: false; reason: "missing" | "malformed"; message: string };

export function readCredential(request: Request): CredentialResult {
  const header = request.headers.get("Authorization");
  if (header !== null) {
    const match = /^\s*(token|bearer)\s+(\S+)\s*$/i.exec(header);
    const scheme = match?.[1]?.toLowerCase();
    const secret = match?.[2];
    if ((scheme !== "token" && scheme !== "bearer") || secret === undefined) {
      return {
        ok: false,
        reason: "malformed",
        message: "Authorization header must be 'Token <api key>' or 'Bearer <token>'",
      };
    }
    return { ok: true, credential: { scheme, secret, subprotocol: null } };
  }
  const protocols = request.headers.get("Sec-WebSocket-Protocol");
  if (protocols !== null) {
    const parts = protocols.split(",").map((part) => part.trim());
    const scheme = parts[0]?.toLowerCase();
    const secret = parts[1];
    if ((scheme === "token" || scheme === "bearer") && secret !== undefined && secret !== "") {
      return { ok: true, credential: { scheme, secret, subprotocol: scheme } };
    }
    return {
      ok: false,
      reason: "malformed",
      message: "Sec-WebSocket-Protocol must be 'token, <api key>' or 'bearer, <token>'",
    };
  }
  return {
    ok: false,
    reason: "missing",
    message: "no credentials: send 'Authorization: Token <api key>' or subprotocols 'token, <key>'",
  };
}
