// Quota arithmetic in the Kueue model: per tenant and GPU type a nominal quota, optionally borrowing from
// (and lending to) other tenants of the same cohort within limits. Pure functions: the tenant's Durable
// Object applies them inside the transaction that schedules or releases a job.
import { gpuTypeKey } from "./job.ts";

export interface QuotaEntry {
  nominal: number;
  borrowingLimit?: number | null;
  lendingLimit?: number | null;
}

export interface QuotaSpec {
  /** Keys are GPU types (matched ignoring case) or "*" for every type without its own entry. */
  gpus: Record<string, QuotaEntry>;
  maxConcurrentJobs?: number | null;
  cohort?: string | null;
}

/** GPUs held per concrete GPU type key ("H100"; "*" for manual allocations without a type), plus jobs. */
export interface QuotaUsage {
  byType: Record<string, number>;
  jobs: number;
}

export const emptyUsage = (): QuotaUsage => ({ byType: {}, jobs: 0 });

/** Keys upper-cased once on write so lookups are exact. */
export function normalizeQuota(q: QuotaSpec): QuotaSpec {
  const gpus: Record<string, QuotaEntry> = {};
  for (const [k, v] of Object.entries(q.gpus)) gpus[gpuTypeKey(k === "*" ? null : k)] = v;
  return { gpus, maxConcurrentJobs: q.maxConcurrentJobs ?? null, cohort: q.cohort ?? null };
}

/** Which quota bucket a concrete GPU type draws from; null = this tenant has no quota for that type. */
export function bucketFor(quota: QuotaSpec, typeKey: string): string | null {
  if (quota.gpus[typeKey]) return typeKey;
  return quota.gpus["*"] ? "*" : null;
}

export function bucketUsage(quota: QuotaSpec, usage: QuotaUsage, bucket: string): number {
  let n = 0;
  for (const [t, g] of Object.entries(usage.byType)) if (bucketFor(quota, t) === bucket) n += g;
  return n;
}

export const totalGpus = (u: QuotaUsage) => Object.values(u.byType).reduce((a, b) => a + b, 0);

/** The most this tenant may ever hold in a bucket: nominal, plus its borrowing limit when in a cohort. */
export function ceiling(quota: QuotaSpec, bucket: string): number {
  const e = quota.gpus[bucket];
  if (!e) return 0;
  if (!quota.cohort) return e.nominal;
  return e.nominal + (e.borrowingLimit ?? Number.POSITIVE_INFINITY);
}

export type QuotaVerdict =
  | { fits: true; borrowing: number }
  | { fits: false; reason: string; code: "NoQuotaForType" | "OverQuota" | "MaxConcurrentJobs" };

/**
 * Whether `gpus` more GPUs of `typeKey` (and one more job when `jobs` is 1) fit the tenant's own limits.
 * At exactly the limit it fits; one more does not. `quota` null means no quota is set: unlimited.
 */
export function checkOwn(
  quota: QuotaSpec | null,
  usage: QuotaUsage,
  typeKey: string,
  gpus: number,
  jobs = 1,
): QuotaVerdict {
  if (!quota) return { fits: true, borrowing: 0 };
  if (quota.maxConcurrentJobs != null && usage.jobs + jobs > quota.maxConcurrentJobs) {
    return {
      fits: false,
      code: "MaxConcurrentJobs",
      reason: `${usage.jobs} of maxConcurrentJobs ${quota.maxConcurrentJobs} in use`,
    };
  }
  const bucket = bucketFor(quota, typeKey);
  if (!bucket) {
    const label = typeKey === "*" ? "GPUs of any type" : `${typeKey} GPUs`;
    return { fits: false, code: "NoQuotaForType", reason: `no quota for ${label}` };
  }
  const used = bucketUsage(quota, usage, bucket);
  const nominal = quota.gpus[bucket]!.nominal;
  const max = ceiling(quota, bucket);
  if (used + gpus > max) {
    const label = bucket === "*" ? "GPUs" : `${bucket} GPUs`;
    return {
      fits: false,
      code: "OverQuota",
      reason: `needs ${gpus} ${label}, ${used} of ${max === nominal ? `quota ${nominal}` : `limit ${max} (nominal ${nominal} + borrowing)`} in use`,
    };
  }
  return { fits: true, borrowing: Math.max(0, used + gpus - nominal) - Math.max(0, used - nominal) };
}

export interface CohortMember {
  tenantId: string;
  quota: QuotaSpec;
  usage: QuotaUsage;
}

/**
 * GPUs `tenantId` may still borrow in `bucket` from the rest of its cohort: what the others leave unused of
 * their nominal quota, each capped by its lendingLimit, minus everything already borrowed in the cohort —
 * by the other borrowers and by this tenant itself.
 */
export function borrowable(members: CohortMember[], tenantId: string, bucket: string): number {
  let lendable = 0;
  let borrowed = 0;
  for (const m of members) {
    const e = m.quota.gpus[bucket];
    if (!e) continue;
    const used = bucketUsage(m.quota, m.usage, bucket);
    borrowed += Math.max(0, used - e.nominal);
    if (m.tenantId === tenantId) continue;
    const lendCap = e.lendingLimit ?? e.nominal;
    lendable += Math.min(lendCap, Math.max(0, e.nominal - used));
  }
  return Math.max(0, lendable - borrowed);
}

export function validateQuota(q: QuotaSpec): string[] {
  const errs: string[] = [];
  for (const [k, e] of Object.entries(q.gpus)) {
    if (!q.cohort && e.borrowingLimit != null) {
      errs.push(
        `gpus.${k}.borrowingLimit needs a cohort: a tenant outside a cohort has nobody to borrow from`,
      );
    }
    if (e.lendingLimit != null && e.lendingLimit > e.nominal) {
      errs.push(`gpus.${k}.lendingLimit (${e.lendingLimit}) cannot exceed nominal (${e.nominal})`);
    }
  }
  return errs;
}
