import { describe, expect, it } from "vitest";
import { normalizeLanguage, WHISPER_LANGUAGES } from "../src/protocol/languages";
import {
  DEFAULT_ENDPOINTING_MS,
  type ListenOptions,
  MAX_KEYTERM_BYTES,
  MAX_KEYTERMS,
  VAD_FRAME_MS,
} from "../src/protocol/option-schema";
import { differingOption, parseListenOptions } from "../src/protocol/options";
import { MIN_ENDPOINTING_MS } from "../src/session/session-config";
import { VAD_FRAME_SAMPLES } from "../src/vad/silero";
import { msToFrames } from "../src/vad/vad-machine";

function parse(query: string) {
  return parseListenOptions(new URLSearchParams(query));
}

function accepted(query: string): ListenOptions {
  const result = parse(query);
  if (!result.ok) throw new Error(`expected ${query} to be accepted: ${result.message}`);
  return result.options;
}

function refused(query: string): { option: string; message: string } {
  const result = parse(query);
  if (result.ok) throw new Error(`expected ${query} to be refused, got ${JSON.stringify(result)}`);
  return { option: result.option, message: result.message };
}

describe("parseListenOptions defaults", () => {
  it("gives linear16 at 16 kHz mono and documented defaults for an empty query", () => {
    expect(accepted("")).toEqual({
      encoding: "linear16",
      sampleRate: 16000,
      detectContainer: true,
      channels: 1,
      interimResults: false,
      endpointingMs: DEFAULT_ENDPOINTING_MS,
      utteranceEndMs: null,
      vadEvents: false,
      punctuate: false,
      smartFormat: false,
      language: "en",
      model: { requested: "whisper-tiny", name: "whisper-tiny" },
      resumable: false,
      keyterms: [],
      keywords: [],
      numerals: false,
      profanityFilter: false,
    } satisfies ListenOptions);
  });

  it("uses an endpointing default within Deepgram's range for conversation, above a phrase's pause", () => {
    // Not Deepgram's 10 ms: the default itself, not the floor, decides where an utterance ends.
    expect(DEFAULT_ENDPOINTING_MS).toBeGreaterThan(MIN_ENDPOINTING_MS);
    expect(DEFAULT_ENDPOINTING_MS).toBeLessThanOrEqual(500);
    // Longer than a pause inside a phrase as a browser captures it: JFK's "ask | not" through the
    // demo page is up to 10 VAD frames below the silence threshold (vad-machine.ts, misfireMs).
    expect(msToFrames(DEFAULT_ENDPOINTING_MS)).toBeGreaterThan(10);
  });

  it("keeps its VAD frame length in step with the VAD itself", () => {
    expect(VAD_FRAME_MS).toBe((VAD_FRAME_SAMPLES / 16000) * 1000);
  });

  it("parses a typical SDK query in full", () => {
    const options = accepted(
      "model=nova-3&encoding=linear16&sample_rate=48000&channels=1&interim_results=true" +
        "&endpointing=300&utterance_end_ms=1000&vad_events=true&punctuate=true" +
        "&smart_format=true&language=en-US",
    );
    expect(options).toEqual({
      encoding: "linear16",
      sampleRate: 48000,
      detectContainer: false,
      channels: 1,
      interimResults: true,
      endpointingMs: 300,
      utteranceEndMs: 1000,
      vadEvents: true,
      punctuate: true,
      smartFormat: true,
      language: "en",
      model: { requested: "nova-3", name: "whisper-tiny" },
      resumable: false,
      keyterms: [],
      keywords: [],
      numerals: false,
      profanityFilter: false,
    } satisfies ListenOptions);
  });
});

