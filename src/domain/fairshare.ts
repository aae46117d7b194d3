// Across tenants: weighted fair share of GPUs with decayed usage (PRODUCT.md §4).
//
// A tenant's standing is (GPUs it holds now + its exponentially weighted average GPUs over the recent past)
// divided by its weight. Both terms are in GPUs, so a tenant that has used nothing recently and holds
// nothing scores 0 and is served first however deep another tenant's backlog is, and tenants with deep
// queues converge to allocations proportional to their weights. Counting what a tenant holds *now* is the
// entry penalty that stops one pass from handing every free GPU to the same idle tenant (Kueue #5339).
//
// Tiers come first (Kueue): a placement inside the tenant's nominal quota beats one that borrows.
import type { Block, CapacityIndex } from "./capacity.ts";
import { borrowable, type CohortMember, checkOwn, type QuotaSpec, type QuotaUsage } from "./quota.ts";

export interface DemandShape {
  shape: string;
  gpus: number;
  typeKey: string; // "*" = any type
  priority: number; // 0 low … 2 high
  count: number; // ready jobs of this shape and priority
  oldestAt: number; // submit time of the oldest of them (ms)
}

export interface TenantDemand {
  tenantId: string;
  weight: number;
  quota: QuotaSpec | null;
  usage: QuotaUsage; // GPUs held by scheduled + running jobs and manual allocations
  held: number; // GPUs held now
  avgUsage: number; // decayed average GPUs (V/τ)
  shapes: DemandShape[];
}

export const standing = (t: Pick<TenantDemand, "held" | "avgUsage" | "weight">) =>
  (t.held + t.avgUsage) / Math.max(t.weight, 1e-9);

export interface Placement {
  tenantId: string;
  shape: string;
  priority: number;
  gpus: number;
  block: Block;
  indices: number[];
  borrowing: number;
}

interface Candidate {
  shape: DemandShape;
  block: Block;
  borrowing: number;
}

/** The highest-priority shape of `t` that fits a worker and the tenant's quota, and where it goes. */
function candidateFor(t: TenantDemand, capacity: CapacityIndex, cohorts: CohortLookup): Candidate | null {
  for (const s of t.shapes) {
    if (s.count <= 0) continue;
    const allow = (typeKey: string) => quotaAllows(t, typeKey, s.gpus, cohorts) !== null;
    const block = capacity.bestFit(s.gpus, s.typeKey, allow);
    if (!block) continue;
    const borrowing = quotaAllows(t, block.typeKey, s.gpus, cohorts);
    if (borrowing === null) continue;
    return { shape: s, block, borrowing };
  }
  return null;
}

/** null = does not fit; otherwise how many GPUs the placement would borrow from the cohort. */
function quotaAllows(t: TenantDemand, typeKey: string, gpus: number, cohorts: CohortLookup): number | null {
  const v = checkOwn(t.quota, t.usage, typeKey, gpus);
  if (!v.fits) return null;
  if (v.borrowing > 0) {
    const members = cohorts(t.quota?.cohort ?? null);
    const bucket = t.quota && (t.quota.gpus[typeKey] ? typeKey : "*");
    if (!bucket || borrowable(members, t.tenantId, bucket) < v.borrowing) return null;
  }
  return v.borrowing;
}

export type CohortLookup = (cohort: string | null) => CohortMember[];

/** Min-heap on (tier, standing, oldest). Keys only grow during a pass, so stale entries are re-pushed. */
class Heap<T> {
  private a: { k: number[]; v: T }[] = [];
  get size() {
    return this.a.length;
  }
  push(k: number[], v: T) {
    this.a.push({ k, v });
    let i = this.a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (cmp(this.a[p]!.k, this.a[i]!.k) <= 0) break;
      [this.a[p], this.a[i]] = [this.a[i]!, this.a[p]!];
      i = p;
    }
  }
  pop(): { k: number[]; v: T } | undefined {
    const top = this.a[0];
    const last = this.a.pop();
    if (this.a.length > 0 && last) {
      this.a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.a.length && cmp(this.a[l]!.k, this.a[m]!.k) < 0) m = l;
        if (r < this.a.length && cmp(this.a[r]!.k, this.a[m]!.k) < 0) m = r;
        if (m === i) break;
        [this.a[m], this.a[i]] = [this.a[i]!, this.a[m]!];
        i = m;
      }
    }
    return top;
  }
}

function cmp(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const keyOf = (t: TenantDemand, c: Candidate | null) => [
  c && c.borrowing > 0 ? 1 : 0,
  standing(t),
  c ? c.shape.oldestAt : Number.POSITIVE_INFINITY,
];

/**
 * Plan up to `limit` placements. Mutates `tenants` (held, usage, counts) and `capacity` (takes GPUs) as it
 * goes, so each decision sees the previous ones. Cost per placement: O(log tenants + shapes × free sizes).
 */
export function planPlacements(
  tenants: TenantDemand[],
  capacity: CapacityIndex,
  limit: number,
  cohorts: CohortLookup,
): Placement[] {
  const out: Placement[] = [];
  const heap = new Heap<TenantDemand>();
  for (const t of tenants) {
    t.shapes.sort((a, b) => b.priority - a.priority || a.oldestAt - b.oldestAt);
    if (t.shapes.some((s) => s.count > 0))
      heap.push(
        keyOf(t, null).map((x, i) => (i === 0 ? 0 : x)),
        t,
      );
  }
  while (out.length < limit && heap.size > 0) {
    const top = heap.pop()!;
    const t = top.v;
    const c = candidateFor(t, capacity, cohorts);
    if (!c) continue; // capacity only shrinks during a pass: this tenant is done for now
    const key = keyOf(t, c);
    if (cmp(key, top.k) > 0) {
      heap.push(key, t); // its real key is worse than the one it was queued with: let others go first
      continue;
    }
    const indices = capacity.take(c.block.key, c.shape.gpus);
    out.push({
      tenantId: t.tenantId,
      shape: c.shape.shape,
      priority: c.shape.priority,
      gpus: c.shape.gpus,
      block: c.block,
      indices,
      borrowing: c.borrowing,
    });
    c.shape.count--;
    t.held += c.shape.gpus;
    t.usage.byType[c.block.typeKey] = (t.usage.byType[c.block.typeKey] ?? 0) + c.shape.gpus;
    t.usage.jobs++;
    if (t.shapes.some((s) => s.count > 0)) heap.push(keyOf(t, candidateFor(t, capacity, cohorts)), t);
  }
  return out;
}
