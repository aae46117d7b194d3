// Configuration read from the Worker's variables, validated: a value that would quietly break scheduling
// (a zero half-life, a zero TTL) is refused rather than replaced. Pure, so it is unit-tested in Node.
export interface ConfigVars {
  HEARTBEAT_SECONDS?: string;
  LEASE_TTL_SECONDS?: string;
  FLEET_SHARDS?: string;
  USAGE_HALF_LIFE_SECONDS?: string;
  SCHEDULE_DEBOUNCE_MS?: string;
  OUTBOX_FLUSH_MS?: string;
  JOB_RETENTION_HOURS?: string;
}

export interface Config {
  heartbeatSeconds: number;
  leaseTtlSeconds: number;
  fleetShards: number;
  halfLifeSeconds: number;
  debounceMs: number;
  outboxFlushMs: number;
  /** How long a finished job stays in its tenant's object (reads of older ones go to Postgres). */
  retentionHours: number;
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

export function config(env: ConfigVars): Config {
  const key = [
    env.HEARTBEAT_SECONDS,
    env.LEASE_TTL_SECONDS,
    env.FLEET_SHARDS,
    env.USAGE_HALF_LIFE_SECONDS,
    env.SCHEDULE_DEBOUNCE_MS,
    env.OUTBOX_FLUSH_MS,
    env.JOB_RETENTION_HOURS,
  ].join("|");
  if (cached?.key === key) return cached.config;
  const c: Config = {
    heartbeatSeconds: positive("HEARTBEAT_SECONDS", env.HEARTBEAT_SECONDS, 10),
    leaseTtlSeconds: positive("LEASE_TTL_SECONDS", env.LEASE_TTL_SECONDS, 30),
    fleetShards: positive("FLEET_SHARDS", env.FLEET_SHARDS, 16),
    halfLifeSeconds: positive("USAGE_HALF_LIFE_SECONDS", env.USAGE_HALF_LIFE_SECONDS, 3600, false),
    debounceMs: positive("SCHEDULE_DEBOUNCE_MS", env.SCHEDULE_DEBOUNCE_MS, 10),
    outboxFlushMs: positive("OUTBOX_FLUSH_MS", env.OUTBOX_FLUSH_MS, 100),
    retentionHours: positive("JOB_RETENTION_HOURS", env.JOB_RETENTION_HOURS, 168, false),
  };
  cached = { key, config: c };
  return c;
}
