/**
 * The query options of `GET /v1/listen`, validated into one typed object before the upgrade.
 *
 * Earshot honours the subset of Deepgram's live options that a Whisper-tiny pipeline can mean
 * honestly, and refuses everything else by name (HTTP 400 from the route), so a client never
 * believes an option took effect when it did not. Sources for Deepgram's rules are cited next to
 * each option; where Deepgram is silent the choice is Earshot's and says why.
 *
 * This file reads the whole query (unknown and repeated names, the order of reading, the rules
 * that join two options) and compares a resume's options with its session's. The rest lives
 * beside it: option-schema.ts (ListenOptions, names, defaults and caps), option-values.ts (each
 * value's parser), option-table.ts (which parser and default each option has), keyterms.ts
 * (keyterm and keywords) and resume-params.ts (session_id, resume_offset).
 */

import { readTerms } from "./keyterms";
import {
  DEEPGRAM_NO_EFFECT,
  DEEPGRAM_UNSUPPORTED,
  LISTEN_OPTION_NAMES,
  type ListenOptionName,
  type ListenOptions,
  REPEATABLE,
} from "./option-schema";
import {
  OPTION_FIELDS,
  OPTION_ROWS,
  type SingleOptionName,
  type SingleOptionValues,
} from "./option-table";
import { parseBoolean } from "./option-values";
import { bounded, quote } from "./quote";
import { parseResume, RESUME_PARAMS, type ResumeRequest } from "./resume-params";

// src/session and src/audio import these types from here; their home is option-schema.ts.

export type OptionsResult =
  | {
      ok: true;
      options: ListenOptions;
      /** The options the query named explicitly (a resume's must equal the session's). */
      given: ListenOptionName[];
      resume: ResumeRequest | null;
    }
  | { ok: false; option: string; message: string };

const KNOWN_PARAMS: ReadonlySet<string> = new Set<string>([
  ...LISTEN_OPTION_NAMES,
  ...RESUME_PARAMS,
  ...Object.keys(DEEPGRAM_NO_EFFECT),
]);

/**
 * The first option a resume's query names whose value differs from the session's, or null. Only
 * named options count: a resume may repeat the original URL or leave the options out.
 */
export function differingOption(
  given: readonly ListenOptionName[],
  requested: ListenOptions,
  session: ListenOptions,
): ListenOptionName | null {
  for (const name of given) {
    if (name === "resumable" && requested.resumable) continue;
    if (OPTION_FIELDS[name](requested) !== OPTION_FIELDS[name](session)) return name;
  }
  return null;
}

function unknownMessage(name: string): string {
  const accepted = `Earshot accepts: ${LISTEN_OPTION_NAMES.join(", ")}`;
  if (DEEPGRAM_UNSUPPORTED.has(name)) {
    return `${quote(name)} is a Deepgram option Earshot does not support; ${accepted}`;
  }
  return `unknown option ${quote(name)}; ${accepted}`;
}

/** The first DEEPGRAM_NO_EFFECT option whose value asks for more than nothing, or null. */
function noEffectRefusal(params: URLSearchParams): OptionsResult | null {
  for (const [name, raw] of params) {
    const kind = DEEPGRAM_NO_EFFECT[name];
    if (kind === undefined || kind === "label") continue;
    const step = parseBoolean(raw);
    if (!step.ok) return { ok: false, option: name, message: `${name} ${step.message}` };
    if (kind === "off" && step.value) {
      return {
        ok: false,
        option: name,
        message: `${name}=true is a Deepgram feature Earshot does not support (${name}=false is accepted)`,
      };
    }
  }
  return null;
}

/**
 * Validates the query of a `/v1/listen` handshake. The first problem found is returned, naming
 * the option, so the route can answer HTTP 400 before any audio is accepted.
 */
export function parseListenOptions(params: URLSearchParams): OptionsResult {
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (!KNOWN_PARAMS.has(name)) {
      return { ok: false, option: bounded(name), message: unknownMessage(name) };
    }
    // A repeated option is ambiguous (which one wins differs between servers); refuse it.
    if (seen.has(name) && !REPEATABLE.has(name)) {
      return { ok: false, option: name, message: `${quote(name)} is given more than once` };
    }
    seen.add(name);
  }
  const noEffect = noEffectRefusal(params);
  if (noEffect !== null) return noEffect;

  const error = (option: string, message: string): OptionsResult => ({
    ok: false,
    option,
    message: `${option} ${message}`,
  });
  /** The first option refused while reading, if any: every option below reads through `read`. */
  let refused: OptionsResult | null = null;
  /**
   * Option `name` through its parser, or its `fallback` when absent (both from its row in
   * OPTION_ROWS); a refusal is kept, first wins.
   */
  const read = <K extends SingleOptionName>(name: K): SingleOptionValues[K] => {
    const { parse, fallback } = OPTION_ROWS[name];
    const raw = params.get(name);
    if (raw === null || refused !== null) return fallback;
    const step = parse(raw);
    if (step.ok) return step.value;
    refused = error(name, step.message);
    return fallback;
  };

  const rawEncoding = params.get("encoding");
  const rawRate = params.get("sample_rate");
  const encoding = read("encoding");
  // Deepgram: "sample_rate is required when encoding is set" for raw audio; without it the
  // bytes cannot be interpreted. Guessing would transcribe at the wrong speed, silently.
  if (refused === null && rawEncoding !== null && rawRate === null) {
    return {
      ok: false,
      option: "sample_rate",
      message: `sample_rate is required with encoding=${encoding} (e.g. sample_rate=16000)`,
    };
  }
  // sample_rate alone implies linear16, the raw format every mic pipeline produces.
  const sampleRate = read("sample_rate");
  const channels = read("channels");
  const interimResults = read("interim_results");
  const vadEvents = read("vad_events");
  const punctuate = read("punctuate");
  const smartFormat = read("smart_format");
  const resumable = read("resumable");
  const numerals = read("numerals");
  const profanityFilter = read("profanity_filter");
  const endpointingMs = read("endpointing");
  const utteranceEndMs = read("utterance_end_ms");
  // Deepgram's rule (docs/utterance-end): the gap is measured on interim results, so the
  // feature requires interim_results=true.
  if (refused === null && utteranceEndMs !== null && !interimResults) {
    refused = error("utterance_end_ms", "requires interim_results=true");
  }
  const language = read("language");
  const model = read("model");
  if (refused !== null) return refused;

  const terms = readTerms(params);
  if (!terms.ok) return error(terms.option, terms.message);

  const resume = parseResume(params);
  if (!resume.ok) return resume;

  return {
    ok: true,
    given: LISTEN_OPTION_NAMES.filter((name) => seen.has(name)),
    resume: resume.resume,
    options: {
      encoding,
      sampleRate,
      detectContainer: rawEncoding === null && rawRate === null,
      channels,
      interimResults,
      endpointingMs,
      utteranceEndMs,
      vadEvents,
      punctuate,
      smartFormat,
      language,
      model,
      resumable,
      keyterms: terms.keyterms,
      keywords: terms.keywords,
      numerals,
      profanityFilter,
    },
  };
}
