// Tenant-facing reads and the small writes that go with them (cancel, manual quota allocations).
import { newId } from "../../domain/ids.ts";
import { gpuTypeKey, isTerminal, PRIORITIES } from "../../domain/job.ts";
import { bucketFor, checkOwn, totalGpus } from "../../domain/quota.ts";
import { fail, type Result } from "../../errors.ts";
import type { EventRecord } from "../../lib/history.ts";
import { all, first } from "../../lib/sql.ts";
import type { TenantCtx } from "./context.ts";
import { eventRecord } from "./job-row.ts";
import { requestCancel } from "./leases.ts";
import { type JobView, viewFromRow } from "./view.ts";

export class TenantReads {
  constructor(private ctx: TenantCtx) {}

  job(id: string): JobView | null {
    const j = this.ctx.jobs.get(id);
    return j ? viewFromRow(j, this.ctx.tenantId) : null;
  }

  events(id: string): EventRecord[] | null {
    if (!this.ctx.jobs.get(id)) return null;
    return this.ctx.jobs.events(id);
  }

  /** Events after `afterSeq` for the live stream and its resume (newest last). */
  eventsSince(afterSeq: number, limit = 1000): EventRecord[] {
    return all<Record<string, SqlStorageValue>>(
      this.ctx.sql,
      "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
      afterSeq,
      limit,
    ).map((r) => eventRecord(r, this.ctx.tenantId));
  }

  log(id: string): { attempt: number; tail: string; updatedAt: string } | null {
    const r = first<{ attempt: number; tail: string; updated_at: number }>(
      this.ctx.sql,
      "SELECT attempt, tail, updated_at FROM logs WHERE job_id = ?",
      id,
    );
    return r ? { attempt: r.attempt, tail: r.tail, updatedAt: new Date(r.updated_at).toISOString() } : null;
  }

  /** Queued: cancelled at once. Scheduled/running: the agent is told; the job ends when it confirms. */
  cancel(id: string, actor: string, requestId: string): Result<{ job: JobView }> {
    const ctx = this.ctx;
    const j = ctx.jobs.get(id);
    if (!j) return fail("NotFound", `no job ${id}`);
    if (isTerminal(j.state)) return fail("InvalidTransition", `job ${id} is already ${j.state}`);
    ctx.tx(() => {
      if (j.state === "queued") {
        ctx.jobs.transition(
          j,
          "cancelled",
          { reason: "Cancelled", message: `cancelled by ${actor}` },
          {
            reason: "Cancelled",
            message: `cancelled by ${actor}`,
          },
        );
      } else if (!j.cancel_requested) {
        requestCancel(ctx, j);
      }
      ctx.outbox.add({
        kind: "audit",
        data: {
          id: newId("aud"),
          at: Date.now(),
          actor,
          tenantId: ctx.tenantId,
          action: "job.cancel",
          target: id,
          requestId,
          detail: { from: j.state },
        },
      });
    });
    ctx.demandChanged();
    return { ok: true, job: viewFromRow(ctx.jobs.get(id)!, ctx.tenantId) };
  }

  queue(now = Date.now()) {
    const ctx = this.ctx;
    // From the counters every transition keeps, and one indexed lookup per priority: no backlog scan.
    const counts: Record<string, Record<string, number>> = {};
    const all = ctx.jobs.counts();
    for (const s of ["queued", "scheduled", "running"]) counts[s] = all[s] ?? {};
    const byState: Record<string, number> = { queued: 0, scheduled: 0, running: 0 };
    const byPriority: Record<string, number> = Object.fromEntries(PRIORITIES.map((p) => [p, 0]));
    for (const [s, m] of Object.entries(counts)) {
      for (const [p, n] of Object.entries(m)) {
        byState[s] = (byState[s] ?? 0) + n;
        if (s === "queued") byPriority[p] = (byPriority[p] ?? 0) + n;
      }
    }
    const oldestByPriority: Record<string, number | null> = {};
    let oldest: number | null = null;
    for (const p of PRIORITIES) {
      const t = first<{ t: number }>(
        ctx.sql,
        "SELECT submitted_at AS t FROM jobs WHERE state = 'queued' AND priority = ? ORDER BY seq LIMIT 1",
        PRIORITIES.indexOf(p),
      )?.t;
      oldestByPriority[p] = t != null ? Math.round((now - t) / 1000) : null;
      if (t != null && (oldest === null || t < oldest)) oldest = t;
    }
    const usage = ctx.ledger.usage();
    return {
      tenantId: ctx.tenantId,
      counts: { byState, queuedByPriority: byPriority, detail: counts },
      oldestQueuedAgeSeconds: oldest != null ? Math.round((now - oldest) / 1000) : null,
      oldestQueuedAgeSecondsByPriority: oldestByPriority,
      fairShare: {
        weight: ctx.catalog.weight(),
        gpusHeld: totalGpus(usage),
        decayedGpuSeconds: Math.round(ctx.ledger.tenantDecayedGpuSeconds(now)),
        averageGpus: Number(ctx.ledger.tenantAverage(now).toFixed(3)),
        halfLifeSeconds: ctx.cfg.halfLifeSeconds,
      },
    };
  }

