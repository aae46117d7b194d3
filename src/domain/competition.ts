// What the scheduler tells `explain` about the rest of the queue: how many other tenants (and how many of
// their ready jobs) stand ahead for a GPU type, and how fast that type has been placed lately. Counts only;
// other tenants' names never leave the scheduler.

import { standing, type TenantDemand } from "./fairshare.ts";
import { priorityName } from "./job.ts";

type Demand = Pick<TenantDemand, "tenantId" | "held" | "avgUsage" | "weight" | "shapes">;

/** Tenants with ready jobs that could use `typeKey` ("*" = any) and a better standing than `tenantId`. */
export function competition(
  demand: Iterable<Demand>,
  tenantId: string,
  typeKey: string,
): { tenantsAhead: number; jobsAhead: number } {
  const all = [...demand];
  const me = all.find((d) => d.tenantId === tenantId);
  const mine = me ? standing(me) : 0;
  let tenantsAhead = 0;
  let jobsAhead = 0;
  for (const d of all) {
    if (d.tenantId === tenantId || standing(d) >= mine) continue;
    const n = d.shapes
      .filter((x) => typeKey === "*" || x.typeKey === "*" || x.typeKey === typeKey)
      .reduce((a, x) => a + x.count, 0);
    if (n > 0) {
      tenantsAhead++;
      jobsAhead += n;
    }
  }
  return { tenantsAhead, jobsAhead };
}

export interface PlacementMark {
  at: number;
  typeKey: string;
}

const RATE_WINDOW_MS = 10 * 60_000;
const MAX_MARKS = 20_000;

/** Drops placements older than the window (and all but the newest MAX_MARKS), in place order kept. */
export const recentMarks = (marks: PlacementMark[], now: number) =>
  marks.filter((r) => r.at > now - RATE_WINDOW_MS).slice(-MAX_MARKS);

/** Placements per minute by GPU type over `marks` (at least one minute of history is assumed). */
export function placementRates(marks: PlacementMark[], now: number): Record<string, number> {
  if (marks.length === 0) return {};
  const span = Math.max(60_000, now - marks[0]!.at);
  const out: Record<string, number> = {};
  for (const r of marks) out[r.typeKey] = (out[r.typeKey] ?? 0) + 1;
  for (const k of Object.keys(out)) out[k] = (out[k]! * 60_000) / span;
  return out;
}

/** Ready jobs by priority name, from a demand summary's shapes. */
export function readyByPriority(d: Pick<TenantDemand, "shapes">): Record<string, number> {
  const out: Record<string, number> = { low: 0, normal: 0, high: 0 };
  for (const s of d.shapes) out[priorityName(s.priority)] = (out[priorityName(s.priority)] ?? 0) + s.count;
  return out;
}
