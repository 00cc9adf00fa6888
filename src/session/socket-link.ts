/**
 * A session's link to its client: the one socket attached now (none while a resumable session
 * waits for its client to come back), what it delivers, and sending and closing on it without
 * ever throwing into the session.
 *
 * Only the attached socket speaks for the client. A resumed client's new socket takes over from
 * an old one that still looks open (the client noticed the drop before the server did): the old
 * one is closed 1000 RESUMED, and whatever it still delivers, or its close, is ignored.
 */
import {
  ABNORMAL_CLOSURE,
  CLOSE,
  type CloseSpec,
  classifyTeardownError,
  closeReason,
} from "../protocol/close-codes";
import type { Logger } from "../runtime/log";

export interface SocketLinkEvents {
  /** A message from the attached socket. */
  message(data: string | ArrayBuffer): void;
  /** The attached socket closed (the client's code), or failed (1006). */
  closed(code: number, reason: string): void;
}

export class SocketLink {
  #socket: WebSocket | null = null;
  readonly #log: Logger;
  readonly #events: SocketLinkEvents;

  constructor(log: Logger, events: SocketLinkEvents) {
    this.#log = log;
    this.#events = events;
  }

  get attached(): boolean {
    return this.#socket !== null;
  }

  /** Makes `socket` the client's; an earlier one still attached is closed as taken over. */
  attach(socket: WebSocket): void {
    const previous = this.#socket;
    this.#socket = socket;
    if (previous !== null) {
      this.#log.info("resumed over a connection that still looked open");
      this.#closeSocket(previous, CLOSE.RESUMED_ELSEWHERE);
    }
    socket.addEventListener("message", (event) => {
      if (this.#socket === socket) this.#events.message(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (this.#socket === socket) this.#events.closed(event.code, event.reason);
    });
    socket.addEventListener("error", (event) => {
      if (this.#socket !== socket) return;
      // "Network connection lost" is how a client that vanished looks: expected, not a fault.
      if (classifyTeardownError(event.error) === "harmless") {
        this.#log.info("socket lost", { error: String(event.error) });
      } else {
        this.#log.warn("socket error", { error: event.error });
      }
      this.#events.closed(ABNORMAL_CLOSURE, "socket error");
    });
  }

  /** The socket is gone (a resumable session waits for another); nothing is sent until then. */
  detach(): void {
    this.#socket = null;
  }

  /** Sends on the attached socket; while detached, nothing (finals are kept for replay). */
  send(text: string): void {
    const socket = this.#socket;
    if (socket === null || socket.readyState !== WebSocket.OPEN) return;
    try {
      socket.send(text);
    } catch (error) {
      this.#teardownError("send", error);
    }
  }

  /** Closes the attached socket, if any, with `close`. */
  close(close: CloseSpec): void {
    if (this.#socket !== null) this.#closeSocket(this.#socket, close);
  }

  #closeSocket(socket: WebSocket, close: CloseSpec): void {
    try {
      socket.close(close.code, closeReason(close.reason));
    } catch (error) {
      this.#teardownError("close", error);
    }
  }

  #teardownError(what: string, error: unknown): void {
    if (classifyTeardownError(error) === "harmless")
      this.#log.debug(`${what} after close`, { error: String(error) });
    else this.#log.error(`${what} failed`, { error });
  }
}
