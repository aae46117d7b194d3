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

/**
 * Object ids by name, per namespace. Deriving an id hashes the name, and every submit and report derives
 * one; an id (unlike a stub) belongs to no request, so the isolate keeps it. Bounded: a spray of names
 * cannot grow it without limit.
 */
const ids = new WeakMap<DurableObjectNamespace, Map<string, DurableObjectId>>();
const IDS_MAX = 10_000;

function byName(ns: DurableObjectNamespace, name: string): DurableObjectStub {
  let m = ids.get(ns);
  if (!m) {
    m = new Map();
    ids.set(ns, m);
  }
  let id = m.get(name);
  if (!id) {
    if (m.size >= IDS_MAX) m.clear();
    id = ns.idFromName(name);
    m.set(name, id);
  }
  return ns.get(id);
}

export const tenantStub = (env: Env, tenantId: string) =>
  byName(env.TENANT_QUEUE, tenantId) as unknown as Stub<TenantQueue>;

export const fleetStub = (env: Env, shard: string) => byName(env.FLEET, shard) as unknown as Stub<FleetShard>;

export const schedulerStub = (env: Env, domain = "global") =>
  byName(env.SCHEDULER, domain) as unknown as Stub<Scheduler>;

export const shardName = (i: number) => `shard-${String(i).padStart(2, "0")}`;

/** Worker ids look like `w-07-<random>`: the shard is part of the id, so it survives a change of FLEET_SHARDS. */
export function shardOfWorker(workerId: string): string | null {
  const m = /^w-(\d{2,3})-[a-z0-9]+$/.exec(workerId);
  return m ? shardName(Number(m[1])) : null;
}

export function allShards(env: Env): string[] {
  return Array.from({ length: config(env).fleetShards }, (_, i) => shardName(i));
}
