// The tenant's side of placement and of everything workers report. The scheduler picks (tenant, shape,
// worker); here the tenant picks the concrete job and commits the lease in its own transaction. Every
// worker report is fenced by the lease: a report for an older lease changes nothing and is refused.

import { observe } from "../../domain/histogram.ts";
import { gpuTypeKey, isTerminal, MAX_WORKER_LOST_REQUEUES, retryBackoffMs } from "../../domain/job.ts";
import { checkOwn } from "../../domain/quota.ts";
import { all, first } from "../../lib/sql.ts";
import { fleetTarget, type TenantCtx } from "./context.ts";
import { type JobRow, parseSpec } from "./jobs.ts";

export interface ClaimItem {
  placementId: string;
  shape: string;
  workerId: string;
  shard: string;
  typeName: string;
  indices: number[];
}

export interface AssignmentSpec {
  jobId: string;
  tenantId: string;
  lease: number;
  gpuIndices: number[];
  gpuType: string;
  spec: {
    name: string;
    command: string[];
    env: Record<string, string>;
    maxRuntimeSeconds: number | null;
    attempt: number;
    arrayIndex: number | null;
    gpus: number;
  };
}

export type ClaimResult = { placementId: string; assignment: AssignmentSpec | null; reason?: string };

/** Inside the tenant: priority, then the user with the least decayed usage, then submit order. */
export function pickJob(ctx: TenantCtx, shape: string, now: number): JobRow | null {
  ctx.jobs.settleReady(); // earlier claims of this transaction changed the counters read below
  const top = first<{ p: number }>(
    ctx.sql,
    "SELECT max(priority) AS p FROM ready_users WHERE shape = ?",
    shape,
  );
  if (top?.p == null) return null;
  const users = all<{ user: string }>(
    ctx.sql,
    "SELECT user FROM ready_users WHERE shape = ? AND priority = ? AND n > 0",
    shape,
    top.p,
  );
  let best: { user: string; score: number } | null = null;
  for (const u of users) {
    const score = ctx.ledger.userStanding(u.user, now);
    if (!best || score < best.score) best = { user: u.user, score };
  }
  if (!best) return null;
  // The id from the index, the row from the job store: recently submitted jobs are in its memory.
  const pick = first<{ id: string }>(
    ctx.sql,
    "SELECT id FROM jobs WHERE ready = 1 AND shape = ? AND priority = ? AND user = ? ORDER BY seq LIMIT 1",
    shape,
    top.p,
    best.user,
  );
  return pick ? ctx.jobs.get(pick.id) : null;
}

export const assignmentOf = (ctx: TenantCtx, j: JobRow): AssignmentSpec => {
  const s = parseSpec(j);
  return {
    jobId: j.id,
    tenantId: ctx.tenantId,
    lease: j.lease!,
    gpuIndices: JSON.parse(j.gpu_indices ?? "[]") as number[],
    gpuType: j.assigned_type ?? "",
    spec: {
      name: s.name,
      command: s.command,
      env: s.env,
      maxRuntimeSeconds: s.maxRuntimeSeconds,
      attempt: j.attempt,
      arrayIndex: j.array_index,
      gpus: j.gpus,
    },
  };
};

/** How long a scheduled/running lease may go unconfirmed before the tenant asks the fleet about it. */
export function checkDelayMs(ctx: TenantCtx, state: "scheduled" | "running"): number {
  const ttl = ctx.cfg.leaseTtlSeconds * 1000;
  return state === "scheduled" ? 2 * ttl : Math.max(5 * ttl, 60_000);
}

export function claim(ctx: TenantCtx, items: ClaimItem[]): ClaimResult[] {
  const now = Date.now();
  const out: ClaimResult[] = [];
  ctx.tx(() => {
    for (const it of items) {
      const job = pickJob(ctx, it.shape, now);
      if (!job) {
        out.push({ placementId: it.placementId, assignment: null, reason: "NoReadyJob" });
        continue;
      }
      const verdict = checkOwn(ctx.catalog.quota(), ctx.ledger.usage(), gpuTypeKey(it.typeName), job.gpus);
      if (!verdict.fits) {
        out.push({ placementId: it.placementId, assignment: null, reason: verdict.code });
        continue;
      }
      const lease = ctx.meta.next("lease");
      observe(ctx.stats.wait, Math.max(0, now - job.updated_at) / 1000);
      const next = ctx.jobs.transition(
        job,
        "scheduled",
        {
          lease,
          worker_id: it.workerId,
          shard: it.shard,
          gpu_indices: JSON.stringify(it.indices),
          assigned_type: it.typeName,
          scheduled_at: now,
          check_at: now + checkDelayMs(ctx, "scheduled"),
          reason: null,
          message: null,
        },
        { reason: "Scheduled", message: `on ${it.workerId} GPUs ${it.indices.join(",")}` },
        now,
      );
      out.push({ placementId: it.placementId, assignment: assignmentOf(ctx, next) });
    }
  });
  ctx.demandChanged();
  return out;
}

