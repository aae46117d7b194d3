// "Why is my job pending?" — one resolved reason, first that applies in the order of PRODUCT.md §4, with the
// numbers behind it, and the job's position computed on demand (never stored on every change).
import type { TypeStats } from "../../domain/capacity.ts";
import { isTerminal, type PendingReason, parseShape, priorityName } from "../../domain/job.ts";
import { bucketFor, checkOwn } from "../../domain/quota.ts";
import { fail, type Result } from "../../errors.ts";
import { all, first } from "../../lib/sql.ts";
import { schedulerStub } from "../../stubs.ts";
import type { TenantCtx } from "./context.ts";
import type { JobRow } from "./jobs.ts";
import { parseSpec } from "./jobs.ts";

export interface Explanation {
  jobId: string;
  state: string;
  reason: { code: string; message: string };
  position?: { tenant: number; priority: number };
  estimatedStart?: { at: string; basis: string };
}

export async function explainJob(ctx: TenantCtx, id: string): Promise<Result<{ value: Explanation }>> {
  const j = ctx.jobs.get(id);
  if (!j) return fail("NotFound", `no job ${id}`);
  const base = { jobId: j.id, state: j.state };
  if (j.state !== "queued") {
    return { ok: true, value: { ...base, reason: notPending(j) } };
  }
  const now = Date.now();
  if (j.deps_pending > 0) {
    const deps = all<{ dep_id: string; condition: string }>(
      ctx.sql,
      "SELECT dep_id, condition FROM deps WHERE job_id = ?",
      j.id,
    );
    const waiting = deps.filter((d) => {
      const dj = ctx.jobs.get(d.dep_id);
      return dj && !isTerminal(dj.state);
    });
    return {
      ok: true,
      value: {
        ...base,
        reason: reason(
          "Dependency",
          `waiting for ${waiting.map((d) => `${d.dep_id} (${d.condition})`).join(", ")}`,
        ),
      },
    };
  }
  if (j.not_before != null && j.not_before > now) {
    const s = parseSpec(j);
    return {
      ok: true,
      value: {
        ...base,
        reason: reason(
          "Backoff",
          `attempt ${j.attempt - 1} failed (${j.reason ?? "Failed"}${j.exit_code != null ? `, exit code ${j.exit_code}` : ""}); retry ${j.failures} of ${s.maxRetries} at ${new Date(j.not_before).toISOString()}`,
        ),
        estimatedStart: {
          at: new Date(j.not_before).toISOString(),
          basis: "estimate: end of the retry backoff",
        },
      },
    };
  }
  const info = await schedulerStub(ctx.env).capacityInfo(ctx.tenantId, j.type_key);
  const quota = ctx.catalog.quota();
  const usage = ctx.ledger.usage();
  const wanted = j.type_key;
  const types = Object.entries(info.types).filter(([k]) => wanted === "*" || k === wanted);
  const typeLabel = wanted === "*" ? "GPUs (any type)" : wanted;
  // Quota: the job cannot start while its tenant is at its limit for every type it could use.
  if (quota) {
    const candidates = wanted === "*" ? [...new Set([...types.map(([k]) => k), "*"])] : [wanted];
    const verdicts = candidates.map((k) => ({ k, v: checkOwn(quota, usage, k, j.gpus) }));
    // Borrowing needs the cohort to have that much unused quota to lend right now.
    const fitsSomewhere = verdicts.some(
      ({ k, v }) =>
        v.fits && (v.borrowing === 0 || (info.borrowable[bucketFor(quota, k) ?? ""] ?? 0) >= v.borrowing),
    );
    if (!fitsSomewhere) {
      const bad = verdicts.find(({ v }) => !v.fits)?.v;
      const msg =
        bad && !bad.fits
          ? bad.reason
          : `needs ${j.gpus} ${typeLabel} beyond the nominal quota and the cohort has none to lend`;
      return { ok: true, value: { ...base, reason: reason("QuotaExceeded", msg) } };
    }
  }
  const fitting = types.filter(([, s]) => s.largestBlock >= j.gpus);
  if (fitting.length === 0) {
    const biggest = types.reduce((m, [, s]) => Math.max(m, s.largestBlock), 0);
    return {
      ok: true,
      value: {
        ...base,
        reason: reason(
          "NoMatchingWorkers",
          types.length === 0
            ? `needs ${j.gpus} ${typeLabel}; no live worker has ${wanted === "*" ? "GPUs" : `${wanted} GPUs`}`
            : `needs ${j.gpus} ${typeLabel} on one worker; the largest worker has ${biggest}`,
        ),
      },
    };
  }
  const pos = position(ctx, j, now);
  const eta = estimate(
    pos.tenant + info.competition.jobsAhead,
    fitting.map(([k]) => k),
    info.ratePerMinute,
    now,
  );
  const extra = { position: pos, ...(eta ? { estimatedStart: eta } : {}) };
  const freeFits = fitting.some(([, s]) => s.largestFree >= j.gpus);
  const capacity = capacityMessage(j.gpus, typeLabel, fitting);
  // Like Slurm's Resources vs Priority: the job first in line waits for capacity; the ones behind it
  // wait for the jobs ahead of them (in this tenant, or of tenants further below their fair share).
  const { tenantsAhead, jobsAhead } = info.competition;
  if (!freeFits && pos.tenant === 0 && tenantsAhead === 0) {
    return { ok: true, value: { ...base, reason: reason("InsufficientCapacity", capacity), ...extra } };
  }
  const ahead = [
    pos.tenant
      ? `${pos.tenant} job(s) of this tenant (${pos.priority} at priority ${priorityName(j.priority)})`
      : null,
    tenantsAhead
      ? `${jobsAhead} job(s) of ${tenantsAhead} other tenant(s) further below their fair share`
      : null,
  ].filter(Boolean);
  const message = freeFits
    ? `a ${typeLabel} block of ${j.gpus} is free; the next scheduling pass places it${ahead.length ? ` after ${ahead.join(" and ")}` : ""}`
    : `${ahead.join(" and ")} are ahead for ${typeLabel}; ${capacity}`;
  return { ok: true, value: { ...base, reason: reason("PriorityOrFairShare", message), ...extra } };
}

