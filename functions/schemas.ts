// Request and response schemas. Each one both validates requests and generates /openapi.json, so the
// documentation cannot drift from what the API accepts. Objects are strict: unknown fields are rejected.
import { z } from "@hono/zod-openapi";
import type { SubmitJob } from "../src/domain/job.ts";
import { withFastPath } from "./fast-path.ts";

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().openapi({ example: "ValidationFailed" }),
    requestId: z.string(),
    instance: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .catchall(z.unknown())
  .openapi("Problem");

const problemResponse = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: Problem } },
});

/** The error responses every authenticated route can give, merged into each route's responses. */
export const commonErrors = {
  400: problemResponse("Invalid request (validation errors listed per field)"),
  401: problemResponse("Missing or invalid token"),
  403: problemResponse("Valid token without the needed role"),
  404: problemResponse("No such object (or it belongs to another tenant)"),
  413: problemResponse("Body larger than 64 KiB"),
  429: problemResponse("Rate limited; see Retry-After"),
  503: problemResponse("A dependency is unavailable"),
} as const;

/**
 * The times a query may name: years 0001–9999 in UTC. Postgres's timestamptz has no year 0 and does not read
 * ISO's expanded years ("+275760-…"), so a time outside this range would fail the query (a 500).
 */
export const EARLIEST_MS = Date.parse("0001-01-01T00:00:00Z");
export const LATEST_MS = Date.parse("9999-12-31T23:59:59.999Z");
export const inTimeRange = (ms: number) => ms >= EARLIEST_MS && ms <= LATEST_MS;

/** An RFC 3339 time with offset, within [EARLIEST_MS, LATEST_MS] once in UTC. */
export const Instant = z
  .string()
  .datetime({ offset: true })
  .refine((s) => inTimeRange(Date.parse(s)), "must be between 0001-01-01 and 9999-12-31 (UTC)");

export const errorsWith = (...extra: [number, string][]) => ({
  ...commonErrors,
  ...Object.fromEntries(extra.map(([s, d]) => [s, problemResponse(d)])),
});

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const body = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});

// ---------------------------------------------------------------- identifiers

const slug = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, "lowercase letters, digits and '-', 1-63 characters");
export const TenantId = slug.openapi({ example: "vision" });
export const PoolId = slug.openapi({ example: "h100-east" });

/**
 * Path parameters are plain strings: a malformed id is simply not found (404), never a 400. Every id route
 * validates one, so the plain case skips zod (functions/fast-path.ts); the object is not strict, so zod's
 * output is the one field whatever else is there.
 */
export const IdParam = <N extends string>(name: N, example: string) => {
  const schema = z.object({
    [name]: z
      .string()
      .max(200)
      .openapi({ param: { name, in: "path" }, example }),
  } as Record<N, z.ZodString>);
  return withFastPath(schema, (raw) => {
    const v = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>)[name] : undefined;
    return typeof v === "string" && v.length <= 200 ? ({ [name]: v } as z.output<typeof schema>) : null;
  });
};

// ---------------------------------------------------------------- jobs

export const Priority = z.enum(["high", "normal", "low"]).openapi("Priority");

const RESERVED_ENV = /^(GANTRY_|CUDA_VISIBLE_DEVICES$)/;
const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "environment variable names are [A-Za-z_][A-Za-z0-9_]*")
  .refine((k) => !RESERVED_ENV.test(k), "GANTRY_* and CUDA_VISIBLE_DEVICES are set by Gantry");
const labelKey = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/, "label keys: letters, digits, . _ / -");
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const printable = /^[^\u0000-\u001f\u007f]*$/;