describe("keyterm and keywords", () => {
  it("takes repeated keyterm and keywords values in order, trimmed, intensifiers dropped", () => {
    const options = accepted(
      "keyterm=clubs&keyterm=%20Mr.%20Quilter%20&keywords=snuffleupagus:5&keywords=Dashwood" +
        "&keywords=ratio:1.5",
    );
    expect(options.keyterms).toEqual(["clubs", "Mr. Quilter"]);
    expect(options.keywords).toEqual(["snuffleupagus", "Dashwood", "ratio"]);
  });

  it("keeps a colon that is not an intensifier as part of the keyword", () => {
    expect(accepted("keywords=ratio%3A%20A%3AB").keywords).toEqual(["ratio: A:B"]);
  });

  it.each([
    ["keyterm=", "keyterm", /must not be empty/],
    ["keyterm=%20%20", "keyterm", /must not be empty/],
    ["keyterm=a%0Ab", "keyterm", /control characters/],
    [
      "keywords=kansas:-10",
      "keywords",
      /intensifier must be above 0.*can favour a word but not suppress it/,
    ],
    ["keywords=kansas:0", "keywords", /intensifier must be above 0/],
    ["keywords=:3", "keywords", /must not be empty/],
  ])("%s → %s", (query, option, message) => {
    const failure = refused(query);
    expect(failure.option).toBe(option);
    expect(failure.message).toMatch(message);
  });

  it(`allows ${MAX_KEYTERMS} terms and ${MAX_KEYTERM_BYTES} bytes in all, and names the cap past them`, () => {
    const terms = (n: number, term: (i: number) => string) =>
      Array.from({ length: n }, (_, i) => `keyterm=${encodeURIComponent(term(i))}`).join("&");
    expect(accepted(terms(MAX_KEYTERMS, (i) => `t${i}`)).keyterms).toHaveLength(MAX_KEYTERMS);
    const tooMany = refused(`${terms(MAX_KEYTERMS, (i) => `t${i}`)}&keywords=one`);
    expect(tooMany.option).toBe("keywords");
    expect(tooMany.message).toMatch(/at most 20 terms of 200 UTF-8 bytes.*got 21 terms/);
    // Bytes, not characters: 50 three-byte characters are 150 bytes, four such terms 600.
    const wide = "語".repeat(50);
    expect(accepted(terms(1, () => wide)).keyterms).toEqual([wide]);
    expect(refused(terms(2, () => wide)).message).toMatch(/got 2 terms of 300 bytes/);
    expect(accepted(terms(1, () => "x".repeat(MAX_KEYTERM_BYTES))).keyterms).toHaveLength(1);
    expect(refused(terms(1, () => "x".repeat(MAX_KEYTERM_BYTES + 1))).option).toBe("keyterm");
  });

  it("compares keyterms on a resume like any other option", () => {
    const session = accepted("keyterm=clubs");
    const same = parseListenOptions(new URLSearchParams("keyterm=clubs"));
    const other = parseListenOptions(new URLSearchParams("keyterm=hearts"));
    if (!same.ok || !other.ok) throw new Error("refused");
    expect(differingOption(same.given, same.options, session)).toBeNull();
    expect(differingOption(other.given, other.options, session)).toBe("keyterm");
  });
});

describe("parseListenOptions refuses unknown and repeated options by name", () => {
  it.each([
    ["foo=bar", "foo", /unknown option "foo"/],
    ["Encoding=linear16", "Encoding", /unknown option/],
    ["diarize=true", "diarize", /diarize=true is a Deepgram feature Earshot does not support/],
    ["multichannel=yes", "multichannel", /must be "true" or "false"/],
    ["mip_opt_out=1", "mip_opt_out", /must be "true" or "false"/],
    ["redact=pci", "redact", /Deepgram option Earshot does not support/],
    ["numerals=yes", "numerals", /must be "true" or "false"/],
    ["encoding=linear16&sample_rate=16000&sample_rate=16000", "sample_rate", /more than once/],
    ["language=en&language=fr", "language", /more than once/],
  ])("%s → %s", (query, option, message) => {
    const failure = refused(query);
    expect(failure.option).toBe(option);
    expect(failure.message).toMatch(message);
  });

  it("accepts Deepgram's options that ask for nothing (Pipecat's defaults), and changes nothing", () => {
    // What pipecat-ai/pipecat's DeepgramSTTService sends on every connection, tag included.
    const pipecat =
      "model=nova-3-general&language=en&detect_entities=false&diarize=false&dictation=false" +
      "&interim_results=true&numerals=false&profanity_filter=true&punctuate=true" +
      "&smart_format=false&encoding=linear16&channels=1&multichannel=false&sample_rate=16000" +
      "&tag=support&tag=eu&mip_opt_out=true&version=latest&extra=team:voice";
    const options = accepted(pipecat);
    expect(options.profanityFilter).toBe(true);
    const plain = accepted(
      "model=nova-3-general&language=en&interim_results=true&numerals=false" +
        "&profanity_filter=true&punctuate=true&smart_format=false&encoding=linear16&channels=1" +
        "&sample_rate=16000",
    );
    expect(options).toEqual(plain);
  });

  it("lists what it accepts when an option is unknown", () => {
    expect(refused("bogus=1").message).toContain("encoding, sample_rate, channels");
  });

  it("takes resumable as a boolean option, off by default", () => {
    expect(accepted("").resumable).toBe(false);
    expect(accepted("resumable=true").resumable).toBe(true);
    expect(refused("resumable=yes").option).toBe("resumable");
  });
});

