// The CEL environment policies are compiled in, and the conversion of a submission into CEL values.
// Pure: imports nothing but cel-js, so it runs unchanged in workerd and in Node.
//
// Variables a policy sees (PRODUCT.md §3):
//   job     gantry.Job     the submission (fields in JOB_FIELDS; ints are CEL int, i.e. JS bigint)
//   tenant  gantry.Tenant  {id, name, weight}
//   now     timestamp      the evaluation time (google.protobuf.Timestamp, a JS Date)
//
// Absent values are exposed as the zero value of the field's type, as CEL does for unset proto3 scalar
// fields: a job without `gpuType` has `job.gpuType == ""`, without `maxRuntimeSeconds` has
// `job.maxRuntimeSeconds == 0`, and a job that is not an array has `job.arraySize == 0`. Keeping every
// field non-null keeps the types static, so `job.gpuType == "H100"` type-checks and is simply false
// instead of failing at run time on a null.
import { Environment } from "@marcbachmann/cel-js";

/** What a policy can read of a job. Upper bounds are the gateway's; the cost estimator relies on them. */
export const JOB_FIELDS = {
  name: "string",
  user: "string",
  gpus: "int",
  gpuType: "string",
  priority: "string",
  command: "list<string>",
  env: "map<string, string>",
  labels: "map<string, string>",
  maxRuntimeSeconds: "int",
  maxRetries: "int",
  arraySize: "int",
} as const;

export const TENANT_FIELDS = { id: "string", name: "string", weight: "double" } as const;

export const POLICY_VARIABLES = ["job", "tenant", "now"] as const;

/** Gateway limits on a submission; the cost estimator multiplies loop bodies by these. */
export const INPUT_BOUNDS = {
  commandItems: 256,
  envEntries: 128,
  labelEntries: 64,
  stringBytes: 4096,
} as const;

// cel-js reads message fields as own properties of an instance whose constructor is registered, so a
// class with a fixed field order gives V8 one hidden class for every job and field reads stay monomorphic.
export class CelJob {
  constructor(
    readonly name: string,
    readonly user: string,
    readonly gpus: bigint,
    readonly gpuType: string,
    readonly priority: string,
    readonly command: readonly string[],
    readonly env: Readonly<Record<string, string>>,
    readonly labels: Readonly<Record<string, string>>,
    readonly maxRuntimeSeconds: bigint,
    readonly maxRetries: bigint,
    readonly arraySize: bigint,
  ) {}
}

export class CelTenant {
  constructor(
    readonly id: string,
    readonly name: string,
    readonly weight: number,
  ) {}
}

/**
 * Structural parse limits. Generous for hand-written policies, small enough that a pathological
 * expression is refused by the parser before the cost estimator even walks it.
 */
export const CEL_LIMITS = {
  maxAstNodes: 1000,
  maxDepth: 64,
  maxListElements: 256,
  maxMapEntries: 64,
  maxCallArguments: 8,
} as const;

let env: Environment | undefined;

/** Built lazily (the cel-js docs call environment setup expensive) and shared by every policy. */
export function policyEnvironment(): Environment {
  if (env) return env;
  env = new Environment({ limits: { ...CEL_LIMITS } })
    .registerType("gantry.Job", { ctor: CelJob, fields: { ...JOB_FIELDS } })
    .registerType("gantry.Tenant", { ctor: CelTenant, fields: { ...TENANT_FIELDS } })
    .registerVariable("job", "gantry.Job", { description: "The submission being admitted" })
    .registerVariable("tenant", "gantry.Tenant", { description: "The submitting tenant" })
    // cel-js 8 does not accept "timestamp" as a variable type string, but its timestamp type is
    // registered under the protobuf name, which is what CEL's `timestamp` is anyway.
    .registerVariable("now", "google.protobuf.Timestamp", { description: "Evaluation time" });
  return env;
}

/** CEL ints are bigint; the gateway has already validated these are integers. */
function celInt(n: number | null | undefined): bigint {
  if (n === null || n === undefined || !Number.isFinite(n)) return 0n;
  return BigInt(Math.trunc(n));
}

export interface CelJobSource {
  name: string;
  user: string;
  gpus: number;
  gpuType: string | null;
  priority: string;
  command: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  maxRuntimeSeconds: number | null;
  maxRetries: number;
  arraySize?: number | null;
}

export function toCelJob(j: CelJobSource): CelJob {
  // Lists and maps are passed by reference, not copied: CEL cannot mutate them and copying 128 env
  // entries per submission would cost more than evaluating most policies.
  return new CelJob(
    j.name,
    j.user,
    celInt(j.gpus),
    j.gpuType ?? "",
    j.priority,
    j.command,
    j.env,
    j.labels,
    celInt(j.maxRuntimeSeconds),
    celInt(j.maxRetries),
    celInt(j.arraySize),
  );
}

export const toCelTenant = (t: { id: string; name: string; weight: number }) =>
  new CelTenant(t.id, t.name, Number(t.weight));