  quota() {
    const ctx = this.ctx;
    const usage = ctx.ledger.usage();
    const names = ctx.ledger.typeNames();
    const byType: Record<string, number> = {};
    for (const [k, g] of Object.entries(usage.byType)) if (g > 0) byType[names[k] ?? k] = g;
    return {
      quota: ctx.catalog.quota(),
      usage: { gpus: totalGpus(usage), byType, jobs: usage.jobs },
      allocations: ctx.ledger.allocations().map((a) => ({
        id: a.id,
        gpus: a.gpus,
        gpuType: a.gpu_type,
        note: a.note,
        createdAt: new Date(a.created_at).toISOString(),
      })),
    };
  }

  quotaCheck(gpus: number, gpuType: string | null): { fits: boolean; reason?: string } {
    const v = checkOwn(this.ctx.catalog.quota(), this.ctx.ledger.usage(), gpuTypeKey(gpuType), gpus, 0);
    if (!v.fits) return { fits: false, reason: v.reason };
    if (v.borrowing > 0) {
      return {
        fits: true,
        reason: `would borrow ${v.borrowing} GPUs from the cohort, if the cohort has them unused`,
      };
    }
    return { fits: true };
  }

  /** Manual allocations draw on the same ledger as scheduled jobs, against the nominal quota only. */
  allocate(
    gpus: number,
    gpuType: string | null,
    note: string | null,
    actor: string,
    requestId: string,
  ): Result<{ id: string }> {
    const ctx = this.ctx;
    const quota = ctx.catalog.quota();
    const key = gpuTypeKey(gpuType);
    if (quota && !bucketFor(quota, key)) {
      return fail("QuotaExceeded", `no quota for ${gpuType ?? "GPUs of any type"}`);
    }
    const v = checkOwn(quota ? { ...quota, cohort: null } : null, ctx.ledger.usage(), key, gpus, 0);
    if (!v.fits) return fail("QuotaExceeded", `allocation does not fit: ${v.reason}`);
    const id = newId("alloc");
    const now = Date.now();
    ctx.tx(() => {
      ctx.ledger.addAllocation({ id, gpus, type_key: key, gpu_type: gpuType, note, created_at: now });
      ctx.outbox.add({
        kind: "allocation",
        data: { id, tenantId: ctx.tenantId, gpus, gpuType, note, createdAt: now, releasedAt: null },
      });
      ctx.outbox.add({
        kind: "audit",
        data: {
          id: newId("aud"),
          at: now,
          actor,
          tenantId: ctx.tenantId,
          action: "quota.allocate",
          target: id,
          requestId,
          detail: { gpus, gpuType },
        },
      });
    });
    ctx.demandChanged();
    return { ok: true, id };
  }

  deallocate(id: string, actor: string, requestId: string): Result<Record<never, never>> {
    const ctx = this.ctx;
    const a = first<{
      id: string;
      gpus: number;
      gpu_type: string | null;
      note: string | null;
      created_at: number;
    }>(ctx.sql, "SELECT * FROM allocations WHERE id = ?", id);
    if (!a) return fail("NotFound", `no allocation ${id}`);
    const now = Date.now();
    ctx.tx(() => {
      ctx.ledger.removeAllocation(id);
      ctx.outbox.add({
        kind: "allocation",
        data: {
          id,
          tenantId: ctx.tenantId,
          gpus: a.gpus,
          gpuType: a.gpu_type,
          note: a.note,
          createdAt: a.created_at,
          releasedAt: now,
        },
      });
      ctx.outbox.add({
        kind: "audit",
        data: {
          id: newId("aud"),
          at: now,
          actor,
          tenantId: ctx.tenantId,
          action: "quota.release",
          target: id,
          requestId,
          detail: null,
        },
      });
    });
    ctx.demandChanged();
    return { ok: true };
  }
}
