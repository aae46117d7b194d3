// The API's JSON shape of a job, built from the Durable Object's row (live) or a Postgres row (history).
import type { DependsOn } from "../../domain/job.ts";
import type { JobRecord } from "../../lib/history.ts";
import { type JobRow, jobRecord } from "./job-row.ts";

export interface JobView {
  id: string;
  tenantId: string;
  name: string;
  user: string;
  state: string;
  priority: string;
  gpus: number;
  gpuType: string | null;
  command: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  maxRuntimeSeconds: number | null;
  maxRetries: number;
  attempt: number;
  lease: number | null;
  exitCode: number | null;
  reason: string | null;
  message: string | null;
  workerId: string | null;
  gpuIndices: number[] | null;
  assignedGpuType: string | null;
  cancelRequested: boolean;
  arrayId: string | null;
  arrayIndex: number | null;
  dependsOn: DependsOn[] | null;
  warnings: { policyId: string; name: string; message: string }[];
  policyVersions: { id: string; version: number }[];
  submittedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt: string;
  nextAttemptAt: string | null;
}

const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(ms).toISOString());

export function viewFromRow(j: JobRow, tenantId: string): JobView {
  // The record's fields, plus what only the live row knows.
  return {
    ...viewFromRecord(jobRecord(j, tenantId)),
    cancelRequested: j.cancel_requested === 1,
    nextAttemptAt: j.state === "queued" ? iso(j.not_before) : null,
  };
}

/** Same shape from a history record (Postgres), for jobs the Durable Object has already pruned. */
export function viewFromRecord(r: JobRecord): JobView {
  return {
    id: r.id,
    tenantId: r.tenantId,
    name: r.name,
    user: r.user,
    state: r.state,
    priority: r.priority,
    gpus: r.gpus,
    gpuType: r.gpuType,
    command: r.command,
    env: r.env,
    labels: r.labels,
    maxRuntimeSeconds: r.maxRuntimeSeconds,
    maxRetries: r.maxRetries,
    attempt: r.attempt,
    lease: r.lease,
    exitCode: r.exitCode,
    reason: r.reason,
    message: r.message,
    workerId: r.workerId,
    gpuIndices: r.gpuIndices,
    assignedGpuType: r.assignedGpuType,
    cancelRequested: false,
    arrayId: r.arrayId,
    arrayIndex: r.arrayIndex,
    dependsOn: (r.dependsOn as DependsOn[] | null) ?? null,
    warnings: (r.warnings as JobView["warnings"] | null) ?? [],
    policyVersions: (r.policyVersions as JobView["policyVersions"] | null) ?? [],
    submittedAt: iso(r.submittedAt)!,
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    updatedAt: iso(r.updatedAt)!,
    nextAttemptAt: null,
  };
}
