// The tenant's live quota ledger (GPUs held per GPU type by scheduled + running jobs, plus manual
// allocations) and its decayed usage (tenant and per user). Changed only from inside the job store's
// transition, so taking and giving back quota is always in the same transaction as the state change.
import { averageGpus, type DecayedUsage, rollForward, withRate } from "../../domain/decay.ts";
import { emptyUsage, type QuotaUsage } from "../../domain/quota.ts";
import { all, type Meta } from "../../lib/sql.ts";

export interface AllocationRow {
  id: string;
  gpus: number;
  type_key: string;
  gpu_type: string | null;
  note: string | null;
  created_at: number;
}

interface Holding {
  type_name: string;
  gpus: number;
  jobs: number;
}

export class Ledger {
  constructor(
    private sql: SqlStorage,
    private meta: Meta,
    private halfLife: () => number,
  ) {}

  /** GPUs given back since takeGivenBack() was last called: the release hint's content. */
  private given: QuotaUsage = emptyUsage();

  // Read-through, write-through caches, as in Meta: this object is the only writer of these tables, and a
  // claim or a report reads and changes them once per job. Inside a transaction (begin/commit) the rows
  // changed are written once, at its end; a rollback (abort) empties the caches.
  private holdings: Map<string, Holding> | null = null;
  private allocated: Map<string, number> | null = null;
  private users = new Map<string, DecayedUsage>();
  private dirty: { holdings: Set<string>; users: Set<string> } | null = null;

  begin(): void {
    this.dirty ??= { holdings: new Set(), users: new Set() };
  }

  commit(): void {
    const d = this.dirty;
    this.dirty = null;
    if (d) this.write(d.holdings, d.users);
  }

  abort(): void {
    this.dirty = null;
    this.holdings = null;
    this.allocated = null;
    this.users.clear();
  }

  private write(holdingKeys: Iterable<string>, users: Iterable<string>): void {
    const keep: unknown[][] = [];
    const drop: string[] = [];
    for (const k of holdingKeys) {
      const h = this.holdingRows().get(k);
      if (h && (h.gpus > 0 || h.jobs > 0)) keep.push([k, h.type_name, h.gpus, h.jobs]);
      else drop.push(k);
    }
    if (keep.length > 0)
      this.sql.exec(
        `INSERT INTO holdings (type_key, type_name, gpus, jobs)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?) WHERE true
         ON CONFLICT (type_key) DO UPDATE SET type_name = excluded.type_name, gpus = excluded.gpus, jobs = excluded.jobs`,
        JSON.stringify(keep),
      );
    if (drop.length > 0)
      this.sql.exec(
        "DELETE FROM holdings WHERE type_key IN (SELECT value FROM json_each(?))",
        JSON.stringify(drop),
      );
    const rows = [...users].flatMap((u) => {
      const x = this.users.get(u);
      return x ? [[u, x.value, x.rate, x.at]] : [];
    });
    if (rows.length > 0)
      this.sql.exec(
        `INSERT INTO user_usage (user, value, rate, at)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?) WHERE true
         ON CONFLICT (user) DO UPDATE SET value = excluded.value, rate = excluded.rate, at = excluded.at`,
        JSON.stringify(rows),
      );
  }

  private holdingRows(): Map<string, Holding> {
    if (!this.holdings) {
      this.holdings = new Map();
      for (const h of all<Holding & { type_key: string }>(
        this.sql,
        "SELECT type_key, type_name, gpus, jobs FROM holdings",
      ))
        this.holdings.set(h.type_key, { type_name: h.type_name, gpus: h.gpus, jobs: h.jobs });
    }
    return this.holdings;
  }

  private changedHolding(typeKey: string): void {
    if (this.dirty) this.dirty.holdings.add(typeKey);
    else this.writeNow([typeKey], []);
  }