/**
 * A rough start time: the jobs ahead (in this tenant and of tenants further below their share) divided by the recent placement rate for the GPU types
 * that fit. Labelled an estimate: other tenants' demand and job runtimes move it.
 */
function estimate(
  ahead: number,
  types: string[],
  rates: Record<string, number>,
  now: number,
): Explanation["estimatedStart"] | null {
  const perMinute = types.reduce((n, k) => n + (rates[k] ?? 0), 0);
  if (perMinute <= 0) return null;
  const minutes = (ahead + 1) / perMinute;
  return {
    at: new Date(now + minutes * 60_000).toISOString(),
    basis: `estimate, not a guarantee: ${ahead} job(s) ahead at ${perMinute.toFixed(1)} placements/min for these GPU types over the last 10 min`,
  };
}

function capacityMessage(gpus: number, label: string, fitting: [string, TypeStats][]): string {
  const largest = Math.max(...fitting.map(([, s]) => s.largestFree));
  const blocks = fitting.reduce((n, [, s]) => n + s.freeBlocks, 0);
  const workers = fitting.reduce((n, [, s]) => n + s.workers, 0);
  return `needs ${gpus} ${label}, largest free block is ${largest} (${blocks} worker(s) with free GPUs, ${workers} worker(s) of that type)`;
}

const reason = (code: PendingReason, message: string) => ({ code, message });

function notPending(j: JobRow): { code: string; message: string } {
  switch (j.state) {
    case "scheduled":
      return {
        code: "Scheduled",
        message: `leased to worker ${j.worker_id}; waiting for its agent to start it`,
      };
    case "running":
      return {
        code: "Running",
        message: `running on worker ${j.worker_id} (GPUs ${JSON.parse(j.gpu_indices ?? "[]").join(",")})`,
      };
    default:
      return { code: j.reason ?? j.state, message: j.message ?? `job is ${j.state}` };
  }
}

/**
 * Ready jobs that would be picked before this one inside the tenant and compete for the same GPUs (same
 * type, or any type): every higher priority, then at the same priority the jobs of users with less decayed
 * usage, then this user's older jobs.
 */
function position(ctx: TenantCtx, j: JobRow, now: number): { tenant: number; priority: number } {
  const competes = (shape: string) => {
    const t = parseShape(shape).typeKey;
    return j.type_key === "*" || t === "*" || t === j.type_key;
  };
  const rows = all<{ shape: string; priority: number; user: string; n: number }>(
    ctx.sql,
    "SELECT shape, priority, user, n FROM ready_users WHERE priority >= ?",
    j.priority,
  ).filter((r) => competes(r.shape));
  const mine = ctx.ledger.userStanding(j.user, now);
  const standing = new Map<string, number>();
  let higher = 0;
  let same = 0;
  for (const r of rows) {
    if (r.priority > j.priority) higher += r.n;
    else if (r.user !== j.user) {
      if (!standing.has(r.user)) standing.set(r.user, ctx.ledger.userStanding(r.user, now));
      if (standing.get(r.user)! < mine) same += r.n;
    }
  }
  const typeFilter = j.type_key === "*" ? "" : "AND (type_key = ? OR type_key = '*')";
  same +=
    first<{ n: number }>(
      ctx.sql,
      `SELECT count(*) AS n FROM jobs WHERE ready = 1 AND priority = ? AND user = ? AND seq < ? ${typeFilter}`,
      ...(j.type_key === "*" ? [j.priority, j.user, j.seq] : [j.priority, j.user, j.seq, j.type_key]),
    )?.n ?? 0;
  return { tenant: higher + same, priority: same };
}
