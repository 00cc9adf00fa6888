import { describe, expect, it } from "vitest";
import {
  binaryFrameMeansCloseStream,
  looksLikeControlFrame,
  MAX_TEXT_MESSAGE_BYTES,
  parseClientText,
} from "../src/protocol/client-messages";
import {
  CLOSE,
  classifyTeardownError,
  closeReason,
  closeWith,
  isSendableCloseCode,
  MAX_CLOSE_REASON_BYTES,
} from "../src/protocol/close-codes";
import { buildError } from "../src/protocol/error-message";
import {
  badOption,
  httpError,
  invalidAuth,
  serviceUnavailable,
  tooManyRequests,
  upgradeRequired,
} from "../src/protocol/http-errors";
import {
  buildMetadata,
  buildResults,
  buildSpeechStarted,
  buildUtteranceEnd,
  encodeServerMessage,
  type ModelInfo,
  plainWord,
  type TranscriptLike,
} from "../src/protocol/messages";
import { parseListenOptions } from "../src/protocol/options";
import { pseudoRandomBytes } from "../tools/eval/random";

const utf8 = new TextEncoder();
const MODEL: ModelInfo = {
  uuid: "6b2b1e2c-0000-4000-8000-000000000001",
  name: "whisper-tiny",
  version: "2026-11-01.q8",
  arch: "whisper",
};

describe("parseClientText", () => {
  it.each(["KeepAlive", "Finalize", "CloseStream"] as const)("accepts %s", (type) => {
    expect(parseClientText(JSON.stringify({ type }))).toEqual({ ok: true, message: { type } });
  });

  it("ignores extra fields and surrounding whitespace", () => {
    expect(parseClientText(' \n{"type":"Finalize","id":7}\t')).toEqual({
      ok: true,
      message: { type: "Finalize" },
    });
  });

  it.each([
    ["", "INVALID_JSON"],
    ["{", "INVALID_JSON"],
    ["KeepAlive", "INVALID_JSON"],
    ["{'type':'KeepAlive'}", "INVALID_JSON"],
    ["[]", "NOT_AN_OBJECT"],
    ['[{"type":"KeepAlive"}]', "NOT_AN_OBJECT"],
    ['"KeepAlive"', "NOT_AN_OBJECT"],
    ["null", "NOT_AN_OBJECT"],
    ["42", "NOT_AN_OBJECT"],
    ["{}", "MISSING_TYPE"],
    ['{"type":1}', "MISSING_TYPE"],
    ['{"type":null}', "MISSING_TYPE"],
    ['{"kind":"KeepAlive"}', "MISSING_TYPE"],
    ['{"type":"keepalive"}', "UNKNOWN_MESSAGE_TYPE"],
    ['{"type":"Close"}', "UNKNOWN_MESSAGE_TYPE"],
    ['{"type":"Results"}', "UNKNOWN_MESSAGE_TYPE"],
    ['{"type":"Configure","keyterms":["x"]}', "UNSUPPORTED_MESSAGE_TYPE"],
  ])("%s → %s", (text, code) => {
    const parsed = parseClientText(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.code).toBe(code);
      expect(parsed.message.length).toBeGreaterThan(0);
    }
  });

  it("names the unknown type and the accepted ones", () => {
    const parsed = parseClientText('{"type":"Flush"}');
    expect(parsed).toMatchObject({ ok: false, code: "UNKNOWN_MESSAGE_TYPE" });
    if (!parsed.ok)
      expect(parsed.message).toBe(
        'unknown message type "Flush"; expected one of KeepAlive, Finalize, CloseStream',
      );
  });

  it("measures the cap in UTF-8 bytes, not characters", () => {
    const pad = (n: number, ch: string) => `{"type":"KeepAlive","pad":"${ch.repeat(n)}"}`;
    const overhead = utf8.encode(pad(0, "")).byteLength;
    const fits = pad(MAX_TEXT_MESSAGE_BYTES - overhead, "a");
    expect(utf8.encode(fits).byteLength).toBe(MAX_TEXT_MESSAGE_BYTES);
    expect(parseClientText(fits).ok).toBe(true);
    expect(parseClientText(pad(MAX_TEXT_MESSAGE_BYTES - overhead + 1, "a"))).toMatchObject({
      ok: false,
      code: "TEXT_TOO_LARGE",
    });
    // 2100 × "é" is 2100 characters but 4200 bytes: over the cap, though .length is not.
    const accented = pad(2100, "é");
    expect(accented.length).toBeLessThan(MAX_TEXT_MESSAGE_BYTES);
    expect(parseClientText(accented)).toMatchObject({ ok: false, code: "TEXT_TOO_LARGE" });
  });
});