  /** Outside a transaction: written at once; if that fails, memory must not stay ahead of SQLite. */
  private writeNow(holdingKeys: string[], users: string[]): void {
    try {
      this.write(holdingKeys, users);
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  take(typeKey: string, typeName: string, gpus: number): void {
    const rows = this.holdingRows();
    const h = rows.get(typeKey);
    if (h) {
      h.gpus += gpus;
      h.jobs += 1;
    } else rows.set(typeKey, { type_name: typeName, gpus, jobs: 1 });
    this.changedHolding(typeKey);
  }

  give(typeKey: string, gpus: number): void {
    const h = this.holdingRows().get(typeKey);
    if (h) {
      h.gpus -= gpus;
      h.jobs -= 1;
      if (h.gpus <= 0 && h.jobs <= 0) this.holdings!.delete(typeKey);
      this.changedHolding(typeKey);
    }
    this.given.byType[typeKey] = (this.given.byType[typeKey] ?? 0) + gpus;
    this.given.jobs++;
  }

  /** GPUs given back since the last call (in memory; bracket synchronous work with two calls). */
  takeGivenBack(): QuotaUsage {
    const g = this.given;
    this.given = emptyUsage();
    return g;
  }

  /** Quota usage: jobs' holdings plus manual allocations, by GPU type key. */
  usage(): QuotaUsage {
    const u: QuotaUsage = { byType: {}, jobs: 0 };
    for (const [k, h] of this.holdingRows()) {
      u.byType[k] = (u.byType[k] ?? 0) + h.gpus;
      u.jobs += h.jobs;
    }
    if (!this.allocated) {
      this.allocated = new Map();
      for (const a of all<{ type_key: string; g: number }>(
        this.sql,
        "SELECT type_key, sum(gpus) AS g FROM allocations GROUP BY type_key",
      ))
        this.allocated.set(a.type_key, a.g);
    }
    for (const [k, g] of this.allocated) u.byType[k] = (u.byType[k] ?? 0) + g;
    return u;
  }

  /** Display names of held types ("H100"), for GET /v1/quota. */
  typeNames(): Record<string, string> {
    const m: Record<string, string> = {};
    for (const [k, h] of this.holdingRows()) m[k] = h.type_name;
    return m;
  }

  allocations(): AllocationRow[] {
    return all<AllocationRow>(this.sql, "SELECT * FROM allocations ORDER BY created_at");
  }

  addAllocation(a: AllocationRow): void {
    this.sql.exec(
      "INSERT INTO allocations (id, gpus, type_key, gpu_type, note, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      a.id,
      a.gpus,
      a.type_key,
      a.gpu_type,
      a.note,
      a.created_at,
    );
    this.allocated = null;
  }

  removeAllocation(id: string): void {
    this.sql.exec("DELETE FROM allocations WHERE id = ?", id);
    this.allocated = null;
  }

  // ---- decayed usage ----

  tenantUsage(): DecayedUsage {
    return {
      value: this.meta.num("usage_value"),
      rate: this.meta.num("usage_rate"),
      at: this.meta.num("usage_at", Date.now()),
    };
  }

  userUsage(user: string): DecayedUsage {
    const hit = this.users.get(user);
    if (hit) return { ...hit };
    const r = all<{ value: number; rate: number; at: number }>(
      this.sql,
      "SELECT value, rate, at FROM user_usage WHERE user = ?",
      user,
    )[0];
    if (!r) return { value: 0, rate: 0, at: Date.now() }; // not cached: "now" moves
    this.users.set(user, { value: r.value, rate: r.rate, at: r.at });
    return { ...r };
  }

  /** A job of `user` started (+gpus) or stopped (−gpus) holding GPUs at `now`. */
  accrue(user: string, deltaGpus: number, now: number): void {
    const h = this.halfLife();
    const t = this.tenantUsage();
    const nt = withRate(t, now, h, t.rate + deltaGpus);
    this.meta.set("usage_value", nt.value);
    this.meta.set("usage_rate", nt.rate);
    this.meta.set("usage_at", nt.at);
    const u = this.userUsage(user);
    const nu = withRate(u, now, h, u.rate + deltaGpus);
    this.users.set(user, { value: nu.value, rate: nu.rate, at: nu.at });
    if (this.dirty) this.dirty.users.add(user);
    else this.writeNow([], [user]);
  }

  /** Standing of a user inside the tenant: GPUs held now + decayed average GPUs (less is served first). */
  userStanding(user: string, now: number): number {
    const u = this.userUsage(user);
    return u.rate + averageGpus(u, now, this.halfLife());
  }

  tenantAverage(now: number): number {
    return averageGpus(this.tenantUsage(), now, this.halfLife());
  }

  /** Decayed GPU-seconds now, for GET /v1/queue. */
  tenantDecayedGpuSeconds(now: number): number {
    return rollForward(this.tenantUsage(), now, this.halfLife()).value;
  }
}