describe("encoding and sample_rate", () => {
  it.each([
    ["encoding=linear16&sample_rate=16000", "linear16", 16000],
    ["encoding=mulaw&sample_rate=8000", "mulaw", 8000],
    ["encoding=mulaw&sample_rate=16000", "mulaw", 16000],
    ["encoding=alaw&sample_rate=8000", "alaw", 8000],
    ["encoding=linear32&sample_rate=48000", "linear32", 48000],
    ["sample_rate=44100", "linear16", 44100],
    ["sample_rate=8000", "linear16", 8000],
    ["sample_rate=48000", "linear16", 48000],
    ["sample_rate=016000", "linear16", 16000],
    // Deepgram requires sample_rate with every encoding; an Ogg Opus stream says its own.
    ["encoding=ogg-opus&sample_rate=48000", "ogg-opus", 48000],
  ])("accepts %s", (query, encoding, sampleRate) => {
    const options = accepted(query);
    expect(options.encoding).toBe(encoding);
    expect(options.sampleRate).toBe(sampleRate);
    expect(options.detectContainer).toBe(false);
  });

  it.each([
    ["encoding=opus&sample_rate=48000", "encoding", /raw Opus packets.*encoding=ogg-opus/],
    ["encoding=webm-opus&sample_rate=48000", "encoding", /no encoding and no sample_rate/],
    ["encoding=ogg-opus", "sample_rate", /required with encoding=ogg-opus/],
    ["encoding=flac&sample_rate=16000", "encoding", /is not supported/],
    ["encoding=LINEAR16&sample_rate=16000", "encoding", /is not supported/],
    ["encoding=&sample_rate=16000", "encoding", /is not supported/],
    ["encoding=linear16", "sample_rate", /required with encoding=linear16/],
    ["encoding=mulaw", "sample_rate", /required with encoding=mulaw/],
    ["encoding=alaw", "sample_rate", /required with encoding=alaw/],
    ["encoding=linear32", "sample_rate", /required with encoding=linear32/],
    ["sample_rate=7999", "sample_rate", /8000 to 48000/],
    ["sample_rate=48001", "sample_rate", /8000 to 48000/],
    ["sample_rate=16000.5", "sample_rate", /whole number/],
    ["sample_rate=16k", "sample_rate", /whole number/],
    ["sample_rate=1.6e4", "sample_rate", /whole number/],
    ["sample_rate=-16000", "sample_rate", /whole number/],
    ["sample_rate=+16000", "sample_rate", /whole number/],
    ["sample_rate=%2016000", "sample_rate", /whole number/],
    ["sample_rate=", "sample_rate", /whole number/],
    ["sample_rate=99999999999999999999", "sample_rate", /whole number/],
  ])("refuses %s (names %s)", (query, option, message) => {
    const failure = refused(query);
    expect(failure.option).toBe(option);
    expect(failure.message).toMatch(message);
  });
});

describe("channels", () => {
  it("accepts 1", () => {
    expect(accepted("channels=1").channels).toBe(1);
  });

  it.each([
    ["channels=2", /downmix to mono/],
    ["channels=0", /downmix to mono/],
    ["channels=6", /downmix to mono/],
    ["channels=1.0", /integer 1/],
    ["channels=one", /integer 1/],
    ["channels=", /integer 1/],
  ])("refuses %s", (query, message) => {
    const failure = refused(query);
    expect(failure.option).toBe("channels");
    expect(failure.message).toMatch(message);
  });
});

