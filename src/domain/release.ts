// GPUs a tenant gave back when its jobs ended, told to the scheduler together with the capacity they
// freed. The fleet shard frees a lease's GPUs only after the tenant's transition and pushes that capacity at
// once, while the tenant's own summary (with the lower `held`) follows after its debounce: a pass in
// between would see the GPUs free but still counted against the tenant, and serve its competitors first.
// A release is a delta stamped with the tenant's demand revision after it, so it is applied only to a
// summary older than that revision, and replayed onto an older summary that arrives later.
import type { QuotaUsage } from "./quota.ts";

export interface Release {
  tenantId: string;
  /** The tenant's demand revision once these GPUs were given back. */
  rev: number;
  /** GPUs given back by quota bucket (type key). */
  byType: Record<string, number>;
  jobs: number;
}

/** What `after` holds less than `before` (only decreases count), or null when nothing was given back. */
export function released(
  tenantId: string,
  rev: number,
  before: QuotaUsage,
  after: QuotaUsage,
): Release | null {
  const byType: Record<string, number> = {};
  let any = false;
  for (const [k, n] of Object.entries(before.byType)) {
    const d = n - (after.byType[k] ?? 0);
    if (d > 0) {
      byType[k] = d;
      any = true;
    }
  }
  const jobs = Math.max(0, before.jobs - after.jobs);
  return any || jobs > 0 ? { tenantId, rev, byType, jobs } : null;
}

/** The scheduler's view of a tenant that a release adjusts (its demand summary). */
export interface HeldView {
  rev: number;
  held: number;
  usage: QuotaUsage;
}

/** Takes the release off `d` unless d's revision already includes it. Returns whether it applied. */
export function applyRelease(d: HeldView, r: Release): boolean {
  if (d.rev >= r.rev) return false;
  for (const [k, n] of Object.entries(r.byType)) {
    d.usage.byType[k] = Math.max(0, (d.usage.byType[k] ?? 0) - n);
    d.held = Math.max(0, d.held - n);
  }
  d.usage.jobs = Math.max(0, d.usage.jobs - r.jobs);
  return true;
}

/** Releases not yet included in a summary of revision `rev` (the rest are dropped). */
export const pendingAfter = (releases: Release[], rev: number) => releases.filter((r) => r.rev > rev);