describe("looksLikeControlFrame", () => {
  it.each([
    '{"type":"KeepAlive"}',
    '{"type":"CloseStream"}',
    '  \r\n\t{"type":"Anything"}',
    '{"type":"Finalize","extra":[1,2,3]}',
  ])("recognises %j sent as binary", (json) => {
    expect(looksLikeControlFrame(utf8.encode(json))).toBe(true);
  });

  it.each(["[1,2]", '{"kind":"KeepAlive"}', '{"type":5}', "{not json", '"KeepAlive"', ""])(
    "does not take %j for a control frame",
    (text) => {
      expect(looksLikeControlFrame(utf8.encode(text))).toBe(false);
    },
  );

  it("never mistakes PCM for a control frame, even PCM starting with '{'", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const pcm = pseudoRandomBytes(640, seed); // 20 ms of 16 kHz PCM16
      expect(looksLikeControlFrame(pcm)).toBe(false);
      pcm[0] = 0x7b; // "{"
      expect(looksLikeControlFrame(pcm)).toBe(false);
    }
    expect(looksLikeControlFrame(new Uint8Array(3200))).toBe(false); // digital silence
  });

  it("does not decode frames over 4 KiB", () => {
    const big = `{"type":"KeepAlive","pad":"${"a".repeat(5000)}"}`;
    expect(looksLikeControlFrame(utf8.encode(big))).toBe(false);
  });

  it("treats an empty binary frame as CloseStream", () => {
    expect(binaryFrameMeansCloseStream(new Uint8Array(0))).toBe(true);
    expect(binaryFrameMeansCloseStream(new ArrayBuffer(0))).toBe(true);
    expect(binaryFrameMeansCloseStream(new Uint8Array(2))).toBe(false);
  });
});

function transcript(overrides: Partial<TranscriptLike> = {}): TranscriptLike {
  return {
    start: 1.23456,
    end: 2.5,
    text: " Hello, world. ",
    confidence: 0.912345,
    words: [
      { word: "hello", start: 1.23456, end: 1.7, confidence: 0.95, punctuatedWord: "Hello," },
      { word: "world", start: 1.8, end: 2.4999, confidence: 0.87 },
    ],
    isFinal: true,
    speechFinal: true,
    fromFinalize: false,
    ...overrides,
  };
}

