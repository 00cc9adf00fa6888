/**
 * The `/v1/listen` options as a table: for each single-valued option, the parser that reads it
 * and its value when the query leaves it out; for every option, the ListenOptions field it sets.
 * parseListenOptions (options.ts) reads through OPTION_ROWS, in its own order, with the rules
 * that join two options; keyterm and keywords, which repeat, are read by keyterms.ts.
 */

import { DEFAULT_MODEL } from "./models";
import {
  DEFAULT_ENCODING,
  DEFAULT_ENDPOINTING_MS,
  DEFAULT_SAMPLE_RATE_HZ,
  type ListenOptionName,
  type ListenOptions,
} from "./option-schema";
import {
  parseBoolean,
  parseChannels,
  parseEncoding,
  parseEndpointing,
  parseLanguage,
  parseModel,
  parseSampleRate,
  parseUtteranceEnd,
  type Step,
} from "./option-values";

/** The options given at most once, one value each (every one but keyterm and keywords). */
export type SingleOptionName = Exclude<ListenOptionName, "keyterm" | "keywords">;

/** What each single-valued option reads to: the type of the ListenOptions field it fills. */
export interface SingleOptionValues {
  encoding: ListenOptions["encoding"];
  sample_rate: ListenOptions["sampleRate"];
  channels: ListenOptions["channels"];
  interim_results: ListenOptions["interimResults"];
  endpointing: ListenOptions["endpointingMs"];
  utterance_end_ms: ListenOptions["utteranceEndMs"];
  vad_events: ListenOptions["vadEvents"];
  punctuate: ListenOptions["punctuate"];
  smart_format: ListenOptions["smartFormat"];
  language: ListenOptions["language"];
  model: ListenOptions["model"];
  resumable: ListenOptions["resumable"];
  numerals: ListenOptions["numerals"];
  profanity_filter: ListenOptions["profanityFilter"];
}

/** How one option is read: its parser, and its value when the query does not name it. */
export interface OptionRow<T> {
  parse: (raw: string) => Step<T>;
  fallback: T;
}

/** Every single-valued option's parser and default. */
export const OPTION_ROWS: { [K in SingleOptionName]: OptionRow<SingleOptionValues[K]> } = {
  encoding: { parse: parseEncoding, fallback: DEFAULT_ENCODING },
  sample_rate: { parse: parseSampleRate, fallback: DEFAULT_SAMPLE_RATE_HZ },
  channels: { parse: parseChannels, fallback: 1 },
  interim_results: { parse: parseBoolean, fallback: false },
  endpointing: { parse: parseEndpointing, fallback: DEFAULT_ENDPOINTING_MS },
  utterance_end_ms: { parse: parseUtteranceEnd, fallback: null },
  vad_events: { parse: parseBoolean, fallback: false },
  punctuate: { parse: parseBoolean, fallback: false },
  smart_format: { parse: parseBoolean, fallback: false },
  language: { parse: parseLanguage, fallback: "en" },
  model: { parse: parseModel, fallback: { requested: DEFAULT_MODEL, name: "whisper-tiny" } },
  resumable: { parse: parseBoolean, fallback: false },
  numerals: { parse: parseBoolean, fallback: false },
  profanity_filter: { parse: parseBoolean, fallback: false },
};

/** Which ListenOptions field each query option sets (for comparing a resume with its session). */
export const OPTION_FIELDS: Record<ListenOptionName, (options: ListenOptions) => unknown> = {
  encoding: (o) => o.encoding,
  sample_rate: (o) => o.sampleRate,
  channels: (o) => o.channels,
  interim_results: (o) => o.interimResults,
  endpointing: (o) => o.endpointingMs,
  utterance_end_ms: (o) => o.utteranceEndMs,
  vad_events: (o) => o.vadEvents,
  punctuate: (o) => o.punctuate,
  smart_format: (o) => o.smartFormat,
  language: (o) => o.language,
  model: (o) => o.model.requested,
  // A resume is resumable by definition; repeating resumable=true is fine, false contradicts it.
  resumable: (o) => o.resumable,
  keyterm: (o) => JSON.stringify(o.keyterms),
  keywords: (o) => JSON.stringify(o.keywords),
  numerals: (o) => o.numerals,
  profanity_filter: (o) => o.profanityFilter,
};
