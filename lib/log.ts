/**
 * Structured logs: one JSON object per line on stderr, quiet by default.
 * Level from PVE_CRI_LOG (error, warn, info, debug); "warn" when unset.
 */
export type LogLevel = "error" | "warn" | "info" | "debug";

export interface LogFields {
  stream?: string;
  sandbox_id?: string;
  container_id?: string;
  method?: string;
  request_id?: string;
  duration_ms?: number;
  [field: string]: unknown;
}

const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
const encoder = new TextEncoder();

export interface LogSink {
  write(line: string): void;
}

const stderrSink: LogSink = {
  write(line) {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  },
};

export class Logger {
  readonly #level: LogLevel;
  readonly #fields: LogFields;
  readonly #sink: LogSink;

  constructor(level: LogLevel, fields: LogFields = {}, sink: LogSink = stderrSink) {
    this.#level = level;
    this.#fields = fields;
    this.#sink = sink;
  }

  /** A logger whose lines all carry these fields too. */
  with(fields: LogFields): Logger {
    return new Logger(this.#level, { ...this.#fields, ...fields }, this.#sink);
  }

  enabled(level: LogLevel): boolean {
    return rank[level] <= rank[this.#level];
  }

  error(msg: string, fields?: LogFields): void {
    this.#emit("error", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#emit("warn", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#emit("info", msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.#emit("debug", msg, fields);
  }

  #emit(level: LogLevel, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const line = { time: new Date().toISOString(), level, msg, ...this.#fields, ...fields };
    this.#sink.write(JSON.stringify(line));
  }
}

export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined || value === "") return "warn";
  if (value in rank) return value as LogLevel;
  throw new RangeError(`Unknown log level "${value}": use error, warn, info or debug`);
}

function envLevel(): string | undefined {
  try {
    return Deno.env.get("PVE_CRI_LOG");
  } catch {
    return undefined; // no --allow-env
  }
}

/** The process-wide default logger. */
export const rootLogger = new Logger(parseLogLevel(envLevel()));

/** A logger that drops everything, for tests and tools that must stay silent. */
export const silentLogger = new Logger("error", {}, { write() {} });