describe("server message builders", () => {
  it("builds Results with exactly Deepgram's fields", () => {
    const results = buildResults(transcript(), { requestId: "req-1", model: MODEL });
    expect(results).toStrictEqual({
      type: "Results",
      channel_index: [0, 1],
      duration: 1.265,
      start: 1.235,
      is_final: true,
      speech_final: true,
      from_finalize: false,
      channel: {
        alternatives: [
          {
            transcript: "Hello, world.",
            confidence: 0.9123,
            words: [
              {
                word: "hello",
                start: 1.235,
                end: 1.7,
                confidence: 0.95,
                punctuated_word: "Hello,",
              },
              { word: "world", start: 1.8, end: 2.5, confidence: 0.87, punctuated_word: "world" },
            ],
          },
        ],
      },
      metadata: {
        request_id: "req-1",
        model_info: { name: "whisper-tiny", version: "2026-11-01.q8", arch: "whisper" },
        model_uuid: MODEL.uuid,
      },
    });
  });

  it("never emits NaN, Infinity, negative times or end before start", () => {
    const results = buildResults(
      transcript({
        start: Number.NaN,
        end: -3,
        confidence: Number.POSITIVE_INFINITY,
        words: [{ word: "x", start: 2, end: 1, confidence: Number.NaN }],
        isFinal: false,
        speechFinal: false,
        fromFinalize: true,
      }),
      { requestId: "r", model: MODEL },
    );
    const json = encodeServerMessage(results);
    expect(json).not.toMatch(/null|NaN|Infinity/);
    expect(results.start).toBe(0);
    expect(results.duration).toBe(0);
    expect(results.channel.alternatives[0].confidence).toBe(0);
    expect(results.channel.alternatives[0].words[0]).toEqual({
      word: "x",
      start: 2,
      end: 2,
      confidence: 0,
      punctuated_word: "x",
    });
    expect(results.from_finalize).toBe(true);
    expect(results.is_final).toBe(false);
  });

  it("builds SpeechStarted and UtteranceEnd", () => {
    expect(buildSpeechStarted(4.56789)).toStrictEqual({
      type: "SpeechStarted",
      channel: [0, 1],
      timestamp: 4.568,
    });
    expect(buildUtteranceEnd(7.0004)).toStrictEqual({
      type: "UtteranceEnd",
      channel: [0, 1],
      last_word_end: 7,
    });
  });

  it("builds Metadata naming the model that ran", () => {
    const metadata = buildMetadata({
      requestId: "req-2",
      sha256: "ab".repeat(32),
      created: new Date(Date.UTC(2026, 10, 21, 4, 12, 0, 5)),
      durationSeconds: 12.34567,
      channels: 1,
      model: MODEL,
    });
    expect(metadata).toStrictEqual({
      type: "Metadata",
      transaction_key: "deprecated",
      request_id: "req-2",
      sha256: "ab".repeat(32),
      created: "2026-11-21T04:12:00.005Z",
      duration: 12.346,
      channels: 1,
      models: [MODEL.uuid],
      model_info: {
        [MODEL.uuid]: { name: "whisper-tiny", version: "2026-11-01.q8", arch: "whisper" },
      },
    });
  });

  it("builds Deepgram's Error shape with Earshot's code and a truncated echo", () => {
    expect(
      buildError({
        code: "INVALID_JSON",
        description: "not JSON",
        requestId: "r",
        clientMessage: "{",
      }),
    ).toStrictEqual({
      type: "Error",
      variant: "SchemaError",
      description: "not JSON",
      code: "INVALID_JSON",
      request_id: "r",
      message: "{",
    });
    expect(
      buildError({ code: "TRANSCRIPTION_FAILED", description: "model failed", requestId: "r" }),
    ).toStrictEqual({
      type: "Error",
      variant: "ServerError",
      description: "model failed",
      code: "TRANSCRIPTION_FAILED",
      request_id: "r",
    });
    expect(
      buildError({ code: "UNSUPPORTED_MESSAGE_TYPE", description: "no", requestId: "r" }).variant,
    ).toBe("InvalidConfigureMessage");
    const long = buildError({
      code: "UNKNOWN_MESSAGE_TYPE",
      description: "d",
      requestId: "r",
      clientMessage: `${"x".repeat(255)}😀tail`,
    });
    // Cut at 256 units would split the emoji's surrogate pair: the cut moves before it.
    expect(long.message).toBe(`${"x".repeat(255)}…`);
  });

  it("derives Deepgram's plain word form", () => {
    expect(plainWord("Hello,")).toBe("hello");
    expect(plainWord("don't")).toBe("don't");
    expect(plainWord("¿Qué?")).toBe("qué");
    expect(plainWord('"Zürich."')).toBe("zürich");
    expect(plainWord("...")).toBe("");
  });
});

