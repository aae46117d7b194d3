// What the scheduler answers about itself: capacity and competition for explain, and its demand table for
// GET /v1/scheduler and the metrics. Plain functions over its in-memory state, apart from its placement loop.
import type { CapacityIndex } from "../../domain/capacity.ts";
import { competition, readyByPriority } from "../../domain/competition.ts";
import { borrowable, type CohortMember } from "../../domain/quota.ts";
import type { DemandSummary } from "../tenant/summary.ts";

type TypeStats = ReturnType<CapacityIndex["stats"]> extends Map<string, infer V> ? V : never;

export function cohortMembers(demand: Iterable<DemandSummary>, cohort: string | null): CohortMember[] {
  if (!cohort) return [];
  return [...demand]
    .filter((d) => d.quota?.cohort === cohort)
    .map((d) => ({ tenantId: d.tenantId, quota: d.quota!, usage: d.usage }));
}

/** Capacity by GPU type and what this tenant could borrow, for explain. O(workers), on demand only. */
export function capacityInfo(
  capacity: CapacityIndex,
  demand: Map<string, DemandSummary>,
  tenantId: string,
  typeKey: string,
  ratePerMinute: Record<string, number>,
) {
  const types: Record<string, TypeStats> = {};
  for (const [k, v] of capacity.stats()) types[k] = v;
  const me = demand.get(tenantId);
  const borrowableByBucket: Record<string, number> = {};
  if (me?.quota?.cohort) {
    const members = cohortMembers(demand.values(), me.quota.cohort);
    for (const b of Object.keys(me.quota.gpus)) borrowableByBucket[b] = borrowable(members, tenantId, b);
  }
  return {
    types,
    borrowable: borrowableByBucket,
    workers: capacity.size,
    ratePerMinute,
    competition: competition(demand.values(), tenantId, typeKey),
  };
}

/** Each tenant's demand as the scheduler last heard it. */
export function demandView(demand: Iterable<DemandSummary>) {
  const all = [...demand];
  return {
    tenantsWithDemand: all.filter((d) => d.shapes.some((s) => s.count > 0)).length,
    demand: all.map((d) => ({
      tenantId: d.tenantId,
      held: d.held,
      avgUsage: d.avgUsage,
      weight: d.weight,
      ready: d.shapes.reduce((n, s) => n + s.count, 0),
      readyByPriority: readyByPriority(d),
      stats: d.stats ?? null,
    })),
  };
}
