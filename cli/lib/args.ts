// A thin wrapper over node:util parseArgs so every CLI command parses flags the same way and reports bad
// input as a UsageError (exit 2) instead of a stack trace.
import { type ParseArgsConfig, parseArgs } from "node:util";
import { UsageError } from "./errors.ts";

export type FlagSpec = NonNullable<ParseArgsConfig["options"]>;

export interface ParsedFlags {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

/** Parses `argv` strictly: unknown flags, missing values and unexpected positionals are UsageErrors. */
export function parseFlags(argv: string[], options: FlagSpec, allowPositionals = false): ParsedFlags {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals, strict: true });
    return { values: values as ParsedFlags["values"], positionals };
  } catch (err) {
    // parseArgs messages already name the flag; drop Node's hint about "--" which confuses users.
    const message =
      err instanceof Error ? err.message.replace(/\s*To specify a positional argument.*$/s, "") : String(err);
    throw new UsageError(message);
  }
}

/** Reads a string flag (the last one wins when repeated by mistake). */
export function stringFlag(flags: ParsedFlags, name: string): string | undefined {
  const v = flags.values[name];
  if (Array.isArray(v)) return v.length > 0 ? String(v[v.length - 1]) : undefined;
  return typeof v === "string" ? v : undefined;
}

/** Reads a flag declared with `multiple: true`. */
export function listFlag(flags: ParsedFlags, name: string): string[] {
  const v = flags.values[name];
  if (Array.isArray(v)) return v.map(String);
  return typeof v === "string" ? [v] : [];
}

export function boolFlag(flags: ParsedFlags, name: string): boolean {
  return flags.values[name] === true;
}

/** Parses `k=v` pairs (labels, env). The value may contain "="; the key may not be empty. */
export function parseKeyValues(pairs: string[], flagName: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--${flagName} expects key=value, got "${pair}"`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Parses a non-negative number of seconds. */
export function parseSeconds(raw: string, flagName: string): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`--${flagName} expects a number of seconds >= 0, got "${raw}"`);
  }
  return n;
}
