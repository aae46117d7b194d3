// Per-tenant token buckets, in the tenant's object memory. Limits come from the catalog (admin-set); with
// none set, nothing is limited. Buckets start full after an eviction, which errs on the side of the tenant.
import { type Bucket, take } from "../../domain/token-bucket.ts";
import { fail, type Result } from "../../errors.ts";
import type { RateLimits } from "./catalog.ts";

export class RateLimiter {
  private buckets = new Map<string, Bucket>();

  check(limits: RateLimits | null, kind: "submit" | "read", cost = 1): Result<Record<never, never>> {
    const rate = kind === "submit" ? limits?.submitPerSecond : limits?.readPerSecond;
    if (!rate) return { ok: true };
    const burst =
      (kind === "submit" ? limits?.submitBurst : limits?.readBurst) ?? Math.max(1, Math.ceil(rate));
    // An array of N tasks costs N submissions, but never more than a full bucket (it could never pass).
    const r = take(this.buckets.get(kind), { rate, burst }, Date.now(), Math.min(cost, burst));
    this.buckets.set(kind, r.bucket);
    if (r.ok) return { ok: true };
    return fail(
      "RateLimited",
      `${kind} rate limit of ${rate}/s exceeded; retry after ${r.retryAfterSeconds}s`,
      {
        retryAfterSeconds: r.retryAfterSeconds,
      },
    );
  }
}