describe("boolean options take exactly true or false", () => {
  const booleans = [
    ["interim_results", "interimResults"],
    ["vad_events", "vadEvents"],
    ["punctuate", "punctuate"],
    ["smart_format", "smartFormat"],
  ] as const;

  it.each(booleans)("%s=true / false", (name, field) => {
    expect(accepted(`${name}=true`)[field]).toBe(true);
    expect(accepted(`${name}=false`)[field]).toBe(false);
  });

  it.each(
    booleans.flatMap(([name]) => ["1", "0", "yes", "True", "FALSE", ""].map((v) => [name, v])),
  )("refuses %s=%s", (name, value) => {
    const failure = refused(`${name}=${value}`);
    expect(failure.option).toBe(name);
    expect(failure.message).toMatch(/"true" or "false"/);
  });
});

describe("endpointing", () => {
  it.each([
    ["endpointing=false", false],
    ["endpointing=true", DEFAULT_ENDPOINTING_MS],
    ["endpointing=10", 10],
    ["endpointing=31", 31],
    ["endpointing=300", 300],
    ["endpointing=10000", 10000],
  ])("%s → %s", (query, expected) => {
    expect(accepted(query).endpointingMs).toBe(expected);
  });

  it.each([
    "endpointing=9",
    "endpointing=0",
    "endpointing=10001",
    "endpointing=300.5",
    "endpointing=300ms",
    "endpointing=False",
    "endpointing=",
  ])("refuses %s", (query) => {
    const failure = refused(query);
    expect(failure.option).toBe("endpointing");
    expect(failure.message).toMatch(/10 to 10000/);
  });
});

describe("utterance_end_ms", () => {
  it.each([
    ["interim_results=true&utterance_end_ms=1000", 1000],
    ["utterance_end_ms=2500&interim_results=true", 2500],
    ["interim_results=true&utterance_end_ms=10000", 10000],
  ])("%s → %s", (query, expected) => {
    expect(accepted(query).utteranceEndMs).toBe(expected);
  });

  it.each([
    ["utterance_end_ms=1000", /requires interim_results=true/],
    ["interim_results=false&utterance_end_ms=1000", /requires interim_results=true/],
    ["interim_results=true&utterance_end_ms=999", /1000 to 10000/],
    ["interim_results=true&utterance_end_ms=10001", /1000 to 10000/],
    ["interim_results=true&utterance_end_ms=1500.5", /whole number/],
    ["interim_results=true&utterance_end_ms=", /whole number/],
  ])("refuses %s", (query, message) => {
    const failure = refused(query);
    expect(failure.option).toBe("utterance_end_ms");
    expect(failure.message).toMatch(message);
  });
});

describe("language", () => {
  it("knows exactly Whisper tiny's 99 distinct languages", () => {
    expect(WHISPER_LANGUAGES).toHaveLength(99);
    expect(new Set(WHISPER_LANGUAGES).size).toBe(99);
    expect(WHISPER_LANGUAGES[0]).toBe("en");
    expect(WHISPER_LANGUAGES).toContain("haw");
    expect(WHISPER_LANGUAGES).not.toContain("yue");
  });

  it.each([
    ["en", "en"],
    ["EN", "en"],
    ["en-US", "en"],
    ["en_GB", "en"],
    ["es-419", "es"],
    ["zh-Hant-TW", "zh"],
    ["pt-BR", "pt"],
    ["haw", "haw"],
    ["jv", "jw"],
    ["nb", "no"],
    ["multi", "multi"],
    ["MULTI", "multi"],
  ])("%s → %s", (value, expected) => {
    expect(accepted(`language=${value}`).language).toBe(expected);
  });

  it("accepts every Whisper code as given", () => {
    for (const code of WHISPER_LANGUAGES) expect(normalizeLanguage(code)).toBe(code);
  });

  it.each(["xx", "yue", "english", "e", "en-", "-en", "en US", "", "multi-en"])(
    "refuses %s",
    (value) => {
      const failure = refused(`language=${encodeURIComponent(value)}`);
      expect(failure.option).toBe("language");
      expect(failure.message).toMatch(/99 language codes/);
    },
  );
});

