// Injected into the demo page before its own scripts (Playwright addInitScript) to record what the
// page does, so the test can compare what it shows with what went over the wire. Nothing here
// changes the page's behaviour: the WebSocket subclass only adds listeners and counts what is sent.
(() => {
  const started = performance.now();
  const now = () => Math.round(performance.now() - started);
  const spy = {
    /** One entry per WebSocket the page opened. */
    sockets: [],
    /** Text of #interim / #transcript / #status / #speaking over time (ms since load). */
    dom: [],
    /** Highest level-meter value seen. */
    maxLevel: 0,
  };
  window.__e2e = spy;
  /** The spy's clock (ms since the page loaded), for a test to mark its own moments on it. */
  window.__e2eNow = now;
  /**
   * Copies of the binary frames the first socket sent, kept apart from `spy` (which the test reads
   * whole and often): the audio the server got, saved by the test as a WAV for diagnosis.
   */
  const sent = [];
  window.__e2eSentBase64 = () => {
    let binary = "";
    for (const frame of sent) {
      for (let i = 0; i < frame.length; i += 0x8000) {
        binary += String.fromCharCode(...frame.subarray(i, i + 0x8000));
      }
    }
    return btoa(binary);
  };
  /** Live sockets, so a test can drop one as a network failure would. */
  const live = [];
  window.__e2eDrop = (code, reason) => {
    for (const socket of live) socket.close(code, reason);
  };

  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const record = {
        url: String(url),
        protocols: protocols === undefined ? [] : [].concat(protocols),
        openedAt: null,
        close: null,
        binaryFrames: [],
        binaryTimes: [],
        textSent: [],
        received: [],
      };
      spy.sockets.push(record);
      live.push(this);
      this.addEventListener("open", () => {
        record.openedAt = now();
      });
      this.addEventListener("message", (event) => {
        if (typeof event.data === "string") record.received.push({ t: now(), data: event.data });
      });
      this.addEventListener("close", (event) => {
        record.close = { t: now(), code: event.code, reason: event.reason };
        live.splice(live.indexOf(this), 1);
      });
      this.record = record;
    }

    send(data) {
      if (typeof data === "string") this.record.textSent.push({ t: now(), data });
      else {
        this.record.binaryFrames.push(data.byteLength);
        this.record.binaryTimes.push(now());
        if (this.record === spy.sockets[0] && typeof data.byteLength === "number") {
          const view = ArrayBuffer.isView(data)
            ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
            : new Uint8Array(data);
          sent.push(view.slice());
        }
      }
      super.send(data);
    }
  };

  const watch = () => {
    for (const id of ["interim", "transcript", "status", "speaking"]) {
      const element = document.getElementById(id);
      if (element === null) continue;
      const observer = new MutationObserver(() => {
        spy.dom.push({ t: now(), id, text: element.textContent });
      });
      observer.observe(element, { childList: true, characterData: true, subtree: true });
    }
    const meter = document.getElementById("level");
    if (meter !== null) {
      setInterval(() => {
        spy.maxLevel = Math.max(spy.maxLevel, Number(meter.value));
      }, 50);
    }
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch);
  else watch();
})();
