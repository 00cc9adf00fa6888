/**
 * Structured logs: one JSON object per line, with the session and account they concern, so a
 * broken session can be found in Workers Logs by its id. Never log secrets (keys, tokens) or audio.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
/** Values are JSON-encoded; Error objects (under any key) become "Name: message". */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  with(fields: LogFields): Logger;
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

export function createLogger(context: LogFields = {}): Logger {
  const write = (level: LogLevel, event: string, fields: LogFields = {}) => {
    const line = JSON.stringify({ level, event, ...context, ...fields }, (_key, value: unknown) =>
      value instanceof Error ? describeError(value) : value,
    );
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  };
  return {
    debug: (event, fields) => write("debug", event, fields),
    info: (event, fields) => write("info", event, fields),
    warn: (event, fields) => write("warn", event, fields),
    error: (event, fields) => write("error", event, fields),
    with: (fields) => createLogger({ ...context, ...fields }),
  };
}
