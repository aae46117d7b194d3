// What the scheduler learns about a tenant: the shapes at the head of its queue (not the jobs), its weight,
// quota, what it holds and its decayed usage. Cost depends on the number of distinct shapes, not the backlog.

import type { DemandShape } from "../../domain/fairshare.ts";
import type { Histogram } from "../../domain/histogram.ts";
import { parseShape } from "../../domain/job.ts";
import type { QuotaSpec, QuotaUsage } from "../../domain/quota.ts";
import { totalGpus } from "../../domain/quota.ts";
import { all, first } from "../../lib/sql.ts";
import type { TenantCtx } from "./context.ts";

export interface DemandSummary {
  tenantId: string;
  rev: number;
  weight: number;
  quota: QuotaSpec | null;
  usage: QuotaUsage;
  held: number;
  avgUsage: number;
  shapes: DemandShape[];
  at: number;
  /** For /metrics: jobs by state and priority, latency histograms, outbox backlog. */
  stats: {
    counts: Record<string, Record<string, number>>;
    submit: Histogram;
    wait: Histogram;
    outboxPending: number;
    outboxLagSeconds: number;
  };
}

const MAX_SHAPES = 32;

export function demandSummary(ctx: TenantCtx, rev: number, now = Date.now()): DemandSummary {
  const rows = all<{ shape: string; priority: number; n: number }>(
    ctx.sql,
    "SELECT shape, priority, sum(n) AS n FROM ready_users GROUP BY shape, priority HAVING sum(n) > 0 ORDER BY priority DESC LIMIT ?",
    MAX_SHAPES,
  );
  const shapes: DemandShape[] = rows.map((r) => {
    const { gpus, typeKey } = parseShape(r.shape);
    const oldest = first<{ submitted_at: number }>(
      ctx.sql,
      "SELECT submitted_at FROM jobs WHERE ready = 1 AND shape = ? AND priority = ? ORDER BY seq LIMIT 1",
      r.shape,
      r.priority,
    );
    return {
      shape: r.shape,
      gpus,
      typeKey,
      priority: r.priority,
      count: r.n,
      oldestAt: oldest?.submitted_at ?? now,
    };
  });
  const usage = ctx.ledger.usage();
  return {
    tenantId: ctx.tenantId,
    rev,
    weight: ctx.catalog.weight(),
    quota: ctx.catalog.quota(),
    usage,
    held: totalGpus(usage),
    avgUsage: ctx.ledger.tenantAverage(now),
    shapes,
    at: now,
    stats: {
      counts: ctx.jobs.counts(),
      submit: ctx.stats.submit,
      wait: ctx.stats.wait,
      outboxPending: ctx.outbox.pending(),
      outboxLagSeconds: ctx.outbox.lagSeconds(now),
    },
  };
}
