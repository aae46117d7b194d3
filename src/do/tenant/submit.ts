// Submission inside the tenant's object: idempotency, policies, dependencies and the insert happen with no
// await in between, so 20 concurrent retries of one Idempotency-Key can only ever create one job.

import { newId } from "../../domain/ids.ts";
import type { DependsOn, JobState, SubmitJob } from "../../domain/job.ts";
import { gpuTypeKey, isTerminal, priorityRank, shapeKey } from "../../domain/job.ts";
import { evaluatePolicies, type PolicyDecision } from "../../domain/policy.ts";
import { fail, type Json, type Result } from "../../errors.ts";
import { all, first } from "../../lib/sql.ts";
import type { KeyPrincipal } from "./catalog.ts";
import type { TenantCtx } from "./context.ts";
import type { JobRow, StoredSpec } from "./jobs.ts";
import { type JobView, viewFromRow } from "./view.ts";

export const IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000;
export const MAX_ARRAY = 10_000;

export type { SubmitJob } from "../../domain/job.ts";

export interface SubmitRequest {
  job: SubmitJob;
  idempotencyKey: string | null;
  /** Stable hash of the request body, to refuse a key reused for a different request. */
  fingerprint: string;
  requestId: string;
  /** Client-side latencies of earlier submits (seconds), measured by the Worker, for the histogram. */
  latencies?: number[];
  /**
   * Final states of dependencies that retention already removed from this object, read from the history
   * by the Worker after this object named them unknown (UNKNOWN_DEPENDENCIES). A job is pruned only once
   * Postgres holds it in its final state, so the state there is the last word.
   */
  pastDeps?: Record<string, JobState>;
}

/** Failure extra listing dependencies this object does not hold: the Worker looks them up in the history. */
export const UNKNOWN_DEPENDENCIES = "unknownDependencies";

export interface SubmitOk {
  job: JobView;
  created: boolean;
  array?: { id: string; size: number };
}

/**
 * What the Worker answers for a submit, already JSON: the route only forwards it. A string crosses the RPC
 * boundary far cheaper than the 30-field view, which would be copied into the Worker only to be
 * serialized there.
 */
export interface SubmitReply {
  created: boolean;
  id: string;
  body: string;
}

export const toReply = (r: SubmitOk): SubmitReply => ({
  created: r.created,
  id: r.job.id,
  body: JSON.stringify(r.array ? { ...r.job, array: r.array } : r.job),
});

export function dryRunPolicies(ctx: TenantCtx, job: SubmitJob, user: string) {
  const t = ctx.catalog.tenant()!;
  return evaluatePolicies(
    ctx.catalog.policies(),
    {
      name: job.name,
      user,
      gpus: job.gpus,
      gpuType: job.gpuType,
      priority: job.priority,
      command: job.command,
      env: job.env,
      labels: job.labels,
      maxRuntimeSeconds: job.maxRuntimeSeconds,
      maxRetries: job.maxRetries,
      arraySize: job.array?.size ?? null,
    },
    { id: t.id, name: t.name, weight: t.weight },
    new Date(),
  );
}

