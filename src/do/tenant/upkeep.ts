// The tenant object's background work, run from its alarm: promote jobs whose retry backoff ended, verify
// unconfirmed leases with their fleet shards, push the demand summary to the scheduler, deliver mailbox
// messages, flush the outbox to Postgres, and prune what Postgres already holds. nextDue() is the one alarm
// time covering all of it.
import { minTime } from "../../lib/alarm.ts";
import { all, scalar } from "../../lib/sql.ts";
import { fleetStub, schedulerStub } from "../../stubs.ts";
import type { TenantCtx } from "./context.ts";
import { checkDelayMs, leasesLost } from "./leases.ts";
import { demandSummary } from "./summary.ts";

const PRUNE_EVERY_MS = 3600 * 1000;
/**
 * Jobs pruned per transaction. A tenant finishing 100 jobs/s has 360k to prune per hour: one transaction
 * for all of them would hold the object for seconds, so it goes in batches, each a second apart.
 */
export const PRUNE_BATCH = 2000;

export class Upkeep {
  private demandDirtyAt: number | null = null;

  constructor(private ctx: TenantCtx) {}

  /** Demand (ready jobs or held GPUs) changed: the scheduler hears about it after the debounce. */
  demandChanged(): void {
    const m = this.ctx.meta;
    m.set("demand_rev", m.num("demand_rev") + 1);
    if (this.demandDirtyAt === null) this.demandDirtyAt = Date.now() + this.ctx.cfg.debounceMs;
  }

  nextDue(now = Date.now()): number | null {
    const { meta, outbox, sql, mailbox, cfg } = this.ctx;
    const demandDue =
      meta.num("demand_rev") > meta.num("demand_pushed_rev") ? (this.demandDirtyAt ?? now) : null;
    const outboxDue = outbox.hasRows()
      ? now + (outbox.failures ? outbox.retryDelayMs() : cfg.outboxFlushMs)
      : null;
    const backoff = scalar<number>(sql, "SELECT min(not_before) FROM jobs WHERE not_before IS NOT NULL");
    const checks = scalar<number>(sql, "SELECT min(check_at) FROM jobs WHERE check_at IS NOT NULL");
    const prune = meta.num("prune_at", now + PRUNE_EVERY_MS);
    return minTime(demandDue, outboxDue, backoff, checks, mailbox.nextDue(), prune);
  }

  async run(now: number): Promise<void> {
    this.promoteBackoff(now);
    await Promise.allSettled([this.checkLeases(now), this.pushDemand(), this.deliverMail()]);
    if (this.ctx.outbox.hasRows()) await this.ctx.outbox.flush(this.ctx.env).catch(() => {});
    if (this.ctx.meta.num("prune_at", 0) <= now) this.prune(now);
  }

  private promoteBackoff(now: number): void {
    const { sql, jobs } = this.ctx;
    const due = all<{ id: string }>(
      sql,
      "SELECT id FROM jobs WHERE not_before IS NOT NULL AND not_before <= ?",
      now,
    );
    if (due.length === 0) return;
    this.ctx.tx(() => {
      for (const { id } of due) {
        const j = jobs.get(id);
        if (j) jobs.patch(j, { not_before: null }, now);
      }
    });
    this.demandChanged();
  }

  /** Scheduled/running leases unconfirmed for a while: ask their fleet shard whether they still exist. */
  private async checkLeases(now: number): Promise<void> {
    const ctx = this.ctx;
    const due = all<{ id: string; lease: number; worker_id: string; shard: string }>(
      ctx.sql,
      "SELECT id, lease, worker_id, shard FROM jobs WHERE check_at IS NOT NULL AND check_at <= ? LIMIT 1000",
      now,
    );
    if (due.length === 0) return;
    const byShard = new Map<string, typeof due>();
    for (const d of due) byShard.set(d.shard, [...(byShard.get(d.shard) ?? []), d]);
    await Promise.all(
      [...byShard].map(async ([shard, items]) => {
        const unknown = new Set(
          await fleetStub(ctx.env, shard).unknownLeases(
            items.map((i) => ({ jobId: i.id, lease: i.lease, workerId: i.worker_id })),
          ),
        );
        leasesLost(
          ctx,
          items
            .filter((i) => unknown.has(i.id))
            .map((i) => ({ jobId: i.id, lease: i.lease, reason: "LeaseExpired" as const })),
        );
        ctx.tx(() => {
          for (const i of items) {
            if (unknown.has(i.id)) continue;
            const j = ctx.jobs.get(i.id);
            if (j && j.lease === i.lease && (j.state === "scheduled" || j.state === "running")) {
              ctx.jobs.patch(j, { check_at: Date.now() + checkDelayMs(ctx, j.state) });
            }
          }
        });
      }),
    );
  }

  private async pushDemand(): Promise<void> {
    const { meta, catalog, env } = this.ctx;
    const rev = meta.num("demand_rev");
    if (rev <= meta.num("demand_pushed_rev") || !catalog.loaded) return;
    const summary = demandSummary(this.ctx, rev);
    meta.set("stats", JSON.stringify(this.ctx.stats)); // histograms survive a restart
    this.demandDirtyAt = null;
    await schedulerStub(env).updateDemand(summary);
    if (rev > meta.num("demand_pushed_rev")) meta.set("demand_pushed_rev", rev);
  }

  deliverMail(): Promise<void> {
    return this.ctx.mailbox.deliver(async (target, method, payloads) => {
      const [kind, name] = target.split(":") as [string, string];
      if (kind === "fleet" && method === "cancelLeases") {
        await fleetStub(this.ctx.env, name).cancelLeases(payloads as never);
        return;
      }
      throw new Error(`unknown mailbox route ${target} ${method}`);
    });
  }

  /**
   * Finished jobs stay here JOB_RETENTION_HOURS (default a week) for fast reads and dependencies; Postgres
   * keeps them for good, and reads of a pruned job go there.
   */
  private prune(now: number): void {
    const { sql, meta, outbox, cfg } = this.ctx;
    if (outbox.hasRows()) {
      meta.set("prune_at", now + 60_000); // only prune what Postgres already has
      return;
    }
    const retentionMs = cfg.retentionHours * 3600 * 1000;
    const ids = all<{ id: string }>(
      sql,
      "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? ORDER BY finished_at LIMIT ?",
      now - retentionMs,
      PRUNE_BATCH,
    ).map((r) => r.id);
    this.ctx.tx(() => {
      if (ids.length > 0) {
        const list = JSON.stringify(ids);
        const inList = "(SELECT value FROM json_each(?))";
        for (const t of ["events", "logs", "deps", "jobs"]) {
          sql.exec(`DELETE FROM ${t} WHERE ${t === "jobs" ? "id" : "job_id"} IN ${inList}`, list);
        }
        this.ctx.jobs.forget(ids);
      }
      sql.exec("DELETE FROM idempotency WHERE at < ?", now - 24 * 3600 * 1000);
      // More to go: the next batch in a second. Otherwise again in an hour (sooner for short retentions).
      const next = ids.length === PRUNE_BATCH ? 1000 : Math.min(PRUNE_EVERY_MS, retentionMs / 2);
      meta.set("prune_at", now + next);
    });
  }
}
