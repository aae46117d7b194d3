// The placement coordinator of a scheduling domain. It sees free capacity (from the fleet shards) and each
// tenant's demand summary (shapes, weight, quota, usage — never individual jobs), picks (tenant, shape,
// worker, GPUs) by tier and weighted fair share, and lets the tenant's object pick the concrete job and
// commit the lease. A pass costs O(placements), whatever the backlog.
import { DurableObject } from "cloudflare:workers";
import { CapacityIndex, type WorkerCapacity } from "../domain/capacity.ts";
import { placementRates, recentMarks } from "../domain/competition.ts";
import { type Placement, planPlacements, type TenantDemand } from "../domain/fairshare.ts";
import { emptyHistogram, type Histogram, observe } from "../domain/histogram.ts";
import { applyRelease, pendingAfter, type Release } from "../domain/release.ts";
import { config, type Env } from "../env.ts";
import { AlarmPlanner } from "../lib/alarm.ts";
import { all, Meta, migrate } from "../lib/sql.ts";
import { allShards, fleetStub, tenantStub } from "../stubs.ts";
import type { AssignItem } from "./fleet-shard.ts";
import { capacityInfo, cohortMembers, demandView } from "./scheduler/view.ts";
import type { DemandSummary } from "./tenant/summary.ts";

const SCHEMA = [
  "CREATE TABLE demand (tenant_id TEXT PRIMARY KEY, rev INTEGER NOT NULL, summary TEXT NOT NULL)",
  "CREATE TABLE capacity (worker_id TEXT PRIMARY KEY, version INTEGER NOT NULL, snapshot TEXT NOT NULL)",
];

/** Placements committed per round; a pass keeps going while rounds fill up. */
const ROUND = 256;
const RESYNC_MS = 5 * 60 * 1000;

const MAX_PENDING_RELEASES = 1000;

export type CapacityReport =
  | (WorkerCapacity & { removed: false })
  | {
      workerId: string;
      shard: string;
      removed: true;
      version: number;
    };

export interface SchedulerStats {
  passes: number;
  placements: number;
  lastPassMs: number;
  failedClaims: number;
  failedAssigns: number;
}

