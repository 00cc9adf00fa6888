/**
 * The soak's calls to the service: accounts and keys through the admin API (requests built by
 * tools/dev/admin.ts's parser, so the CLI and the soak send the same bodies), the account API's
 * view of sessions and slots, the isolate's inference queue and heap (src/routes/isolate-stats.ts),
 * and the short plain sessions of the server probe and the limit probes.
 */
import { type ClientEvents, ResumableClient } from "../../client/resumable-client.ts";
import { parseCommand } from "../../dev/admin.ts";
import { BYTES_PER_SECOND, SAMPLE_RATE, UNIT_BYTES } from "./programs.ts";
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

export interface SoakAccount {
  id: string;
  name: string;
  limit: number;
  key: string;
}

export interface IsolateStats {
  waiting: number;
  peakWaiting: number;
  completedFinals: number;
  droppedInterims: number;
  wasmHeapBytes: number | null;
}

interface Answer {
  status: number;
  json: Record<string, unknown> | null;
  text: string;
}

export class Service {
  readonly base: string;
  readonly #adminToken: string;

  constructor(base: string, adminToken: string) {
    this.base = base;
    this.#adminToken = adminToken;
  }

  async #call(
    method: string,
    pathname: string,
    authorization: string,
    body?: Record<string, unknown>,
  ): Promise<Answer> {
    const response = await fetch(new URL(pathname, this.base), {
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

  /** GET `pathname`'s JSON, which must be 200 and hold `field`: its value. */
  async #get(pathname: string, authorization: string, field: string): Promise<unknown> {
    const answer = await this.#call("GET", pathname, authorization);
    const value = answer.json?.[field];
    if (answer.status !== 200 || value === undefined) {
      throw new Error(`GET ${pathname}: ${answer.status} ${answer.text.slice(0, 200)}`);
    }
    return value;
  }

  async #admin(args: string[]): Promise<Record<string, unknown>> {
    const { request } = parseCommand(args);
    const auth = `Bearer ${this.#adminToken}`;
    const answer = await this.#call(request.method, request.path, auth, request.body);
    if (answer.status >= 300 || answer.json === null) {
      throw new Error(`admin ${args[0]}: ${answer.status} ${answer.text.slice(0, 300)}`);
    }
    return answer.json;
  }

  /** A fresh account with its concurrency limit and one API key. */
  async createAccount(name: string, limit: number): Promise<SoakAccount> {
    const limitArgs = ["--max-concurrent", String(limit)];
    const account = await this.#admin(["create-account", "--name", name, ...limitArgs]);
    const id = account.id;
    if (typeof id !== "string") {
      throw new Error(`create-account: no id in ${JSON.stringify(account)}`);
    }
    const created = await this.#admin(["create-key", id, "--label", "soak"]);
    const key = created.key;
    if (typeof key !== "string") throw new Error("create-key: no key in the answer");
    return { id, name, limit, key };
  }

  /** Disables a soak account when the run is over, so its key opens nothing any more. */
  async disableAccount(id: string): Promise<void> {
    await this.#admin(["disable-account", id]);
  }

  /** How many sessions the account lists as active (GET /v1/sessions). */
  async activeSessions(key: string): Promise<number> {
    const sessions = await this.#get("/v1/sessions", `Token ${key}`, "sessions");
    if (!Array.isArray(sessions)) throw new Error("GET /v1/sessions: no list of sessions");
    return sessions.length;
  }

  /** Slots the account's limiter holds now (GET /v1/usage `active_sessions`). */
  async slotsHeld(key: string): Promise<number> {
    const active = await this.#get("/v1/usage", `Token ${key}`, "active_sessions");
    if (typeof active !== "number") throw new Error("GET /v1/usage: no number of active sessions");
    return active;
  }

  /**
   * Waits until none of `accounts` holds a slot or lists a session, or SLOT_DRAIN_MS passed;
   * returns what each still holds at the end.
   */
  async drain(
    accounts: readonly SoakAccount[],
  ): Promise<{ slots: number[]; sessions: number[]; waitedMs: number }> {
    const from = performance.now();
    for (;;) {
      const slots = await Promise.all(accounts.map((a) => this.slotsHeld(a.key)));
      const sessions = await Promise.all(accounts.map((a) => this.activeSessions(a.key)));
      const waitedMs = performance.now() - from;
      if ([...slots, ...sessions].every((n) => n === 0) || waitedMs > SLOT_DRAIN_MS) {
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
    const answer = await this.#call("GET", "/admin/isolate", `Bearer ${this.#adminToken}`);
    if (answer.status === 404) return null;
    const queue = answer.json?.inference_queue as Record<string, unknown> | undefined;
    if (answer.status !== 200 || queue === undefined) {
      throw new Error(`GET /admin/isolate: ${answer.status} ${answer.text.slice(0, 200)}`);
    }
    const heap = answer.json?.wasm_heap_bytes;
    return {
      waiting: Number(queue.waiting),
      peakWaiting: Number(queue.peak_waiting),
      completedFinals: Number(queue.completed_finals),
      droppedInterims: Number(queue.dropped_interims),
      wasmHeapBytes: typeof heap === "number" ? heap : null,
    };
  }

  /** A short plain PCM16 session in 20-ms frames (the server probe, the limit probes). */
  openSession(
    key: string,
    resumable: boolean,
    handshakeTimeoutMs: number,
    events: ClientEvents = {},
  ): Promise<ResumableClient> {
    return ResumableClient.open({
      baseUrl: this.base,
      key,
      query: { encoding: "linear16", sample_rate: String(SAMPLE_RATE) },
      resumable,
      bytesPerSecond: BYTES_PER_SECOND,
      frameBytes: UNIT_BYTES,
      maxKeptBytes: BYTES_PER_SECOND,
      handshakeTimeoutMs,
      events,
    });
  }
}
