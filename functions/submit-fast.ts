// POST /v1/jobs bodies checked without zod, for the bodies that are plainly valid. Inside workerd zod cannot
// compile its object checks (code generation is not allowed there), so it walks every body generically:
// ~6 % of the submit route's isolate time in bench/profile.ts. This accepts a subset of what JobSubmit
// accepts and returns the very value zod would return, defaults filled in and keys in the schema's order
// (the Idempotency-Key fingerprint hashes it). Anything else gets null and goes to the schema, which decides
// and words the error. test/unit/submit-fast.test.ts holds the two to that on random bodies.
import type { JobSubmitInput } from "./schemas.ts";

const TOP_KEYS = new Set([
  "name",
  "command",
  "gpus",
  "gpuType",
  "priority",
  "maxRuntimeSeconds",
  "maxRetries",
  "env",
  "labels",
  "user",
  "array",
  "dependsOn",
]);
const PRIORITIES = new Set(["high", "normal", "low"]);
const CONDITIONS = new Set(["succeeded", "finished"]);

// The schema's patterns (functions/schemas.ts), repeated here so this file needs no zod at all.
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const PRINTABLE = /^[^\u0000-\u001f\u007f]*$/;
const GPU_TYPE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const RESERVED_ENV = /^(GANTRY_|CUDA_VISIBLE_DEVICES$)/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const USER = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;

/** The validated submission when the body is certainly valid as it stands; null when the schema must judge. */
export function fastJobSubmit(raw: unknown): JobSubmitInput | null {
  if (!isRecord(raw)) return null;
  for (const k in raw) if (!TOP_KEYS.has(k) || raw[k] === undefined) return null;
  const b = raw;
  if (!text(b.name, 1, 128) || !PRINTABLE.test(b.name)) return null;
  if (!Array.isArray(b.command) || b.command.length < 1 || b.command.length > 256) return null;
  for (const c of b.command) if (!text(c, 0, 4096)) return null;
  if (!int(b.gpus, 1, 64)) return null;
  if ("gpuType" in b && !(text(b.gpuType, 0, Infinity) && GPU_TYPE.test(b.gpuType))) return null;
  if ("priority" in b && !(typeof b.priority === "string" && PRIORITIES.has(b.priority))) return null;
  if ("maxRuntimeSeconds" in b && !int(b.maxRuntimeSeconds, 1, 30 * 86400)) return null;
  if ("maxRetries" in b && !int(b.maxRetries, 0, 10)) return null;
  if ("env" in b && !record(b.env, 128, envEntry)) return null;
  if ("labels" in b && !record(b.labels, 64, labelEntry)) return null;
  if ("user" in b && !(text(b.user, 1, 128) && USER.test(b.user))) return null;
  if ("array" in b && !arraySpec(b.array)) return null;
  let dependsOn: JobSubmitInput["dependsOn"];
  if ("dependsOn" in b) {
    if (!Array.isArray(b.dependsOn) || b.dependsOn.length > 100) return null;
    dependsOn = [];
    for (const d of b.dependsOn) {
      if (!isRecord(d)) return null;
      for (const k in d) if ((k !== "job" && k !== "condition") || d[k] === undefined) return null;
      if (!text(d.job, 0, 200)) return null;
      const condition = "condition" in d ? d.condition : "succeeded";
      if (typeof condition !== "string" || !CONDITIONS.has(condition)) return null;
      dependsOn.push({ job: d.job, condition: condition as "succeeded" | "finished" });
    }
  }
  // Built in the schema's key order, as zod builds its output.
  const out: Record<string, unknown> = { name: b.name, command: [...b.command], gpus: b.gpus };
  if ("gpuType" in b) out.gpuType = b.gpuType;
  out.priority = b.priority ?? "normal";
  if ("maxRuntimeSeconds" in b) out.maxRuntimeSeconds = b.maxRuntimeSeconds;
  out.maxRetries = b.maxRetries ?? 0;
  out.env = { ...(b.env as Record<string, string> | undefined) };
  out.labels = { ...(b.labels as Record<string, string> | undefined) };
  if ("user" in b) out.user = b.user;
  if ("array" in b) out.array = { size: (b.array as { size: number }).size };
  if (dependsOn) out.dependsOn = dependsOn;
  return out as JobSubmitInput;
}

function envEntry(k: string, v: unknown): boolean {
  return ENV_NAME.test(k) && !RESERVED_ENV.test(k) && text(v, 0, 4096);
}

function labelEntry(k: string, v: unknown): boolean {
  return LABEL_KEY.test(k) && text(v, 0, 256) && PRINTABLE.test(v);
}

/**
 * A plain object of at most `max` entries that all pass. `__proto__` (a name ENV_NAME allows) is left to
 * the schema: copying it would set the copy's prototype, and zod drops it.
 */
function record(v: unknown, max: number, entry: (k: string, v: unknown) => boolean): boolean {
  if (!isRecord(v)) return false;
  let n = 0;
  for (const k in v) {
    if (++n > max || k === "__proto__" || !entry(k, v[k])) return false;
  }
  return true;
}

function arraySpec(v: unknown): boolean {
  if (!isRecord(v)) return false;
  for (const k in v) if (k !== "size") return false;
  return int(v.size, 1, 10_000);
}

function text(v: unknown, min: number, max: number): v is string {
  return typeof v === "string" && v.length >= min && v.length <= max;
}

function int(v: unknown, min: number, max: number): v is number {
  return Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
}

/** A plain object as JSON.parse makes them (no arrays, no prototypes other than Object's). */
function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}
