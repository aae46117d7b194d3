// Bindings and configuration of the one Worker. Durable Object namespaces are typed by their classes so
// stubs expose the RPC methods.
import type { FleetShard } from "./do/fleet-shard.ts";
import type { Scheduler } from "./do/scheduler.ts";
import type { TenantQueue } from "./do/tenant-queue.ts";

export interface Env {
  TENANT_QUEUE: DurableObjectNamespace<TenantQueue>;
  FLEET: DurableObjectNamespace<FleetShard>;
  SCHEDULER: DurableObjectNamespace<Scheduler>;
  /** Secret. Platform admin bearer token. */
  ADMIN_TOKEN: string;
  /** Secret. Postgres connection string (Neon in production). */
  DATABASE_URL: string;
  /** Local development only: host:port of the WebSocket→TCP proxy in front of a plain Postgres. */
  PG_WS_PROXY?: string;
  HEARTBEAT_SECONDS?: string;
  LEASE_TTL_SECONDS?: string;
  FLEET_SHARDS?: string;
  USAGE_HALF_LIFE_SECONDS?: string;
  /** Comma-separated allowed origins for CORS ("*" for any); unset = no CORS headers. */
  CORS_ORIGINS?: string;
  /** Debounce of the scheduling pass and of demand updates, ms. */
  SCHEDULE_DEBOUNCE_MS?: string;
  /** Delay before an outbox batch is flushed to Postgres, ms. */
  OUTBOX_FLUSH_MS?: string;
  JOB_RETENTION_HOURS?: string;
  /** "0" turns off the per-request JSON access log (load tests). */
  LOG_REQUESTS?: string;
}

export { type Config, ConfigError, config } from "./config.ts";
