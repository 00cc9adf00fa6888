/**
 * Memory of a worker's isolate through the Chrome DevTools protocol that wrangler's inspector proxy
 * serves (ws://127.0.0.1:<inspector port>/ws; it takes one client at a time and wants an Origin it
 * trusts, so the client sends `Origin: http://localhost`).
 *
 * Readings come between requests: the inspector is served when the isolate is idle, not while a
 * transcription runs, so a call's own transient buffers are seen only as the garbage they leave.
 * Callers connect after their timed work anyway: a DevTools client makes wrangler enable the
 * debugger, which V8 may answer by running WebAssembly in a slower tier. (Measured here, one
 * utterance repeated: no visible difference; the order costs nothing and removes the doubt.)
 */

/** Protocol replies come in milliseconds; a forced GC of a 100 MB heap takes well under 5 s. */
const CALL_TIMEOUT_MS = 15_000;
/** How long to wait for a console message to reveal an execution context. */
const CONTEXT_WAIT_MS = 10_000;
/** While a forced GC is pending, the worker is sent a request this often (collectGarbage). */
const POKE_EVERY_MS = 1_000;

/**
 * `Runtime.getHeapUsage`: V8's JS heap, used and committed, and the ArrayBuffer backing stores
 * outside it. WebAssembly memories are in neither (checked here: with ORT's 64 MB heap alive,
 * backingStorageSize read 3.7 MB).
 */
export interface HeapUsage {
  usedBytes: number;
  totalBytes: number;
  backingStoreBytes: number;
}

interface Reply {
  id?: number;
  method?: string;
  params?: { executionContextId?: number; context?: { id?: number } };
  result?: unknown;
  error?: { message?: string };
}

export class Inspector {
  readonly #socket: WebSocket;
  #next = 0;
  readonly #pending = new Map<number, (reply: Reply) => void>();
  /** Latest execution context id seen on an event. */
  #context: number | undefined;
  #contextWaiters: Array<() => void> = [];

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.addEventListener("message", (event) => {
      const reply = JSON.parse(String(event.data)) as Reply;
      if (reply.id !== undefined) {
        this.#pending.get(reply.id)?.(reply);
        this.#pending.delete(reply.id);
        return;
      }
      const context = reply.params?.executionContextId ?? reply.params?.context?.id;
      if (context !== undefined) {
        this.#context = context;
        for (const wake of this.#contextWaiters.splice(0)) wake();
      }
    });
  }

  static async connect(port: number): Promise<Inspector> {
    // Node's WebSocket (undici) takes headers in its second argument; the DOM type does not say so.
    const init = { headers: { Origin: "http://localhost" } } as unknown as string[];
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, init);
    await new Promise<void>((resolve, reject) => {
      const noConnection = () => reject(new Error("inspector: no connection"));
      const timer = setTimeout(noConnection, CALL_TIMEOUT_MS);
      socket.addEventListener("open", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.addEventListener("error", () => {
        clearTimeout(timer);
        reject(new Error(`inspector: cannot connect to 127.0.0.1:${port}`));
      });
    });
    const inspector = new Inspector(socket);
    await inspector.call("Runtime.enable");
    return inspector;
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`inspector: ${method} unanswered after ${CALL_TIMEOUT_MS} ms`));
      }, CALL_TIMEOUT_MS);
      this.#pending.set(id, (reply) => {
        clearTimeout(timer);
        if (reply.error) reject(new Error(`inspector: ${method}: ${reply.error.message}`));
        else resolve(reply.result);
      });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  async heapUsage(): Promise<HeapUsage> {
    const result = (await this.call("Runtime.getHeapUsage")) as {
      usedSize?: number;
      totalSize?: number;
      backingStorageSize?: number;
    };
    if (typeof result.usedSize !== "number" || typeof result.totalSize !== "number") {
      throw new Error(`inspector: unexpected getHeapUsage reply ${JSON.stringify(result)}`);
    }
    return {
      usedBytes: result.usedSize,
      totalBytes: result.totalSize,
      backingStoreBytes: result.backingStorageSize ?? 0,
    };
  }

  /**
   * A full GC in the isolate (what is left is live). Local workerd runs it only when the isolate
   * is next entered, so `poke` sends the worker a request meanwhile, again every POKE_EVERY_MS
   * until the GC is done: a request that reaches the isolate before the inspector's command does
   * leaves the GC waiting for the next one (one poke alone timed out once in three bench runs).
   */
  async collectGarbage(poke: () => Promise<void>): Promise<void> {
    let finished = false;
    const done = this.call("HeapProfiler.collectGarbage").finally(() => {
      finished = true;
    });
    while (!finished) {
      await poke();
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, POKE_EVERY_MS))]);
    }
    await done;
  }

  /**
   * Byte lengths of every WebAssembly.Memory alive in the isolate (ORT's heap, in a worker that has
   * no endpoint for it), found with `Runtime.queryObjects` on its prototype. Evaluating needs an
   * execution context id, which local workerd announces only on events: `poke` makes the worker
   * log a console message, which carries one; it runs only if none was seen yet.
   */
  async wasmMemories(poke: () => Promise<void>): Promise<number[]> {
    if (this.#context === undefined) {
      const seen = new Promise<void>((resolve, reject) => {
        const nothing = () =>
          reject(new Error("inspector: the worker logged nothing, no execution context"));
        const timer = setTimeout(nothing, CONTEXT_WAIT_MS);
        this.#contextWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await poke();
      await seen;
    }
    const prototype = (await this.call("Runtime.evaluate", {
      expression: "WebAssembly.Memory.prototype",
      contextId: this.#context,
    })) as { result?: { objectId?: string } };
    const prototypeId = prototype.result?.objectId;
    if (prototypeId === undefined) throw new Error("inspector: no WebAssembly.Memory prototype");
    const found = (await this.call("Runtime.queryObjects", {
      prototypeObjectId: prototypeId,
    })) as { objects?: { objectId?: string } };
    const arrayId = found.objects?.objectId;
    if (arrayId === undefined) throw new Error("inspector: queryObjects returned nothing");
    const lengths = (await this.call("Runtime.callFunctionOn", {
      objectId: arrayId,
      functionDeclaration: "function () { return this.map((memory) => memory.buffer.byteLength); }",
      returnByValue: true,
    })) as { result?: { value?: unknown } };
    const value = lengths.result?.value;
    if (!Array.isArray(value) || !value.every((n) => typeof n === "number")) {
      throw new Error(`inspector: unexpected memory sizes ${JSON.stringify(value)}`);
    }
    return value;
  }

  close(): void {
    this.#socket.close();
  }
}