// Time-zone getters (`now.getHours("Europe/Berlin")`) in cel-js 8 call
// `date.toLocaleString("en-US", {timeZone})`, which builds a new Intl formatter on every call: ~60 µs in
// Node 20, three times the whole admission budget. Built-in overloads cannot be replaced, so the `now`
// value carries its own toLocaleString that reuses one formatter per zone (~1 µs); the output is the
// same string (asserted in the unit tests). Other Dates are untouched.
const TZ_CACHE_MAX = 64;
const tzFormats = new Map<string, Intl.DateTimeFormat>();

function tzFormat(timeZone: string): Intl.DateTimeFormat {
  let f = tzFormats.get(timeZone);
  if (!f) {
    // Throws RangeError for an unknown zone, exactly like toLocaleString would; nothing is cached then.
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    if (tzFormats.size >= TZ_CACHE_MAX) tzFormats.clear();
    tzFormats.set(timeZone, f);
  }
  return f;
}

// Formatting with a cached formatter still costs ~4–5 µs per call on a slow machine, a quarter of the
// admission budget for one time-zone policy. A zone's UTC offset only changes at transitions, and today's
// zones (whole quarter-hour offsets) switch on a quarter-hour boundary in UTC, so the offset is computed
// once per zone per quarter hour and the string is built from the shifted UTC fields. A quarter hour whose
// two ends disagree (not seen with current zones) is not cached and formats the slow way.
const QUARTER_HOUR_MS = 15 * 60_000;
const zoneOffsets = new Map<string, { from: number; offsetMs: number | null }>();

function offsetAt(f: Intl.DateTimeFormat, t: number): number {
  const v: Record<string, number> = {};
  let pm = false;
  for (const p of f.formatToParts(t)) {
    if (p.type === "dayPeriod") pm = p.value === "PM";
    else if (p.type !== "literal") v[p.type] = Number(p.value);
  }
  const hour = ((v.hour ?? 0) % 12) + (pm ? 12 : 0);
  const local = Date.UTC(v.year ?? 0, (v.month ?? 1) - 1, v.day ?? 1, hour, v.minute ?? 0, v.second ?? 0);
  return local - (t - (((t % 1000) + 1000) % 1000));
}

/** The zone's offset (ms) at t, or null where the quarter hour around t holds a transition. */
function zoneOffset(timeZone: string, t: number): number | null {
  const from = Math.floor(t / QUARTER_HOUR_MS) * QUARTER_HOUR_MS;
  const hit = zoneOffsets.get(timeZone);
  if (hit?.from === from) return hit.offsetMs;
  const f = tzFormat(timeZone);
  const a = offsetAt(f, from);
  const offsetMs = a === offsetAt(f, from + QUARTER_HOUR_MS - 1000) ? a : null;
  if (zoneOffsets.size >= TZ_CACHE_MAX) zoneOffsets.clear();
  zoneOffsets.set(timeZone, { from, offsetMs });
  return offsetMs;
}

/** The formatter's output pattern (parts and literals, which depend on the locale, not the zone). */
let pattern: { type: string; value: string; pad: boolean }[] | null = null;

function formatShifted(local: Date): string {
  if (!pattern) {
    const f = tzFormat("UTC");
    const sample = Date.UTC(2001, 0, 2, 3, 4, 5);
    // V8's format() turns ICU's narrow no-break space before AM/PM into a plain space; formatToParts not.
    const plain = !f.format(sample).includes("\u202f");
    pattern = f.formatToParts(sample).map((p) => ({
      type: p.type,
      value: p.type === "literal" && plain ? p.value.replace(/\u202f/g, " ") : p.value,
      pad: p.value.length === 2 && p.value.startsWith("0"),
    }));
  }
  const h = local.getUTCHours();
  const field: Record<string, number | string> = {
    year: local.getUTCFullYear(),
    month: local.getUTCMonth() + 1,
    day: local.getUTCDate(),
    hour: h % 12 || 12,
    minute: local.getUTCMinutes(),
    second: local.getUTCSeconds(),
    dayPeriod: h < 12 ? "AM" : "PM",
  };
  let out = "";
  for (const p of pattern) {
    if (p.type === "literal") out += p.value;
    else {
      const v = String(field[p.type] ?? p.value);
      out += p.pad ? v.padStart(2, "0") : v;
    }
  }
  return out;
}

function cachedToLocaleString(
  this: Date,
  locales?: Intl.LocalesArgument,
  options?: Intl.DateTimeFormatOptions,
): string {
  const timeZone = options?.timeZone;
  if (locales !== "en-US" || timeZone === undefined || Object.keys(options ?? {}).length !== 1) {
    return Date.prototype.toLocaleString.call(this, locales, options);
  }
  const t = this.getTime();
  const offsetMs = Number.isFinite(t) ? zoneOffset(timeZone, t) : null;
  if (offsetMs === null) return tzFormat(timeZone).format(this);
  return formatShifted(new Date(t + offsetMs));
}

/** Throws RangeError when `timeZone` is not a zone this runtime knows. */
export function assertTimeZone(timeZone: string): void {
  tzFormat(timeZone);
}

export function toCelNow(now: Date): Date {
  const d = new Date(now.getTime());
  // An own property, so the constructor stays Date and cel-js still sees a timestamp.
  Object.defineProperty(d, "toLocaleString", { value: cachedToLocaleString });
  return d;
}
