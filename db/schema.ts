// Postgres (Neon in production) is the system of record for the catalog and the durable history.
// Live job state lives in the tenants' Durable Objects and reaches these tables through their outboxes,
// so every history table is written with idempotent upserts keyed by id (see src/lib/outbox-sink.ts).
import {
  bigint,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const tenants = pgTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  weight: doublePrecision("weight").notNull().default(1),
  // { submitPerSecond, submitBurst, readPerSecond, readBurst } or null for "no limits"
  limits: jsonb("limits"),
  // { gpus: { "<type>|*": { nominal, borrowingLimit?, lendingLimit? } }, maxConcurrentJobs?, cohort? } or null
  quota: jsonb("quota"),
  // Bumped on every change to what the tenant's Durable Object caches (keys, policies, quota, limits,
  // weight); the object reports the revision it applied so the cron tick can re-push missed changes.
  catalogRev: bigint("catalog_rev", { mode: "number" }).notNull().default(1),
  catalogAppliedRev: bigint("catalog_applied_rev", { mode: "number" }).notNull().default(0),
  createdAt: ts("created_at").notNull().defaultNow(),
  updatedAt: ts("updated_at").notNull().defaultNow(),
});

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    name: text("name").notNull(),
    role: text("role").notNull(), // "admin" | "member"
    // SHA-256 of the whole key, hex. The key itself is shown once and never stored.
    hash: text("hash").notNull().unique(),
    prefix: text("prefix").notNull(),
    createdAt: ts("created_at").notNull().defaultNow(),
    revokedAt: ts("revoked_at"),
  },
  (t) => [index("api_keys_tenant_idx").on(t.tenantId)],
);

export const policies = pgTable(
  "policies",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id"), // null = global
    name: text("name").notNull(),
    version: integer("version").notNull(),
    expression: text("expression").notNull(),
    effect: text("effect").notNull(), // "deny" | "warn"
    message: text("message"),
    messageExpression: text("message_expression"),
    enabled: boolean("enabled").notNull().default(true),
    createdAt: ts("created_at").notNull().defaultNow(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
    deletedAt: ts("deleted_at"),
  },
  (t) => [index("policies_tenant_idx").on(t.tenantId)],
);

// Every change to a policy is a new row here; jobs record the (id, version) pairs that admitted them.
export const policyVersions = pgTable(
  "policy_versions",
  {
    policyId: text("policy_id").notNull(),
    version: integer("version").notNull(),
    tenantId: text("tenant_id"),
    name: text("name").notNull(),
    expression: text("expression").notNull(),
    effect: text("effect").notNull(),
    message: text("message"),
    messageExpression: text("message_expression"),
    enabled: boolean("enabled").notNull(),
    deleted: boolean("deleted").notNull().default(false),
    actor: text("actor").notNull(),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.policyId, t.version] })],
);

export const pools = pgTable("pools", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: ts("created_at").notNull().defaultNow(),
});

export const joinTokens = pgTable("join_tokens", {
  id: text("id").primaryKey(),
  poolId: text("pool_id")
    .notNull()
    .references(() => pools.id),
  hash: text("hash").notNull().unique(),
  createdAt: ts("created_at").notNull().defaultNow(),
  expiresAt: ts("expires_at"),
  revokedAt: ts("revoked_at"),
});

export const workers = pgTable(
  "workers",
  {
    id: text("id").primaryKey(),
    poolId: text("pool_id").notNull(),
    hostname: text("hostname").notNull(),
    gpus: jsonb("gpus").notNull(),
    labels: jsonb("labels").notNull().default({}),
    state: text("state").notNull(),
    registeredAt: ts("registered_at").notNull(),
    lastSeenAt: ts("last_seen_at"),
    updatedAt: ts("updated_at").notNull(),
    version: bigint("version", { mode: "number" }).notNull().default(0),
  },
  (t) => [index("workers_pool_idx").on(t.poolId)],
);

