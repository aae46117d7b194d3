// Structured logs: one JSON object per line on stderr ({"t", "level", "msg", ...fields}) so operators can
// ship agent logs to anything that reads JSON lines. Secrets never reach the output: fields whose name
// looks like a credential are replaced, whatever the caller passed.

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /token|authorization|secret|password|apikey|api_key/i;

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (e.g. the worker id). */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  write?: (line: string) => void;
  now?: () => Date;
}

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

export function createLogger(options: LoggerOptions = {}, base: LogFields = {}): Logger {
  const level = options.level ?? "info";
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? (() => new Date());
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[lvl] < RANK[level]) return;
    const record: LogFields = { t: now().toISOString(), level: lvl, msg };
    for (const [k, v] of Object.entries({ ...base, ...fields })) {
      if (k === "t" || k === "level" || k === "msg") continue;
      record[k] = SECRET_KEY.test(k) ? "[redacted]" : serialize(v);
    }
    write(`${JSON.stringify(record)}\n`);
  };
  return {
    level,
    enabled: (lvl) => RANK[lvl] >= RANK[level],
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

/** A logger that drops everything (library default, tests). */
export const silentLogger: Logger = createLogger({ level: "error", write: () => {} });

// Errors do not survive JSON.stringify (they become {}); keep their message and errno code.
function serialize(v: unknown): unknown {
  if (v instanceof Error) {
    const code = (v as NodeJS.ErrnoException).code;
    return code ? { message: v.message, code } : { message: v.message };
  }
  return v;
}