/** A claimed lease the fleet could not honour (worker gone, GPUs taken): back to the queue, no penalty. */
export function unclaim(ctx: TenantCtx, items: { jobId: string; lease: number; reason: string }[]): void {
  ctx.tx(() => {
    for (const it of items) {
      const j = ctx.jobs.get(it.jobId);
      if (j?.state !== "scheduled" || j.lease !== it.lease) continue;
      ctx.jobs.transition(
        j,
        "queued",
        { reason: null, message: null },
        { reason: "AssignmentFailed", message: it.reason },
      );
    }
  });
  ctx.demandChanged();
}

export interface WorkerUpdate {
  jobId: string;
  lease: number;
  workerId: string;
  state: "running" | "succeeded" | "failed" | "cancelled";
  exitCode?: number | null;
  message?: string | null;
  reason?: string | null;
  logTail?: string | null;
}

export interface UpdateResult {
  jobId: string;
  ok: boolean;
  code?: "StaleLease" | "InvalidTransition" | "NotFound";
  message?: string;
  state?: string;
  /** The lease no longer holds GPUs: the fleet frees them. */
  released: boolean;
}

export function applyUpdates(ctx: TenantCtx, updates: WorkerUpdate[]): UpdateResult[] {
  const now = Date.now();
  const results: UpdateResult[] = [];
  ctx.tx(() => {
    for (const u of updates) results.push(applyOne(ctx, u, now));
  });
  if (results.some((r) => r.released)) ctx.demandChanged();
  return results;
}

function applyOne(ctx: TenantCtx, u: WorkerUpdate, now: number): UpdateResult {
  const j = ctx.jobs.get(u.jobId);
  if (!j) return { jobId: u.jobId, ok: false, code: "NotFound", message: "no such job", released: true };
  if (j.lease !== u.lease || j.worker_id !== u.workerId) {
    // Idempotent repeat of the final report of this very lease (the first answer was lost).
    if (j.lease === u.lease && isTerminal(j.state))
      return { jobId: j.id, ok: true, state: j.state, released: true };
    return {
      jobId: j.id,
      ok: false,
      code: "StaleLease",
      message: `lease ${u.lease} is not the job's current lease`,
      released: true,
    };
  }
  if (u.logTail != null) storeLog(ctx, j, u.logTail, now);
  if (u.state === "running") {
    if (j.state === "running") return { jobId: j.id, ok: true, state: j.state, released: false };
    if (j.state !== "scheduled") return invalid(j, u.state);
    ctx.jobs.transition(
      j,
      "running",
      { started_at: now, check_at: now + checkDelayMs(ctx, "running") },
      { reason: "Started", message: null },
      now,
    );
    return { jobId: j.id, ok: true, state: "running", released: false };
  }
  // A final report for a job that already ended under this very lease (cancel raced the exit): same answer.
  if (isTerminal(j.state)) return { jobId: j.id, ok: true, state: j.state, released: true };
  if (j.state !== "scheduled" && j.state !== "running") return invalid(j, u.state);
  const exitCode = u.exitCode ?? null;
  const ended = { exit_code: exitCode, started_at: j.started_at ?? now };
  if (j.cancel_requested || u.state === "cancelled") {
    const n = ctx.jobs.transition(
      j,
      "cancelled",
      { ...ended, reason: "Cancelled", message: u.message ?? null },
      {
        reason: "Cancelled",
        message: u.message ?? "cancelled by request",
        exitCode,
      },
    );
    return { jobId: j.id, ok: true, state: n.state, released: true };
  }
  if (u.state === "succeeded") {
    ctx.jobs.transition(
      j,
      "succeeded",
      { ...ended, reason: "Succeeded", message: u.message ?? null },
      {
        reason: "Succeeded",
        message: u.message ?? null,
        exitCode,
      },
    );
    return { jobId: j.id, ok: true, state: "succeeded", released: true };
  }
  // The agent killed it for reasons that are not the job's fault (it fenced itself after losing contact, or
  // its host was drained): requeued like a lost worker, never charged against maxRetries.
  if (u.reason === "LeaseLost" || u.reason === "Drained") {
    const after = lostOne(ctx, j, u.reason, now, u.message);
    return { jobId: j.id, ok: true, state: after.state, released: true };
  }
  // Failed on its own (non-zero exit, timeout): retried only while maxRetries allows, after a backoff.
  const reason = u.reason === "Timeout" ? "Timeout" : (u.reason ?? "Failed");
  const message = u.message ?? (exitCode != null ? `exited with code ${exitCode}` : "failed");
  const maxRetries = parseSpec(j).maxRetries;
  if (j.failures < maxRetries) {
    const notBefore = now + retryBackoffMs(j.attempt);
    ctx.jobs.transition(
      j,
      "queued",
      {
        attempt: j.attempt + 1,
        failures: j.failures + 1,
        not_before: notBefore,
        exit_code: exitCode,
        reason,
        message,
      },
      {
        reason: "Retrying",
        message: `${reason}: ${message}; retry ${j.failures + 1} of ${maxRetries}`,
        exitCode,
      },
      now,
    );
    return { jobId: j.id, ok: true, state: "queued", released: true };
  }
  ctx.jobs.transition(j, "failed", { ...ended, reason, message }, { reason, message, exitCode }, now);
  return { jobId: j.id, ok: true, state: "failed", released: true };
}

