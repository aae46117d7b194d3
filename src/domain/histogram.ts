// Cumulative latency histograms in Prometheus' shape (le buckets, sum, count), kept as plain data so they
// travel inside demand summaries and stats calls and merge by adding.
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];

export interface Histogram {
  /** counts[i] = observations ≤ LATENCY_BUCKETS[i] (not cumulative across buckets); last = +Inf only. */
  counts: number[];
  sum: number;
  count: number;
}

export const emptyHistogram = (): Histogram => ({
  counts: new Array(LATENCY_BUCKETS.length + 1).fill(0),
  sum: 0,
  count: 0,
});

export function observe(h: Histogram, seconds: number): void {
  let i = LATENCY_BUCKETS.findIndex((b) => seconds <= b);
  if (i < 0) i = LATENCY_BUCKETS.length;
  h.counts[i] = (h.counts[i] ?? 0) + 1;
  h.sum += seconds;
  h.count++;
}

export function merge(into: Histogram, h: Histogram): Histogram {
  for (let i = 0; i < into.counts.length; i++) into.counts[i] = (into.counts[i] ?? 0) + (h.counts[i] ?? 0);
  into.sum += h.sum;
  into.count += h.count;
  return into;
}

/** Prometheus text lines for one histogram (cumulative le buckets). */
export function exposition(name: string, labels: Record<string, string>, h: Histogram): string[] {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const fmt = (extra: string[]) => (extra.length ? `{${extra.join(",")}}` : "");
  const out: string[] = [];
  let acc = 0;
  LATENCY_BUCKETS.forEach((b, i) => {
    acc += h.counts[i] ?? 0;
    out.push(`${name}_bucket${fmt([...l, `le="${b}"`])} ${acc}`);
  });
  out.push(`${name}_bucket${fmt([...l, 'le="+Inf"'])} ${h.count}`);
  out.push(`${name}_sum${fmt(l)} ${Number(h.sum.toFixed(6))}`);
  out.push(`${name}_count${fmt(l)} ${h.count}`);
  return out;
}