export function submit(ctx: TenantCtx, who: KeyPrincipal, req: SubmitRequest): Result<SubmitOk> {
  const now = Date.now();
  if (req.idempotencyKey) {
    const prev = first<{ job_id: string; fingerprint: string; at: number }>(
      ctx.sql,
      "SELECT job_id, fingerprint, at FROM idempotency WHERE key = ?",
      req.idempotencyKey,
    );
    if (prev && prev.at > now - IDEMPOTENCY_WINDOW_MS) {
      if (prev.fingerprint !== req.fingerprint) {
        return fail(
          "Conflict",
          "this Idempotency-Key was already used for a different request; use a new key for a new job",
        );
      }
      const existing = ctx.jobs.get(prev.job_id);
      if (existing) {
        return {
          ok: true,
          created: false,
          job: viewFromRow(existing, ctx.tenantId),
          ...(existing.array_id ? { array: arrayInfo(ctx, existing.array_id) } : {}),
        };
      }
    }
  }

  const user = req.job.user || who.name;
  const admitted = admit(ctx, req.job, user);
  if (!admitted.ok) return admitted;
  const deps = checkDependencies(ctx, req.job.dependsOn ?? [], req.pastDeps ?? {});
  if (!deps.ok) return deps;

  const size = req.job.array?.size ?? 0;
  const arrayId = size > 0 ? newId("arr") : null;
  let firstJob: JobRow | null = null;
  ctx.tx(() => {
    const specJson = JSON.stringify(admitted.spec);
    for (let i = 0; i < Math.max(1, size); i++) {
      const job = insertJob(ctx, {
        job: req.job,
        user,
        specJson,
        depsPending: deps.pending,
        dependsOn: req.job.dependsOn ?? [],
        arrayId,
        arrayIndex: arrayId ? i : null,
        idempotencyKey: i === 0 ? req.idempotencyKey : null,
        now,
      });
      firstJob ??= job;
    }
    if (req.idempotencyKey) {
      ctx.sql.exec(
        `INSERT INTO idempotency (key, job_id, fingerprint, at) VALUES (?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, fingerprint = excluded.fingerprint, at = excluded.at`,
        req.idempotencyKey,
        firstJob!.id,
        req.fingerprint,
        now,
      );
    }
    audit(ctx, who, req.requestId, "job.submit", arrayId ?? firstJob!.id, {
      user,
      gpus: req.job.gpus,
      gpuType: req.job.gpuType,
      ...(size ? { arraySize: size } : {}),
    });
    if (deps.failed) {
      // A dependency that can no longer be met: the job is created (so the caller sees why) and cancelled.
      for (const j of arrayId ? tasksOf(ctx, arrayId) : [firstJob!]) {
        ctx.jobs.transition(
          j,
          "cancelled",
          { reason: "DependencyFailed", message: deps.failed },
          { reason: "DependencyFailed", message: deps.failed },
        );
      }
    }
    ctx.demandChanged(); // inside the transaction: its settings write is batched with the rest
  });
  // The inserted row is current unless a failed dependency cancelled it in the same transaction.
  const job = deps.failed ? ctx.jobs.get(firstJob!.id)! : firstJob!;
  return {
    ok: true,
    created: true,
    job: viewFromRow(job, ctx.tenantId),
    ...(arrayId ? { array: { id: arrayId, size } } : {}),
  };
}

/** Policies (any deny refuses, warnings are kept) and the stored spec of one submission. */
export function admit(
  ctx: TenantCtx,
  job: SubmitJob,
  user: string,
  extra: Partial<StoredSpec> = {},
): Result<{ spec: StoredSpec; decisions: PolicyDecision[] }> {
  const verdict = dryRunPolicies(ctx, job, user);
  if (!verdict.allowed) {
    const denies = verdict.decisions.filter((d) => d.matched && d.effect === "deny");
    return fail("PolicyDenied", denies.map((d) => d.message ?? `denied by policy "${d.name}"`).join("; "), {
      extra: { decisions: verdict.decisions as unknown as Json },
    });
  }
  const warnings = verdict.decisions
    .filter((d) => d.matched && d.effect === "warn")
    .map((d) => ({ policyId: d.policyId, name: d.name, message: d.message ?? `policy "${d.name}" matched` }));
  const spec: StoredSpec = {
    name: job.name,
    command: job.command,
    env: job.env,
    labels: job.labels,
    gpuType: job.gpuType,
    maxRuntimeSeconds: job.maxRuntimeSeconds,
    maxRetries: job.maxRetries,
    ...(job.dependsOn?.length ? { dependsOn: job.dependsOn } : {}),
    ...(warnings.length ? { warnings } : {}),
    policyVersions: verdict.decisions.map((d) => ({ id: d.policyId, version: d.version })),
    ...extra,
  };
  return { ok: true, spec, decisions: verdict.decisions };
}