describe("model", () => {
  it.each([
    "nova",
    "nova-2",
    "nova-3",
    "nova-general",
    "nova-phonecall",
    "nova-2-general",
    "nova-2-meeting",
    "nova-2-drivethru",
    "nova-3-general",
    "nova-3-medical",
    "base",
    "base-general",
    "base-phonecall",
    "enhanced",
    "enhanced-meeting",
    "general",
    "meeting",
    "phonecall",
    "conversationalai",
    "whisper",
    "whisper-tiny",
    "whisper-base",
    "whisper-small",
    "whisper-medium",
    "whisper-large",
    "Nova-3",
  ])("accepts %s and runs whisper-tiny", (model) => {
    expect(accepted(`model=${model}`).model).toEqual({ requested: model, name: "whisper-tiny" });
  });

  it.each([
    "nova-4",
    "nova-3-",
    "nova-2-general-",
    "whisper-huge",
    "whisper-",
    "custom",
    "gpt-4o-transcribe",
    "",
    "base-",
  ])("refuses %s and lists the accepted forms", (model) => {
    const failure = refused(`model=${model}`);
    expect(failure.option).toBe("model");
    expect(failure.message).toContain("nova-3-<domain>");
    expect(failure.message).toContain("whisper-tiny");
  });
});

describe("resume parameters", () => {
  const ID = "0f8fad5b-d9cb-469f-a165-70867728950e";

  function resumeOf(query: string) {
    const result = parse(query);
    if (!result.ok) throw new Error(`expected ${query} to be accepted: ${result.message}`);
    return result;
  }

  it("reads session_id, resume_offset and finals_received (default 0)", () => {
    expect(resumeOf(`session_id=${ID}&resume_offset=1440000000`).resume).toEqual({
      sessionId: ID,
      resumeOffset: 1_440_000_000, // past 9 digits: a 4-h session at 48 kHz linear16
      finalsReceived: 0,
    });
    expect(resumeOf(`session_id=${ID}&resume_offset=0&finals_received=7`).resume).toEqual({
      sessionId: ID,
      resumeOffset: 0,
      finalsReceived: 7,
    });
    expect(resumeOf("encoding=linear16&sample_rate=16000").resume).toBeNull();
  });

  it.each([
    ["session_id=abc&resume_offset=0", "session_id", /UUID/],
    [`session_id=${ID.toUpperCase()}&resume_offset=0`, "session_id", /UUID/],
    [`session_id=${ID}`, "resume_offset", /required with session_id/],
    [`session_id=${ID}&resume_offset=-1`, "resume_offset", /whole number of bytes/],
    [`session_id=${ID}&resume_offset=1.5`, "resume_offset", /whole number of bytes/],
    [`session_id=${ID}&resume_offset=0&finals_received=x`, "finals_received", /whole number/],
    ["resume_offset=3200", "resume_offset", /needs session_id/],
    ["finals_received=2", "finals_received", /needs session_id/],
    [`session_id=${ID}&session_id=${ID}&resume_offset=0`, "session_id", /more than once/],
  ])("refuses %s naming %s", (query, option, message) => {
    const failure = refused(query);
    expect(failure.option).toBe(option);
    expect(failure.message).toMatch(message);
  });

  it("compares only the options a resume names with the session's", () => {
    const session = accepted("encoding=mulaw&sample_rate=8000&interim_results=true&resumable=true");
    const same = resumeOf(
      `session_id=${ID}&resume_offset=0&encoding=mulaw&sample_rate=8000&interim_results=true&resumable=true`,
    );
    expect(differingOption(same.given, same.options, session)).toBeNull();
    const bare = resumeOf(`session_id=${ID}&resume_offset=0`);
    expect(bare.given).toEqual([]);
    expect(differingOption(bare.given, bare.options, session)).toBeNull();
    const other = resumeOf(`session_id=${ID}&resume_offset=0&sample_rate=16000`);
    expect(differingOption(other.given, other.options, session)).toBe("sample_rate");
    const off = resumeOf(`session_id=${ID}&resume_offset=0&resumable=false`);
    expect(differingOption(off.given, off.options, session)).toBe("resumable");
  });
});
