// What the tenant object's modules share. The Durable Object class builds one of these and the modules
// (submit, placement, worker updates, explain, summary) are plain functions over it.
import { emptyHistogram, type Histogram } from "../../domain/histogram.ts";
import { type Config, config, type Env } from "../../env.ts";
import { Mailbox } from "../../lib/mailbox.ts";
import { Outbox } from "../../lib/outbox.ts";
import { Meta, together, tx } from "../../lib/sql.ts";
import { CatalogCache } from "./catalog.ts";
import { JobStore } from "./jobs.ts";
import { Ledger } from "./ledger.ts";

export interface TenantCtx {
  sql: SqlStorage;
  /** A SQLite transaction (ctx.storage.transactionSync that also keeps the settings cache right). */
  tx<T>(fn: () => T): T;
  meta: Meta;
  jobs: JobStore;
  ledger: Ledger;
  outbox: Outbox;
  mailbox: Mailbox;
  catalog: CatalogCache;
  env: Env;
  cfg: Config;
  tenantId: string;
  /** Demand (ready jobs or held GPUs) changed: the scheduler must hear about it soon. */
  demandChanged(): void;
  /** Latency histograms: submit as clients see it, and queue wait until scheduled. */
  stats: { submit: Histogram; wait: Histogram };
}

export const fleetTarget = (shard: string) => `fleet:${shard}`;

/**
 * The tenant object's parts over its storage (schema already migrated). What a transaction gathers (job
 * counts, events, quota ledger rows, outbox items) is written once, at its end.
 */
export function buildTenantCtx(
  storage: DurableObjectStorage,
  env: Env,
  tenantId: () => string,
  demandChanged: () => void,
): TenantCtx {
  const sql = storage.sql;
  const meta = new Meta(sql);
  const outbox = new Outbox(sql);
  const cfg = config(env);
  const ledger = new Ledger(sql, meta, () => cfg.halfLifeSeconds);
  const jobs = new JobStore(sql, meta, outbox, ledger, tenantId);
  outbox.resolveJobs = (ids) => jobs.records(ids);
  const batching = together(jobs, ledger, outbox);
  return {
    sql,
    tx: (fn) => tx(storage, meta, fn, batching),
    meta,
    jobs,
    ledger,
    outbox,
    mailbox: new Mailbox(sql),
    catalog: new CatalogCache(sql, meta),
    env,
    cfg,
    get tenantId() {
      return tenantId();
    },
    demandChanged,
    stats: meta.json<TenantCtx["stats"]>("stats") ?? { submit: emptyHistogram(), wait: emptyHistogram() },
  };
}