/** One queued job (inside the caller's transaction), with its dependency rows. */
export function insertJob(
  ctx: TenantCtx,
  a: {
    job: SubmitJob;
    user: string;
    specJson: string;
    depsPending: number;
    dependsOn: DependsOn[];
    arrayId: string | null;
    arrayIndex: number | null;
    idempotencyKey: string | null;
    now: number;
    id?: string;
  },
): JobRow {
  const id = a.id ?? newId("job");
  const row = ctx.jobs.insert({
    id,
    priority: priorityRank(a.job.priority),
    user: a.user,
    gpus: a.job.gpus,
    type_key: gpuTypeKey(a.job.gpuType),
    shape: shapeKey(a.job.gpus, a.job.gpuType),
    not_before: null,
    deps_pending: a.depsPending,
    attempt: 1,
    failures: 0,
    lost_requeues: 0,
    lease: null,
    worker_id: null,
    shard: null,
    gpu_indices: null,
    assigned_type: null,
    exit_code: null,
    reason: null,
    message: null,
    cancel_requested: 0,
    spec: a.specJson,
    array_id: a.arrayId,
    array_index: a.arrayIndex,
    idempotency_key: a.idempotencyKey,
    submitted_at: a.now,
    scheduled_at: null,
    started_at: null,
    finished_at: null,
    check_at: null,
  });
  for (const d of a.dependsOn) {
    ctx.sql.exec("INSERT INTO deps (job_id, dep_id, condition) VALUES (?, ?, ?)", id, d.job, d.condition);
  }
  return row;
}

export function audit(
  ctx: TenantCtx,
  who: { keyId: string },
  requestId: string,
  action: string,
  target: string,
  detail: Json,
): void {
  ctx.outbox.add({
    kind: "audit",
    data: {
      id: newId("aud"),
      at: Date.now(),
      actor: `key:${who.keyId}`,
      tenantId: ctx.tenantId,
      action,
      target,
      requestId,
      detail,
    },
  });
}

function tasksOf(ctx: TenantCtx, arrayId: string): JobRow[] {
  return all<JobRow>(ctx.sql, "SELECT * FROM jobs WHERE array_id = ? ORDER BY array_index", arrayId);
}

function arrayInfo(ctx: TenantCtx, arrayId: string) {
  const n = first<{ n: number }>(ctx.sql, "SELECT count(*) AS n FROM jobs WHERE array_id = ?", arrayId);
  return { id: arrayId, size: n?.n ?? 0 };
}

/**
 * Dependencies name existing jobs of this tenant only (so cycles cannot be built). One that finished
 * before the retention removed it counts with its final state from `past`; without that, the refusal
 * lists every unknown id (UNKNOWN_DEPENDENCIES) for the Worker to look up.
 */
function checkDependencies(
  ctx: TenantCtx,
  deps: DependsOn[],
  past: Record<string, JobState>,
): Result<{ pending: number; failed: string | null }> {
  let pending = 0;
  let failed: string | null = null;
  const unknown: string[] = [];
  for (const d of deps) {
    const state = ctx.jobs.get(d.job)?.state ?? (Object.hasOwn(past, d.job) ? past[d.job] : undefined);
    if (!state) {
      unknown.push(d.job);
      continue;
    }
    if (!isTerminal(state)) pending++;
    else if (d.condition === "succeeded" && state !== "succeeded") {
      failed = `dependency ${d.job} ended ${state}, condition "succeeded" can no longer hold`;
    }
  }
  if (unknown.length > 0) {
    return fail(
      "ValidationFailed",
      `dependsOn names unknown job ${unknown.join(", ")}: no such job in this tenant`,
      {
        errors: unknown.map((id) => ({ path: "dependsOn", message: `no job ${id} in this tenant` })),
        extra: { [UNKNOWN_DEPENDENCIES]: unknown },
      },
    );
  }
  return { ok: true, pending, failed };
}
