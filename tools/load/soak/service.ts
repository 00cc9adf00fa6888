/**
 * The soak's HTTP calls to the service: accounts and keys through the admin API (requests built by
 * tools/dev/admin.ts's parser, so the CLI and the soak send the same bodies), the account API's
 * view of sessions and slots, and the isolate's inference queue and heap
 * (src/routes/isolate-stats.ts).
 */
import { parseCommand } from "../../dev/admin.ts";
import { sleep } from "./progress.ts";

/** Admin and account API calls are single D1/DO round trips; 15 s means the service is stuck. */
const REQUEST_TIMEOUT_MS = 15_000;
/**
 * How long slots may stay held after the last session ended: a session that must still transcribe
 * what it had queued releases its slot at the latest after FINISH_DEADLINE_MS (60 s, in
 * live-session.ts); 90 s leaves 30 s for the release itself, and also covers the 30-s resume
 * window of a resumable session whose client vanished (the soak's never do). Slots held after that
 * are leaks.
 */
const SLOT_DRAIN_MS = 90_000;

export class ServiceError extends Error {
  override name = "ServiceError";
}

async function call(
  base: string,
  method: string,
  pathname: string,
  authorization: string,
  body?: Record<string, unknown>,
): Promise<{ status: number; json: Record<string, unknown> | null; text: string }> {
  const response = await fetch(new URL(pathname, base), {
    method,
    headers: { authorization, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  let json: Record<string, unknown> | null = null;
  try {
    json = text === "" ? null : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    // Not JSON: kept as text for the error message.
  }
  return { status: response.status, json, text };
}

export interface SoakAccount {
  id: string;
  name: string;
  limit: number;
  key: string;
}

export class Service {
  readonly base: string;
  readonly #adminToken: string;

  constructor(base: string, adminToken: string) {
    this.base = base;
    this.#adminToken = adminToken;
  }

  async #admin(args: string[]): Promise<Record<string, unknown>> {
    const { request } = parseCommand(args);
    const answer = await call(
      this.base,
      request.method,
      request.path,
      `Bearer ${this.#adminToken}`,
      request.body,
    );
    if (answer.status >= 300 || answer.json === null) {
      throw new ServiceError(`admin ${args[0]}: ${answer.status} ${answer.text.slice(0, 300)}`);
    }
    return answer.json;
  }

  /** A fresh account with its concurrency limit and one API key. */
  async createAccount(name: string, limit: number): Promise<SoakAccount> {
    const account = await this.#admin([
      "create-account",
      "--name",
      name,
      "--max-concurrent",
      String(limit),
    ]);
    const id = account.id;
    if (typeof id !== "string")
      throw new ServiceError(`create-account: no id in ${JSON.stringify(account)}`);
    const created = await this.#admin(["create-key", id, "--label", "soak"]);
    const key = created.key;
    if (typeof key !== "string") throw new ServiceError("create-key: no key in the answer");
    return { id, name, limit, key };
  }

  /** Disables a soak account when the run is over, so its key opens nothing any more. */
  async disableAccount(id: string): Promise<void> {
    await this.#admin(["disable-account", id]);
  }

  /** The account's active sessions (GET /v1/sessions): ids the limiter holds slots for. */
  async activeSessions(key: string): Promise<string[]> {
    const answer = await call(this.base, "GET", "/v1/sessions", `Token ${key}`);
    const sessions = answer.json?.sessions;
    if (answer.status !== 200 || !Array.isArray(sessions)) {
      throw new ServiceError(`GET /v1/sessions: ${answer.status} ${answer.text.slice(0, 200)}`);
    }
    return sessions.map((s: { id?: unknown }) => String(s.id));
  }

  /** Slots the account's limiter holds now (GET /v1/usage `active_sessions`). */
  async slotsHeld(key: string): Promise<number> {
    const answer = await call(this.base, "GET", "/v1/usage", `Token ${key}`);
    const active = answer.json?.active_sessions;
    if (answer.status !== 200 || typeof active !== "number") {
      throw new ServiceError(`GET /v1/usage: ${answer.status} ${answer.text.slice(0, 200)}`);
    }
    return active;
  }

  /**
   * Waits until none of `accounts` holds a slot or lists a session, or `timeoutMs` passed;
   * returns what each still holds at the end.
   */
  async drain(
    accounts: readonly SoakAccount[],
    timeoutMs = SLOT_DRAIN_MS,
  ): Promise<{ slots: number[]; sessions: number[]; waitedMs: number }> {
    const from = performance.now();
    for (;;) {
      const slots = await Promise.all(accounts.map((a) => this.slotsHeld(a.key)));
      const sessions = await Promise.all(
        accounts.map(async (a) => (await this.activeSessions(a.key)).length),
      );
      const waitedMs = performance.now() - from;
      if ([...slots, ...sessions].every((n) => n === 0) || waitedMs > timeoutMs) {
        return { slots, sessions, waitedMs };
      }
      await sleep(500);
    }
  }

  /**
   * The isolate's inference queue and WASM heap (GET /admin/isolate); null when the route is not
   * mounted on this server (404), so the soak can say so instead of failing.
   */
  async isolateStats(): Promise<IsolateStats | null> {
    const answer = await call(this.base, "GET", "/admin/isolate", `Bearer ${this.#adminToken}`);
    if (answer.status === 404) return null;
    const queue = answer.json?.inference_queue as Record<string, unknown> | undefined;
    if (answer.status !== 200 || queue === undefined) {
      throw new ServiceError(`GET /admin/isolate: ${answer.status} ${answer.text.slice(0, 200)}`);
    }
    const heap = answer.json?.wasm_heap_bytes;
    return {
      waiting: Number(queue.waiting),
      peakWaiting: Number(queue.peak_waiting),
      completedFinals: Number(queue.completed_finals),
      completedInterims: Number(queue.completed_interims),
      droppedInterims: Number(queue.dropped_interims),
      wasmHeapBytes: typeof heap === "number" ? heap : null,
    };
  }
}

export interface IsolateStats {
  waiting: number;
  peakWaiting: number;
  completedFinals: number;
  completedInterims: number;
  droppedInterims: number;
  wasmHeapBytes: number | null;
}