describe("close codes", () => {
  it("names Deepgram's error closes", () => {
    expect(CLOSE.NORMAL.code).toBe(1000);
    expect(CLOSE.DATA_ERROR).toEqual({ code: 1008, reason: "DATA-0000" });
    expect(CLOSE.NET_IDLE).toEqual({ code: 1011, reason: "NET-0001" });
    expect(CLOSE.MESSAGE_TOO_BIG.code).toBe(1009);
    for (const spec of Object.values(CLOSE)) {
      expect(isSendableCloseCode(spec.code)).toBe(true);
      expect(utf8.encode(spec.reason).byteLength).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
    }
  });

  it.each([
    [1000, true],
    [1001, true],
    [1003, true],
    [1004, false],
    [1005, false],
    [1006, false],
    [1007, true],
    [1008, true],
    [1011, true],
    [1014, true],
    [1015, false],
    [1016, false],
    [2999, false],
    [3000, true],
    [4999, true],
    [5000, false],
    [999, false],
    [1000.5, false],
    [Number.NaN, false],
  ])("isSendableCloseCode(%s) = %s", (code, sendable) => {
    expect(isSendableCloseCode(code)).toBe(sendable);
  });

  it("keeps short reasons as they are", () => {
    expect(closeReason("DATA-0000")).toBe("DATA-0000");
    expect(closeReason("")).toBe("");
  });

  it.each([
    ["ASCII", "a", 1],
    ["2-byte", "é", 2],
    ["3-byte", "€", 3],
    ["4-byte", "😀", 4],
  ])("cuts %s text at a character boundary within 123 bytes", (_name, ch, size) => {
    const text = ch.repeat(200);
    const reason = closeReason(text);
    const bytes = utf8.encode(reason).byteLength;
    expect(bytes).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
    expect(bytes).toBe(Math.floor(MAX_CLOSE_REASON_BYTES / size) * size);
    expect(text.startsWith(reason)).toBe(true);
    expect(reason).not.toContain("\uFFFD");
  });

  it("does not split a character that straddles byte 123", () => {
    const text = `${"a".repeat(121)}😀b`; // the emoji would occupy bytes 122–125
    expect(closeReason(text)).toBe("a".repeat(121));
  });

  it("adds detail after the code, within the limit", () => {
    expect(closeWith(CLOSE.DATA_ERROR, "cannot decode mulaw")).toEqual({
      code: 1008,
      reason: "DATA-0000: cannot decode mulaw",
    });
    expect(closeWith(CLOSE.NET_IDLE)).toEqual(CLOSE.NET_IDLE);
    const long = closeWith(CLOSE.FLOOD, "ü".repeat(200));
    expect(long.reason.startsWith("BUF-0000: ")).toBe(true);
    expect(utf8.encode(long.reason).byteLength).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
  });
});

