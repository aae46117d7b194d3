// What the tenant object's modules share. The Durable Object class builds one of these and the modules
// (submit, placement, worker updates, explain, summary) are plain functions over it.
import type { Histogram } from "../../domain/histogram.ts";
import type { Config, Env } from "../../env.ts";
import type { Mailbox } from "../../lib/mailbox.ts";
import type { Outbox } from "../../lib/outbox.ts";
import type { Meta } from "../../lib/sql.ts";
import type { CatalogCache } from "./catalog.ts";
import type { JobStore } from "./jobs.ts";
import type { Ledger } from "./ledger.ts";

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
