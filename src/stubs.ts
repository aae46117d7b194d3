// How the Worker and the objects find each other: one TenantQueue per tenant, FLEET_SHARDS fleet shards
// (a worker's id carries its shard), one scheduler per scheduling domain.
import type { FleetShard } from "./do/fleet-shard.ts";
import type { Scheduler } from "./do/scheduler.ts";
import type { TenantQueue } from "./do/tenant-queue.ts";
import { config, type Env } from "./env.ts";

/**
 * A stub typed by the class's async methods directly. The runtime's RPC stub types map every result type
 * recursively, which exhausts the compiler on our larger results; the methods here are the same calls.
 */
export type Stub<T> = {
  [K in keyof T as T[K] extends (...args: never[]) => Promise<unknown> ? K : never]: T[K];
};

export const tenantStub = (env: Env, tenantId: string) =>
  env.TENANT_QUEUE.getByName(tenantId) as unknown as Stub<TenantQueue>;

export const fleetStub = (env: Env, shard: string) =>
  env.FLEET.getByName(shard) as unknown as Stub<FleetShard>;

export const schedulerStub = (env: Env, domain = "global") =>
  env.SCHEDULER.getByName(domain) as unknown as Stub<Scheduler>;

export const shardName = (i: number) => `shard-${String(i).padStart(2, "0")}`;

/** Worker ids look like `w-07-<random>`: the shard is part of the id, so it survives a change of FLEET_SHARDS. */
export function shardOfWorker(workerId: string): string | null {
  const m = /^w-(\d{2,3})-[a-z0-9]+$/.exec(workerId);
  return m ? shardName(Number(m[1])) : null;
}

export function allShards(env: Env): string[] {
  return Array.from({ length: config(env).fleetShards }, (_, i) => shardName(i));
}
