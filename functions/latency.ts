// Submit latency as the client sees it (gateway + tenant object) can only be measured here: inside an
// object the clock does not move while code runs. Each isolate keeps the last observations per tenant
// and hands them to that tenant's object with its next submit, which adds them to its histogram.
const MAX_PENDING = 1000;
const pending = new Map<string, number[]>();

export function recordSubmitLatency(tenantId: string, seconds: number): void {
  let list = pending.get(tenantId);
  if (!list) {
    if (pending.size > 10_000) pending.clear();
    list = [];
    pending.set(tenantId, list);
  }
  if (list.length < MAX_PENDING) list.push(seconds);
}

export function takeSubmitLatencies(tenantId: string): number[] {
  const list = pending.get(tenantId);
  if (!list?.length) return [];
  pending.delete(tenantId);
  return list;
}