export const jobs = pgTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    name: text("name").notNull(),
    user: text("user_name").notNull(),
    state: text("state").notNull(),
    priority: text("priority").notNull(),
    gpus: integer("gpus").notNull(),
    gpuType: text("gpu_type"),
    command: jsonb("command").notNull(),
    env: jsonb("env").notNull().default({}),
    labels: jsonb("labels").notNull().default({}),
    maxRuntimeSeconds: integer("max_runtime_seconds"),
    maxRetries: integer("max_retries").notNull().default(0),
    attempt: integer("attempt").notNull(),
    lease: bigint("lease", { mode: "number" }),
    exitCode: integer("exit_code"),
    reason: text("reason"),
    message: text("message"),
    workerId: text("worker_id"),
    gpuIndices: jsonb("gpu_indices"),
    assignedGpuType: text("assigned_gpu_type"),
    arrayId: text("array_id"),
    arrayIndex: integer("array_index"),
    dependsOn: jsonb("depends_on"),
    warnings: jsonb("warnings"),
    policyVersions: jsonb("policy_versions"),
    idempotencyKey: text("idempotency_key"),
    submittedAt: ts("submitted_at").notNull(),
    startedAt: ts("started_at"),
    finishedAt: ts("finished_at"),
    updatedAt: ts("updated_at").notNull(),
    // Monotonic per job; an upsert only applies when it carries a newer version (outbox replays are no-ops).
    version: integer("version").notNull(),
  },
  (t) => [
    index("jobs_tenant_submitted_idx").on(t.tenantId, t.submittedAt.desc(), t.id.desc()),
    index("jobs_tenant_state_idx").on(t.tenantId, t.state),
    index("jobs_array_idx").on(t.arrayId),
    index("jobs_labels_idx").using("gin", t.labels),
  ],
);

export const jobEvents = pgTable(
  "job_events",
  {
    tenantId: text("tenant_id").notNull(),
    seq: bigint("seq", { mode: "number" }).notNull(), // per-tenant, assigned by the tenant's Durable Object
    jobId: text("job_id").notNull(),
    at: ts("at").notNull(),
    fromState: text("from_state"),
    toState: text("to_state").notNull(),
    reason: text("reason"),
    message: text("message"),
    attempt: integer("attempt").notNull(),
    lease: bigint("lease", { mode: "number" }),
    workerId: text("worker_id"),
    exitCode: integer("exit_code"),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.seq] }), index("job_events_job_idx").on(t.jobId, t.seq)],
);

export const jobLogs = pgTable("job_logs", {
  jobId: text("job_id").primaryKey(),
  tenantId: text("tenant_id").notNull(),
  attempt: integer("attempt").notNull(),
  tail: text("tail").notNull(),
  updatedAt: ts("updated_at").notNull(),
});

// One row per (job, attempt) that held GPUs; GPU-seconds = gpus × (ended − started).
export const usageRecords = pgTable(
  "usage_records",
  {
    id: text("id").primaryKey(), // `${jobId}:${lease}`
    tenantId: text("tenant_id").notNull(),
    jobId: text("job_id").notNull(),
    user: text("user_name").notNull(),
    gpuType: text("gpu_type").notNull(),
    gpus: integer("gpus").notNull(),
    startedAt: ts("started_at").notNull(),
    endedAt: ts("ended_at").notNull(),
  },
  (t) => [index("usage_tenant_time_idx").on(t.tenantId, t.startedAt)],
);

export const quotaAllocations = pgTable("quota_allocations", {
  id: text("id").primaryKey(),
  tenantId: text("tenant_id").notNull(),
  gpus: integer("gpus").notNull(),
  gpuType: text("gpu_type"),
  note: text("note"),
  createdAt: ts("created_at").notNull(),
  releasedAt: ts("released_at"),
});

export const auditLog = pgTable(
  "audit_log",
  {
    id: text("id").primaryKey(),
    at: ts("at").notNull(),
    actor: text("actor").notNull(), // "admin", "key:<id>", "worker:<id>"
    tenantId: text("tenant_id"),
    action: text("action").notNull(), // e.g. "job.submit"
    target: text("target"),
    requestId: text("request_id").notNull(),
    detail: jsonb("detail"),
  },
  (t) => [index("audit_at_idx").on(t.at.desc()), index("audit_tenant_idx").on(t.tenantId, t.at.desc())],
);

// Pipeline templates (DAGs of job steps), versioned: every change is a new version; runs record theirs.
export const pipelines = pgTable(
  "pipelines",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    name: text("name").notNull(),
    version: integer("version").notNull(),
    steps: jsonb("steps").notNull(),
    createdAt: ts("created_at").notNull().defaultNow(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
    deletedAt: ts("deleted_at"),
  },
  (t) => [index("pipelines_tenant_idx").on(t.tenantId)],
);

export const pipelineVersions = pgTable(
  "pipeline_versions",
  {
    pipelineId: text("pipeline_id").notNull(),
    version: integer("version").notNull(),
    steps: jsonb("steps").notNull(),
    actor: text("actor").notNull(),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.pipelineId, t.version] })],
);
