// Token bucket: `rate` tokens per second, at most `burst` saved up. Pure so it is unit-tested in Node.
export interface Bucket {
  tokens: number;
  at: number; // ms
}

export interface BucketLimit {
  rate: number;
  burst: number;
}

/** Try to take `cost` tokens. On refusal, `retryAfterSeconds` says when enough will have accrued. */
export function take(
  b: Bucket | undefined,
  limit: BucketLimit,
  now: number,
  cost = 1,
): { ok: boolean; bucket: Bucket; retryAfterSeconds: number } {
  const start = b ?? { tokens: limit.burst, at: now };
  const tokens = Math.min(limit.burst, start.tokens + (Math.max(0, now - start.at) / 1000) * limit.rate);
  if (tokens >= cost) return { ok: true, bucket: { tokens: tokens - cost, at: now }, retryAfterSeconds: 0 };
  const wait = (cost - tokens) / limit.rate;
  return { ok: false, bucket: { tokens, at: now }, retryAfterSeconds: Math.max(1, Math.ceil(wait)) };
}