export const JobSubmit = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(128)
      .regex(printable, "no control characters")
      .openapi({ example: "train-resnet" }),
    command: z
      .array(z.string().max(4096))
      .min(1)
      .max(256)
      .openapi({ example: ["python", "train.py"] }),
    gpus: z.number().int().min(1).max(64).openapi({ example: 2 }),
    gpuType: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/, "GPU types are like H100, A100, RTX4090")
      .optional()
      .openapi({ example: "H100" }),
    priority: Priority.default("normal"),
    maxRuntimeSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 86400)
      .optional(),
    maxRetries: z.number().int().min(0).max(10).default(0),
    env: z
      .record(envName, z.string().max(4096))
      .refine((e) => Object.keys(e).length <= 128, "at most 128 environment variables")
      .default({}),
    labels: z
      .record(labelKey, z.string().max(256).regex(printable))
      .refine((l) => Object.keys(l).length <= 64, "at most 64 labels")
      .default({}),
    user: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]*$/, "user names: letters, digits, . _ @ -")
      .optional(),
    array: z
      .strictObject({ size: z.number().int().min(1).max(10_000) })
      .optional()
      .openapi({ description: "Submit N tasks in one call; each gets GANTRY_ARRAY_INDEX" }),
    dependsOn: z
      .array(
        z.strictObject({
          job: z.string().max(200),
          condition: z.enum(["succeeded", "finished"]).default("succeeded"),
        }),
      )
      .max(100)
      .optional(),
  })
  .openapi("JobSubmission");
export type JobSubmitInput = z.infer<typeof JobSubmit>;

/** The validated submission as the tenant's object takes it (absent optional fields become null). */
export const toSubmitJob = (input: JobSubmitInput): SubmitJob => ({
  name: input.name,
  command: input.command,
  gpus: input.gpus,
  gpuType: input.gpuType ?? null,
  priority: input.priority,
  maxRuntimeSeconds: input.maxRuntimeSeconds ?? null,
  maxRetries: input.maxRetries,
  env: input.env,
  labels: input.labels,
  user: input.user ?? null,
  dependsOn: input.dependsOn,
  array: input.array ?? null,
});

export const Job = z
  .object({
    id: z.string().openapi({ example: "job_01jd9r2v6m3x4c5b6n7p8q9r0s" }),
    tenantId: z.string(),
    name: z.string(),
    user: z.string(),
    state: z.enum(["queued", "scheduled", "running", "succeeded", "failed", "cancelled"]),
    priority: Priority,
    gpus: z.number().int(),
    gpuType: z.string().nullable(),
    command: z.array(z.string()),
    env: z.record(z.string(), z.string()),
    labels: z.record(z.string(), z.string()),
    maxRuntimeSeconds: z.number().int().nullable(),
    maxRetries: z.number().int(),
    attempt: z.number().int(),
    lease: z.number().int().nullable(),
    exitCode: z.number().int().nullable(),
    reason: z.string().nullable(),
    message: z.string().nullable(),
    workerId: z.string().nullable(),
    gpuIndices: z.array(z.number().int()).nullable(),
    assignedGpuType: z.string().nullable(),
    cancelRequested: z.boolean(),
    arrayId: z.string().nullable(),
    arrayIndex: z.number().int().nullable(),
    dependsOn: z.array(z.object({ job: z.string(), condition: z.string() })).nullable(),
    warnings: z.array(z.object({ policyId: z.string(), name: z.string(), message: z.string() })),
    policyVersions: z.array(z.object({ id: z.string(), version: z.number().int() })),
    submittedAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    updatedAt: z.string(),
    nextAttemptAt: z.string().nullable(),
  })
  .openapi("Job");

export const JobEvent = z
  .object({
    seq: z.number().int(),
    jobId: z.string(),
    at: z.string(),
    from: z.string().nullable(),
    to: z.string(),
    reason: z.string().nullable(),
    message: z.string().nullable(),
    attempt: z.number().int(),
    lease: z.number().int().nullable(),
    workerId: z.string().nullable(),
    exitCode: z.number().int().nullable(),
  })
  .openapi("JobEvent");

export const Loose = z.record(z.string(), z.unknown());
