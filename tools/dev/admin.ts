/**
 * `npm run admin -- <command>`: a small CLI over the admin API (src/routes/admin.ts). It only
 * builds requests and prints the JSON answers; every rule (validation, 404s) is the server's.
 *
 *   create-account --name <name> --max-concurrent <n> [--max-session-seconds <s>]
 *   get-account <accountId>
 *   set-limits <accountId> [--max-concurrent <n>] [--max-session-seconds <s>|none]
 *   disable-account <accountId>      enable-account <accountId>
 *   create-key <accountId> [--label <label>]      (prints the key: it is shown this once)
 *   revoke-key <keyId>      end-session <sessionId>
 *
 * Target: --url, else $EARSHOT_URL, else http://127.0.0.1:8787 (wrangler dev).
 * Admin token: --token, else $EARSHOT_ADMIN_TOKEN, else EARSHOT_ADMIN_TOKEN in .dev.vars (random
 * per clone, written by tools/dev/dev.ts); without any of them the command says so and exits 2.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

const DEFAULT_URL = "http://127.0.0.1:8787";

export interface AdminRequest {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  body?: Record<string, unknown>;
}

export const USAGE = `usage: npm run admin -- <command> [options]
  create-account --name <name> --max-concurrent <n> [--max-session-seconds <s>]
  get-account <accountId>
  set-limits <accountId> [--max-concurrent <n>] [--max-session-seconds <s>|none]
  disable-account <accountId>
  enable-account <accountId>
  create-key <accountId> [--label <label>]
  revoke-key <keyId>
  end-session <sessionId>
options: --url <base url> --token <admin token>`;

/** A number when the text is one; otherwise the text, so the server names the bad field. */
function numberOrText(text: string): number | string {
  const value = Number(text);
  return text.trim() !== "" && Number.isFinite(value) ? value : text;
}

function segment(id: string): string {
  return encodeURIComponent(id);
}

/** Turns CLI arguments into an admin API request; throws with a usage message when they are wrong. */
export function parseCommand(args: string[]): {
  request: AdminRequest;
  url?: string;
  token?: string;
} {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      "max-concurrent": { type: "string" },
      "max-session-seconds": { type: "string" },
      label: { type: "string" },
      url: { type: "string" },
      token: { type: "string" },
    },
  });
  const [command, id, ...rest] = positionals;
  const needsId = (): string => {
    if (id === undefined || rest.length > 0) throw new Error(`${command}: one id expected`);
    return id;
  };
  const seconds = values["max-session-seconds"];
  const sessionSeconds = seconds === "none" ? null : seconds && numberOrText(seconds);
  let request: AdminRequest;
  switch (command) {
    case "create-account": {
      if (id !== undefined) throw new Error("create-account takes no positional arguments");
      const body: Record<string, unknown> = {
        name: values.name,
        max_concurrent_sessions:
          values["max-concurrent"] === undefined
            ? undefined
            : numberOrText(values["max-concurrent"]),
      };
      if (sessionSeconds !== undefined) body.max_session_seconds = sessionSeconds;
      request = { method: "POST", path: "/admin/accounts", body };
      break;
    }
    case "get-account":
      request = { method: "GET", path: `/admin/accounts/${segment(needsId())}` };
      break;
    case "set-limits": {
      const body: Record<string, unknown> = {};
      if (values["max-concurrent"] !== undefined) {
        body.max_concurrent_sessions = numberOrText(values["max-concurrent"]);
      }
      if (sessionSeconds !== undefined) body.max_session_seconds = sessionSeconds;
      request = { method: "PATCH", path: `/admin/accounts/${segment(needsId())}`, body };
      break;
    }
    case "disable-account":
    case "enable-account":
      request = {
        method: "PATCH",
        path: `/admin/accounts/${segment(needsId())}`,
        body: { disabled: command === "disable-account" },
      };
      break;
    case "create-key":
      request = {
        method: "POST",
        path: `/admin/accounts/${segment(needsId())}/keys`,
        body: values.label === undefined ? {} : { label: values.label },
      };
      break;
    case "revoke-key":
      request = { method: "DELETE", path: `/admin/keys/${segment(needsId())}` };
      break;
    case "end-session":
      request = { method: "DELETE", path: `/admin/sessions/${segment(needsId())}` };
      break;
    default:
      throw new Error(command === undefined ? "no command" : `unknown command '${command}'`);
  }
  return { request, url: values.url, token: values.token };
}

/** EARSHOT_ADMIN_TOKEN from a .dev.vars file (KEY=value lines, optional quotes), if present. */
function tokenFromDevVars(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined; // No .dev.vars: `npm run dev` was never run in this clone.
  }
  const match = /^\s*EARSHOT_ADMIN_TOKEN\s*=\s*(.*?)\s*$/m.exec(text);
  return match?.[1]?.replace(/^(["'])(.*)\1$/, "$2");
}

/**
 * The admin token: `flag`, else $EARSHOT_ADMIN_TOKEN, else EARSHOT_ADMIN_TOKEN in the clone's
 * .dev.vars; throws saying where to get one when there is none (there is no shared default).
 */
export function resolveAdminToken(flag: string | undefined): string {
  const token =
    flag ??
    (process.env.EARSHOT_ADMIN_TOKEN || undefined) ??
    tokenFromDevVars(path.resolve(import.meta.dirname, "../..", ".dev.vars"));
  if (token === undefined || token === "") {
    throw new Error(
      "no admin token: pass --token, set EARSHOT_ADMIN_TOKEN, or run `npm run dev` once (it writes a random one to .dev.vars)",
    );
  }
  return token;
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseCommand>;
  try {
    parsed = parseCommand(process.argv.slice(2));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  const base = parsed.url ?? process.env.EARSHOT_URL ?? DEFAULT_URL;
  let token: string;
  try {
    token = resolveAdminToken(parsed.token);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 2;
  }
  const { request } = parsed;
  const response = await fetch(new URL(request.path, base), {
    method: request.method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
  });
  const text = await response.text();
  const out = response.ok ? console.log : console.error;
  out(`${response.status} ${response.statusText}`);
  if (text !== "") {
    try {
      out(JSON.stringify(JSON.parse(text), null, 2));
    } catch {
      out(text); // Not JSON (a proxy's error page): show it as it came.
    }
  }
  return response.ok ? 0 : 1;
}

if (import.meta.main) process.exitCode = await main();