describe("classifyTeardownError", () => {
  it.each([
    new TypeError("Can't call WebSocket send() after close()."),
    new Error("Network connection lost."),
    new Error("WebSocket peer disconnected"),
    new Error("kj/compat/http.c++:1234: failed: WebSocket already closed"),
    new Error("WebSocket is not open: readyState 3 (CLOSED)"),
    new Error("WebSocket is not open: readyState 2 (CLOSING)"),
  ])("harmless: %s", (error) => {
    expect(classifyTeardownError(error)).toBe("harmless");
  });

  it.each([
    new TypeError("Invalid WebSocket close code: 1005."),
    new TypeError(
      "You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages.",
    ),
    new Error("WebSocket is not open: readyState 0 (CONNECTING)"),
    new Error("internal error; reference = 0123456789abcdefghijklm"),
    new RangeError("Maximum call stack size exceeded"),
    "Can't call WebSocket send() after close().",
    null,
    undefined,
  ])("unexpected: %s", (error) => {
    expect(classifyTeardownError(error)).toBe("unexpected");
  });

  it("recognises the error workerd really throws on send after close", () => {
    const pair = new WebSocketPair();
    const server = pair[1];
    server.accept();
    server.close(1000, "done");
    let thrown: unknown;
    try {
      server.send("late");
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect(classifyTeardownError(thrown)).toBe("harmless");
  });

  it("classifies workerd's invalid-close-code error as unexpected", () => {
    const pair = new WebSocketPair();
    const server = pair[1];
    server.accept();
    let thrown: unknown;
    try {
      server.close(1005, "reserved");
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect(classifyTeardownError(thrown)).toBe("unexpected");
  });
});

describe("HTTP errors before the upgrade", () => {
  it("puts the error in the body and the dg-* headers", async () => {
    const response = httpError(
      418,
      "TEAPOT",
      "short and stout",
      "req-9",
      { spout: 1 },
      {
        "x-extra": "yes",
      },
    );
    expect(response.status).toBe(418);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(response.headers.get("dg-error")).toBe("short and stout");
    expect(response.headers.get("dg-request-id")).toBe("req-9");
    expect(response.headers.get("x-extra")).toBe("yes");
    expect(await response.json()).toStrictEqual({
      err_code: "TEAPOT",
      err_msg: "short and stout",
      request_id: "req-9",
      spout: 1,
    });
  });

  it("never lets extra fields overwrite the core ones", async () => {
    const response = httpError(400, "A", "b", "c", { err_code: "X", request_id: "Y" });
    expect(await response.json()).toStrictEqual({ err_code: "A", err_msg: "b", request_id: "c" });
  });

  it("keeps header values legal when the message is not ASCII or has line breaks", async () => {
    const message = "encoding “opus” is not supported\r\nSet-Cookie: x=1";
    const response = httpError(400, "Bad Request", message, "r");
    const header = response.headers.get("dg-error") ?? "";
    expect(header).toMatch(/^[\x20-\x7e]+$/);
    expect(header).toContain("is not supported");
    expect(response.headers.get("set-cookie")).toBeNull();
    expect(((await response.json()) as { err_msg: string }).err_msg).toBe(message);
  });

  it("answers a bad option with 400 naming it", async () => {
    const failure = parseListenOptions(new URLSearchParams("channels=2"));
    if (failure.ok) throw new Error("channels=2 should be refused");
    const response = badOption(failure, "req-1");
    expect(response.status).toBe(400);
    const body = (await response.json()) as Record<string, string>;
    expect(body.err_code).toBe("Bad Request");
    expect(body.option).toBe("channels");
    expect(body.err_msg).toMatch(/downmix to mono/);
    expect(response.headers.get("dg-error")).toMatch(/downmix to mono/);
  });

  it("answers 401, 426, 429 and 503 with their headers", async () => {
    const auth = invalidAuth("r1");
    expect(auth.status).toBe(401);
    expect(((await auth.json()) as { err_code: string }).err_code).toBe("INVALID_AUTH");
    expect(auth.headers.get("www-authenticate")).toContain("Token");

    const upgrade = upgradeRequired("r2");
    expect(upgrade.status).toBe(426);
    expect(upgrade.headers.get("upgrade")).toBe("websocket");

    const busy = tooManyRequests("r3", 2.2);
    expect(busy.status).toBe(429);
    expect(busy.headers.get("retry-after")).toBe("3");
    expect(await busy.json()).toMatchObject({ err_code: "TOO_MANY_REQUESTS", retry_after: 3 });
    expect(tooManyRequests("r", 0).headers.get("retry-after")).toBe("1");
    expect(tooManyRequests("r", Number.NaN).headers.get("retry-after")).toBe("1");

    const full = serviceUnavailable("r4", 30);
    expect(full.status).toBe(503);
    expect(full.headers.get("retry-after")).toBe("30");
    expect(((await full.json()) as { err_code: string }).err_code).toBe("SERVICE_UNAVAILABLE");
    expect(serviceUnavailable("r5").headers.get("retry-after")).toBeNull();
  });
});
