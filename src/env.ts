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
  /** "0" turns off the per-request JSON access log (load tests). */
  LOG_REQUESTS?: string;
}

export interface Config {
  heartbeatSeconds: number;
  leaseTtlSeconds: number;
  fleetShards: number;
  halfLifeSeconds: number;
  debounceMs: number;
  outboxFlushMs: number;
}

function positive(name: string, raw: string | undefined, dflt: number, integer = true): number {
  if (raw === undefined || raw === "") return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    // Refused, not silently replaced: a zero half-life or TTL would quietly break scheduling.
    throw new ConfigError(`${name} must be a positive ${integer ? "integer" : "number"}, got "${raw}"`);
  }
  return n;
}

export class ConfigError extends Error {}

let cached: { key: string; config: Config } | null = null;

export function config(env: Env): Config {
  const key = [
    env.HEARTBEAT_SECONDS,
    env.LEASE_TTL_SECONDS,
    env.FLEET_SHARDS,
    env.USAGE_HALF_LIFE_SECONDS,
    env.SCHEDULE_DEBOUNCE_MS,
    env.OUTBOX_FLUSH_MS,
  ].join("|");
  if (cached?.key === key) return cached.config;
  const c: Config = {
    heartbeatSeconds: positive("HEARTBEAT_SECONDS", env.HEARTBEAT_SECONDS, 10),
    leaseTtlSeconds: positive("LEASE_TTL_SECONDS", env.LEASE_TTL_SECONDS, 30),
    fleetShards: positive("FLEET_SHARDS", env.FLEET_SHARDS, 16),
    halfLifeSeconds: positive("USAGE_HALF_LIFE_SECONDS", env.USAGE_HALF_LIFE_SECONDS, 3600, false),
    debounceMs: positive("SCHEDULE_DEBOUNCE_MS", env.SCHEDULE_DEBOUNCE_MS, 10),
    outboxFlushMs: positive("OUTBOX_FLUSH_MS", env.OUTBOX_FLUSH_MS, 100),
  };
  cached = { key, config: c };
  return c;
}
