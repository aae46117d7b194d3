// A job row as the tenant object stores it: the row and spec types, the column lists the statements are
// built from (each text once), and the row and event records the history keeps. Split from jobs.ts, which
// holds the logic over them.
import { type DependsOn, type JobState, priorityName } from "../../domain/job.ts";
import type { EventRecord, JobRecord } from "../../lib/history.ts";

export interface JobRow {
  id: string;
  seq: number;
  state: JobState;
  priority: number;
  user: string;
  gpus: number;
  type_key: string;
  shape: string;
  ready: number;
  not_before: number | null;
  deps_pending: number;
  attempt: number;
  failures: number;
  lost_requeues: number;
  lease: number | null;
  worker_id: string | null;
  shard: string | null;
  gpu_indices: string | null;
  assigned_type: string | null;
  exit_code: number | null;
  reason: string | null;
  message: string | null;
  cancel_requested: number;
  spec: string;
  array_id: string | null;
  array_index: number | null;
  idempotency_key: string | null;
  submitted_at: number;
  scheduled_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
  check_at: number | null;
  version: number;
}

/** The submission as stored (immutable after submit). */
export interface StoredSpec {
  name: string;
  command: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  gpuType: string | null;
  maxRuntimeSeconds: number | null;
  maxRetries: number;
  dependsOn?: DependsOn[];
  warnings?: { policyId: string; name: string; message: string }[];
  policyVersions?: { id: string; version: number }[];
  pipelineRun?: string;
  step?: string;
}

export interface EventInfo {
  reason: string;
  message?: string | null;
  exitCode?: number | null;
}

export type ChangeListener = (job: JobRow, event: EventRecord) => void;

export const COLUMNS = [
  "state",
  "priority",
  "ready",
  "not_before",
  "deps_pending",
  "attempt",
  "failures",
  "lost_requeues",
  "lease",
  "worker_id",
  "shard",
  "gpu_indices",
  "assigned_type",
  "exit_code",
  "reason",
  "message",
  "cancel_requested",
  "scheduled_at",
  "started_at",
  "finished_at",
  "updated_at",
  "check_at",
  "version",
] as const;
/** Every column of a job row, in one fixed order. */
export const INSERT_COLUMNS: readonly (keyof JobRow)[] = [
  "id",
  "seq",
  "user",
  "gpus",
  "type_key",
  "shape",
  "spec",
  "array_id",
  "array_index",
  "idempotency_key",
  "submitted_at",
  ...COLUMNS,
];
const statements = new Map<string, string>();

/** Statement texts per column set, built once (a handful of sets occur: one per kind of change). */
function statement(key: string, build: () => string): string {
  let q = statements.get(key);
  if (!q) {
    q = build();
    if (statements.size >= 256) statements.clear();
    statements.set(key, q);
  }
  return q;
}

/** The insert statement naming these columns (omitted ones are NULL: no nullable column has a default). */
export function insertSql(cols: readonly (keyof JobRow)[]): string {
  const key = cols.join(", ");
  return statement(`i:${key}`, () => `INSERT INTO jobs (${key}) VALUES (${cols.map(() => "?").join(", ")})`);
}

/**
 * The update of these columns only. Setting every column made SQLite rewrite every index that names one
 * of them (state, ready, check_at, ...) on each write, changed or not: twice the cost of the statement.
 */
export function updateSql(cols: readonly (keyof JobRow)[]): string {
  const key = cols.join(", ");
  return statement(
    `u:${key}`,
    () => `UPDATE jobs SET ${cols.map((c) => `${c} = ?`).join(", ")} WHERE id = ?`,
  );
}

export const parseSpec = (j: JobRow): StoredSpec => JSON.parse(j.spec) as StoredSpec;
export const indices = (j: JobRow): number[] | null =>
  j.gpu_indices ? (JSON.parse(j.gpu_indices) as number[]) : null;

/** The events table's columns, in the order record() lays out a row. */
export const EVENT_COLUMNS = [
  "seq",
  "job_id",
  "at",
  "from_state",
  "to_state",
  "reason",
  "message",
  "attempt",
  "lease",
  "worker_id",
  "exit_code",
] as const;

/** A job row as the history (Postgres, the outbox, reads of pruned jobs) records it. */
export function jobRecord(j: JobRow, tenantId: string): JobRecord {
  const s = parseSpec(j);
  return {
    id: j.id,
    tenantId,
    name: s.name,
    user: j.user,
    state: j.state,
    priority: priorityName(j.priority),
    gpus: j.gpus,
    gpuType: s.gpuType,
    command: s.command,
    env: s.env,
    labels: s.labels,
    maxRuntimeSeconds: s.maxRuntimeSeconds,
    maxRetries: s.maxRetries,
    attempt: j.attempt,
    lease: j.lease,
    exitCode: j.exit_code,
    reason: j.reason,
    message: j.message,
    workerId: j.worker_id,
    gpuIndices: indices(j),
    assignedGpuType: j.assigned_type,
    arrayId: j.array_id,
    arrayIndex: j.array_index,
    dependsOn: s.dependsOn ?? null,
    warnings: s.warnings ?? null,
    policyVersions: s.policyVersions ?? null,
    idempotencyKey: j.idempotency_key,
    submittedAt: j.submitted_at,
    startedAt: j.started_at,
    finishedAt: j.finished_at,
    updatedAt: j.updated_at,
    version: j.version,
  };
}

/** A row of the events table as an EventRecord. */
export function eventRecord(r: Record<string, SqlStorageValue>, tenantId: string): EventRecord {
  return {
    tenantId,
    seq: r.seq as number,
    jobId: r.job_id as string,
    at: r.at as number,
    fromState: r.from_state as string | null,
    toState: r.to_state as string,
    reason: r.reason as string | null,
    message: r.message as string | null,
    attempt: r.attempt as number,
    lease: r.lease as number | null,
    workerId: r.worker_id as string | null,
    exitCode: r.exit_code as number | null,
  };
}
