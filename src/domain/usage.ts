// GPU-seconds as a time series: [from, to) cut into buckets of `step`, each with its own rows by user and
// GPU type. Finished holdings are summed by Postgres per bucket; running ones (the tenant object's live
// rows) are cut here, so a bucket that is still going fills in as the job runs.

export interface UsageRow {
  user: string;
  gpuType: string;
  gpuSeconds: number;
  jobs: number;
}

export interface UsageBucket {
  from: number;
  to: number;
  totalGpuSeconds: number;
  items: UsageRow[];
}

/** A running holding: `gpus` GPUs of `gpuType` held by `user` since `since` (ms). */
export interface LiveHolding {
  user: string;
  gpuType: string;
  gpus: number;
  since: number;
}

/** The most buckets one call may ask for: a 500-bucket series is already more bars than a chart shows. */
export const MAX_BUCKETS = 500;
export const MIN_STEP_SECONDS = 60;

/** Bucket bounds (ms): whole steps from `from`; the last one ends at `to`, so it may be shorter. */
export function bucketBounds(from: number, to: number, stepMs: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = from; a < to; a += stepMs) out.push([a, Math.min(a + stepMs, to)]);
  return out;
}

export function bucketCount(from: number, to: number, stepMs: number): number {
  return Math.ceil((to - from) / stepMs);
}

const round = (s: number) => Math.round(s * 1000) / 1000;

/**
 * Buckets from Postgres's per-bucket rows (index into `bounds`) plus the live holdings cut at each bucket's
 * edges and at `now`. Rows within a bucket are sorted by GPU-seconds, largest first.
 */
export function usageBuckets(
  bounds: [number, number][],
  finished: (UsageRow & { bucket: number })[],
  live: LiveHolding[],
  now: number,
): UsageBucket[] {
  const acc = bounds.map(() => new Map<string, UsageRow>());
  const add = (i: number, r: UsageRow) => {
    const k = `${r.user}\u0000${r.gpuType}`;
    const cur = acc[i]!.get(k);
    if (cur) {
      cur.gpuSeconds += r.gpuSeconds;
      cur.jobs += r.jobs;
    } else acc[i]!.set(k, { ...r });
  };
  for (const r of finished) {
    if (r.bucket >= 0 && r.bucket < bounds.length)
      add(r.bucket, { user: r.user, gpuType: r.gpuType, gpuSeconds: Number(r.gpuSeconds), jobs: r.jobs });
  }
  // Buckets are regular: a holding's first bucket is found by arithmetic, not by scanning them all.
  const origin = bounds[0]?.[0] ?? 0;
  const step = bounds.length > 0 ? bounds[0]![1] - origin : 1;
  for (const h of live) {
    for (let i = Math.max(0, Math.floor((h.since - origin) / step)); i < bounds.length; i++) {
      const [a, b] = bounds[i]!;
      if (a >= now) break;
      const start = Math.max(h.since, a);
      const end = Math.min(now, b);
      if (end > start)
        add(i, { user: h.user, gpuType: h.gpuType, gpuSeconds: (h.gpus * (end - start)) / 1000, jobs: 1 });
    }
  }
  return bounds.map(([from, to], i) => {
    const items = [...acc[i]!.values()]
      .map((r) => ({ ...r, gpuSeconds: round(r.gpuSeconds) }))
      .sort((x, y) => y.gpuSeconds - x.gpuSeconds || x.user.localeCompare(y.user));
    return { from, to, totalGpuSeconds: round(items.reduce((n, r) => n + r.gpuSeconds, 0)), items };
  });
}
