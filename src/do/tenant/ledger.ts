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

export class Ledger {
  constructor(
    private sql: SqlStorage,
    private meta: Meta,
    private halfLife: () => number,
  ) {}

  /** GPUs given back since takeGivenBack() was last called: the release hint's content. */
  private given: QuotaUsage = emptyUsage();

  take(typeKey: string, typeName: string, gpus: number): void {
    this.sql.exec(
      `INSERT INTO holdings (type_key, type_name, gpus, jobs) VALUES (?, ?, ?, 1)
       ON CONFLICT (type_key) DO UPDATE SET gpus = gpus + excluded.gpus, jobs = jobs + 1`,
      typeKey,
      typeName,
      gpus,
    );
  }

  give(typeKey: string, gpus: number): void {
    this.sql.exec("UPDATE holdings SET gpus = gpus - ?, jobs = jobs - 1 WHERE type_key = ?", gpus, typeKey);
    this.sql.exec("DELETE FROM holdings WHERE gpus <= 0 AND jobs <= 0");
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
    for (const h of all<{ type_key: string; gpus: number; jobs: number }>(
      this.sql,
      "SELECT type_key, gpus, jobs FROM holdings",
    )) {
      u.byType[h.type_key] = (u.byType[h.type_key] ?? 0) + h.gpus;
      u.jobs += h.jobs;
    }
    for (const a of all<{ type_key: string; g: number }>(
      this.sql,
      "SELECT type_key, sum(gpus) AS g FROM allocations GROUP BY type_key",
    )) {
      u.byType[a.type_key] = (u.byType[a.type_key] ?? 0) + a.g;
    }
    return u;
  }

  /** Display names of held types ("H100"), for GET /v1/quota. */
  typeNames(): Record<string, string> {
    const m: Record<string, string> = {};
    for (const h of all<{ type_key: string; type_name: string }>(
      this.sql,
      "SELECT type_key, type_name FROM holdings",
    ))
      m[h.type_key] = h.type_name;
    return m;
  }

  allocations(): AllocationRow[] {
    return all<AllocationRow>(this.sql, "SELECT * FROM allocations ORDER BY created_at");
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
    const r = all<{ value: number; rate: number; at: number }>(
      this.sql,
      "SELECT value, rate, at FROM user_usage WHERE user = ?",
      user,
    )[0];
    return r ?? { value: 0, rate: 0, at: Date.now() };
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
    this.sql.exec(
      `INSERT INTO user_usage (user, value, rate, at) VALUES (?, ?, ?, ?)
       ON CONFLICT (user) DO UPDATE SET value = excluded.value, rate = excluded.rate, at = excluded.at`,
      user,
      nu.value,
      nu.rate,
      nu.at,
    );
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