export class Scheduler extends DurableObject<Env> {
  private sql: SqlStorage;
  private meta: Meta;
  private planner: AlarmPlanner;
  private capacity = new CapacityIndex();
  private versions = new Map<string, number>();
  private demand = new Map<string, DemandSummary>();
  /** GPUs picked by the running pass but not yet confirmed by their fleet shard. */
  private reserved = new Map<string, Set<number>>();
  private running = false;
  private again = false;
  /** Tenants with a claim in flight, summaries that arrived meanwhile, and the revision each claim left. */
  private claiming = new Set<string>();
  private deferred = new Map<string, DemandSummary>();
  private minRev = new Map<string, number>();
  /** Releases newer than the tenant's summary, replayed onto a summary older than them (domain/release.ts). */
  private releases = new Map<string, Release[]>();
  /** Recent placements (time, GPU type key), for the estimated start times explain gives. */
  private recent: { at: number; typeKey: string }[] = [];
  readonly stats: SchedulerStats = {
    passes: 0,
    placements: 0,
    lastPassMs: 0,
    failedClaims: 0,
    failedAssigns: 0,
  };
  /** Duration of passes that placed something (a pass spans calls to tenants and shards). */
  private passSeconds: Histogram = emptyHistogram();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    migrate(this.sql, SCHEMA);
    this.meta = new Meta(this.sql);
    this.planner = new AlarmPlanner(ctx.storage);
    for (const r of all<{ summary: string }>(this.sql, "SELECT summary FROM demand")) {
      const s = JSON.parse(r.summary) as DemandSummary;
      this.demand.set(s.tenantId, s);
    }
    for (const r of all<{ worker_id: string; version: number; snapshot: string }>(
      this.sql,
      "SELECT * FROM capacity",
    )) {
      this.capacity.upsert(JSON.parse(r.snapshot) as WorkerCapacity);
      this.versions.set(r.worker_id, r.version);
    }
    ctx.blockConcurrencyWhile(() => this.planner.init());
  }

  // ------------------------------------------------------------------ inputs

  async updateDemand(s: DemandSummary): Promise<void> {
    const prev = this.demand.get(s.tenantId);
    if (prev && prev.rev >= s.rev) return;
    if ((this.minRev.get(s.tenantId) ?? 0) > s.rev) return; // computed before a claim we already know
    if (this.claiming.has(s.tenantId)) {
      // A claim for this tenant is in flight: a summary may predate it and would erase the GPUs the pass
      // just counted against the tenant (and its cohort). Keep the newest; judge it when the claim returns.
      const d = this.deferred.get(s.tenantId);
      if (!d || d.rev < s.rev) this.deferred.set(s.tenantId, s);
      return;
    }
    this.demand.set(s.tenantId, s);
    this.sql.exec(
      "INSERT INTO demand (tenant_id, rev, summary) VALUES (?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET rev = excluded.rev, summary = excluded.summary",
      s.tenantId,
      s.rev,
      JSON.stringify(s),
    );
    const pending = pendingAfter(this.releases.get(s.tenantId) ?? [], s.rev);
    if (pending.length > 0) this.releases.set(s.tenantId, pending);
    else this.releases.delete(s.tenantId);
    for (const r of pending) applyRelease(s, r);
    if (s.shapes.some((x) => x.count > 0)) await this.kick();
  }

  /**
   * Capacity from a fleet shard, with the GPUs tenants gave back to free it (applied first, so the pass
   * this capacity starts does not count them against their tenants any more).
   */
  async updateCapacity(reports: CapacityReport[], releases: Release[] = []): Promise<void> {
    for (const r of releases) this.noteRelease(r);
    let grew = false;
    for (const r of reports) grew = this.applyCapacity(r) || grew;
    if (grew) await this.kick();
  }

  private noteRelease(r: Release): void {
    const d = this.demand.get(r.tenantId);
    if (d && d.rev >= r.rev) return; // the summary already counts it
    const list = this.releases.get(r.tenantId) ?? [];
    // Bounded: summaries that stop coming (they are the truth) must not let this grow without end.
    if (list.length >= MAX_PENDING_RELEASES) list.shift();
    list.push(r);
    this.releases.set(r.tenantId, list);
    if (d) applyRelease(d, r);
  }

  /** Returns true when schedulable capacity may have grown. */
  private applyCapacity(r: CapacityReport): boolean {
    const known = this.versions.get(r.workerId);
    if (known !== undefined && known >= r.version) return false;
    this.versions.set(r.workerId, r.version);
    if (r.removed) {
      this.capacity.remove(r.workerId);
      this.sql.exec("DELETE FROM capacity WHERE worker_id = ?", r.workerId);
      return false;
    }
    const held = this.reserved.get(r.workerId);
    const snap: WorkerCapacity = held ? { ...r, free: r.free.filter((i) => !held.has(i)) } : r;
    this.capacity.upsert(snap);
    this.sql.exec(
      "INSERT INTO capacity (worker_id, version, snapshot) VALUES (?, ?, ?) ON CONFLICT (worker_id) DO UPDATE SET version = excluded.version, snapshot = excluded.snapshot",
      r.workerId,
      r.version,
      JSON.stringify(r),
    );
    return snap.schedulable && snap.free.length > 0;
  }

  private async kick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    await this.planner.atMost(Date.now() + config(this.env).debounceMs);
  }

  // ------------------------------------------------------------------ queries

  /** Capacity by GPU type and what this tenant could borrow, for explain. O(workers), on demand only. */
  async capacityInfo(tenantId: string, typeKey = "*") {
    return capacityInfo(this.capacity, this.demand, tenantId, typeKey, this.rates());
  }

  private rates(now = Date.now()): Record<string, number> {
    this.recent = recentMarks(this.recent, now);
    return placementRates(this.recent, now);
  }

  async getStats() {
    const { tenantsWithDemand, demand } = demandView(this.demand.values());
    return {
      ...this.stats,
      passSeconds: this.passSeconds,
      tenantsWithDemand,
      workers: this.capacity.size,
      demand,
    };
  }

  // ------------------------------------------------------------------ placement

  override async alarm(): Promise<void> {
    this.planner.fired();
    await this.pass();
  }

  /** Cron safety net: resync capacity from every shard now and then, and run a pass. */
  async tick(): Promise<SchedulerStats> {
    if (this.meta.num("resync_at") <= Date.now()) await this.resync();
    await this.pass();
    return this.stats;
  }

  async resync(): Promise<void> {
    const snaps = await Promise.all(
      allShards(this.env).map((s) => fleetStub(this.env, s).capacitySnapshot()),
    );
    for (const { shard, workers } of snaps) {
      const listed = new Set(workers.map((w) => w.workerId));
      for (const w of workers) this.applyCapacity({ ...w, removed: false });
      for (const r of all<{ worker_id: string; snapshot: string }>(
        this.sql,
        "SELECT worker_id, snapshot FROM capacity",
      )) {
        const snap = JSON.parse(r.snapshot) as WorkerCapacity;
        if (snap.shard === shard && !listed.has(r.worker_id)) {
          this.capacity.remove(r.worker_id);
          this.sql.exec("DELETE FROM capacity WHERE worker_id = ?", r.worker_id);
        }
      }
    }
    this.meta.set("resync_at", Date.now() + RESYNC_MS);
  }

  async pass(): Promise<number> {
    if (this.running) {
      this.again = true;
      return 0;
    }
    this.running = true;
    const started = Date.now();
    let placed = 0;
    try {
      if (this.capacity.size === 0 && !this.meta.get("resync_at")) await this.resync();
      for (let rounds = 0; rounds < 1000; rounds++) {
        this.again = false;
        const n = await this.round();
        placed += n.placed;
        if (!this.again && n.planned < ROUND) break;
      }
    } finally {
      this.running = false;
      this.stats.passes++;
      this.stats.lastPassMs = Date.now() - started;
      if (placed > 0) observe(this.passSeconds, this.stats.lastPassMs / 1000);
    }
    return placed;
  }

  private async round(): Promise<{ planned: number; placed: number }> {
    const tenants = [...this.demand.values()] as TenantDemand[];
    const plans = planPlacements(tenants, this.capacity, ROUND, (c) =>
      cohortMembers(this.demand.values(), c),
    );
    if (plans.length === 0) return { planned: 0, placed: 0 };
    for (const p of plans) {
      const set = this.reserved.get(p.block.workerId) ?? new Set<number>();
      for (const i of p.indices) set.add(i);
      this.reserved.set(p.block.workerId, set);
    }
    const byId = new Map(plans.map((p, i) => [`p${i}`, p]));
    let placed = 0;
    try {
      // 1. Each tenant picks concrete jobs and commits the leases.
      const byTenant = group([...byId], ([, p]) => p.tenantId);
      const claimed: { id: string; p: Placement; item: AssignItem }[] = [];
      for (const t of byTenant.keys()) this.claiming.add(t);
      await Promise.all(
        [...byTenant].map(async ([tenantId, entries]) => {
          const { results, rev } = await tenantStub(this.env, tenantId)
            .claim(
              entries.map(([id, p]) => ({
                placementId: id,
                shape: p.shape,
                workerId: p.block.workerId,
                shard: p.block.shard,
                typeName: p.block.typeName,
                indices: p.indices,
              })),
            )
            .catch(() => ({
              results: entries.map(([id]) => ({ placementId: id, assignment: null, reason: "Error" })),
              rev: 0,
            }));
          this.claiming.delete(tenantId);
          if (rev > (this.minRev.get(tenantId) ?? 0)) this.minRev.set(tenantId, rev);
          for (const r of results) {
            const p = byId.get(r.placementId)!;
            if (r.assignment) {
              claimed.push({
                id: r.placementId,
                p,
                item: {
                  placementId: r.placementId,
                  workerId: p.block.workerId,
                  indices: p.indices,
                  assignment: r.assignment,
                },
              });
            } else {
              this.stats.failedClaims++;
              this.giveBack(p, r.reason === "NoReadyJob");
            }
          }
          await this.applyDeferred(tenantId);
        }),
      );
      // 2. The fleet shards record the leases and deliver them to the agents.
      const byShard = group(claimed, (c) => c.p.block.shard);
      await Promise.all(
        [...byShard].map(async ([shard, entries]) => {
          let res: Awaited<ReturnType<ReturnType<typeof fleetStub>["assign"]>>;
          try {
            res = await fleetStub(this.env, shard).assign(entries.map((e) => e.item));
          } catch {
            res = {
              results: entries.map((e) => ({ placementId: e.id, ok: false, reason: "Error" })),
              capacity: [],
            };
          }
          for (const c of res.capacity) this.applyCapacity({ ...c, removed: false });
          const failed: { tenantId: string; jobId: string; lease: number; reason: string }[] = [];
          res.results.forEach((r, i) => {
            const e = entries[i]!;
            if (r.ok) {
              placed++;
              this.recent.push({ at: Date.now(), typeKey: e.p.block.typeKey });
              return;
            }
            this.stats.failedAssigns++;
            this.capacity.give(e.p.block.key, e.p.indices);
            failed.push({
              tenantId: e.p.tenantId,
              jobId: e.item.assignment.jobId,
              lease: e.item.assignment.lease,
              reason: r.reason ?? "refused",
            });
          });
          // The tenant committed a lease the fleet refused: give the job back to its queue, no penalty.
          await Promise.all(
            [...group(failed, (f) => f.tenantId)].map(([t, fs]) =>
              tenantStub(this.env, t)
                .unclaim(fs)
                .catch(() => {}),
            ),
          );
        }),
      );
    } finally {
      for (const p of plans) this.reserved.get(p.block.workerId)?.clear();
      this.reserved.clear();
      // Never leave a tenant's summaries deferred, whatever went wrong above.
      for (const p of plans) if (this.claiming.delete(p.tenantId)) await this.applyDeferred(p.tenantId);
    }
    this.stats.placements += placed;
    return { planned: plans.length, placed };
  }

  /** A summary that arrived during the tenant's claim counts only if it is not older than the claim. */
  private async applyDeferred(tenantId: string): Promise<void> {
    const d = this.deferred.get(tenantId);
    this.deferred.delete(tenantId);
    if (d && d.rev >= (this.minRev.get(tenantId) ?? 0)) await this.updateDemand(d);
  }

  /** Undo a planned placement that did not happen. A stale shape is dropped until the next summary. */
  private giveBack(p: Placement, stale: boolean): void {
    this.capacity.give(p.block.key, p.indices);
    const d = this.demand.get(p.tenantId);
    if (!d) return;
    const s = d.shapes.find((x) => x.shape === p.shape && x.priority === p.priority);
    if (s) s.count = stale ? 0 : s.count + 1;
    d.held = Math.max(0, d.held - p.gpus);
    d.usage.byType[p.block.typeKey] = Math.max(0, (d.usage.byType[p.block.typeKey] ?? 0) - p.gpus);
    d.usage.jobs = Math.max(0, d.usage.jobs - 1);
  }
}

function group<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const g = m.get(k);
    if (g) g.push(it);
    else m.set(k, [it]);
  }
  return m;
}