function invalid(j: JobRow, to: string): UpdateResult {
  return {
    jobId: j.id,
    ok: false,
    code: "InvalidTransition",
    message: `job is ${j.state}; ${to} is not allowed from there`,
    released: isTerminal(j.state as never),
  };
}

const LOG_LIMIT = 64 * 1024;

function storeLog(ctx: TenantCtx, j: JobRow, tail: string, now: number): void {
  const t = tail.length > LOG_LIMIT ? tail.slice(tail.length - LOG_LIMIT) : tail;
  ctx.sql.exec(
    `INSERT INTO logs (job_id, attempt, tail, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (job_id) DO UPDATE SET attempt = excluded.attempt, tail = excluded.tail, updated_at = excluded.updated_at`,
    j.id,
    j.attempt,
    t,
    now,
  );
  ctx.outbox.add({
    kind: "log",
    data: { jobId: j.id, tenantId: ctx.tenantId, attempt: j.attempt, tail: t, updatedAt: now },
  });
}

export type LostReason = "WorkerLost" | "LeaseExpired" | "WorkerLeft" | "Drained" | "LeaseLost" | "Cancelled";

/**
 * The worker holding these leases is gone (or the lease was never confirmed). Not the job's fault: back to
 * the queue at once with attempt + 1, up to MAX_WORKER_LOST_REQUEUES, then failed with WorkerLost.
 * Quota and usage are released by the same transition.
 */
export function leasesLost(
  ctx: TenantCtx,
  items: { jobId: string; lease: number; reason: LostReason }[],
): number {
  const now = Date.now();
  let n = 0;
  ctx.tx(() => {
    for (const it of items) {
      const j = ctx.jobs.get(it.jobId);
      if (!j || j.lease !== it.lease || (j.state !== "scheduled" && j.state !== "running")) continue;
      n++;
      lostOne(ctx, j, it.reason, now);
    }
  });
  if (n) ctx.demandChanged();
  return n;
}

function lostOne(ctx: TenantCtx, j: JobRow, reason: LostReason, now: number, detail?: string | null): JobRow {
  const msg = `${reason}: worker ${j.worker_id}${detail ? ` (${detail})` : ""}`;
  if (j.cancel_requested) {
    return ctx.jobs.transition(
      j,
      "cancelled",
      { reason: "Cancelled", message: msg },
      { reason: "Cancelled", message: msg },
      now,
    );
  }
  if (j.lost_requeues < MAX_WORKER_LOST_REQUEUES) {
    return ctx.jobs.transition(
      j,
      "queued",
      { attempt: j.attempt + 1, lost_requeues: j.lost_requeues + 1, reason, message: msg },
      { reason, message: `${msg}; requeued as attempt ${j.attempt + 1}` },
      now,
    );
  }
  return ctx.jobs.transition(
    j,
    "failed",
    { reason: "WorkerLost", message: `${msg}; requeued ${j.lost_requeues} times already` },
    { reason: "WorkerLost", message: msg },
    now,
  );
}

/** Ask the fleet to stop a scheduled/running job (delivered reliably through the mailbox). */
export function requestCancel(ctx: TenantCtx, j: JobRow): void {
  ctx.jobs.patch(j, { cancel_requested: 1 });
  ctx.mailbox.add(fleetTarget(j.shard!), "cancelLeases", {
    workerId: j.worker_id,
    jobId: j.id,
    lease: j.lease,
  });
}
