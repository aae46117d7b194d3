// Inside workerd: fill a real TenantQueue (through the public API: array submissions, 5 shapes × users ×
// priorities) with 10k and then 100k queued jobs, and time the scheduler's call into it — claim(), which
// picks the concrete job for each placement (priority, then the user with the least decayed usage, then
// submit order) and commits the lease, quota and event in one transaction. Batches of 256 placements, as
// the scheduler sends them; each batch is then unclaimed (untimed) so the backlog stays the same size.
// Prints one line `BENCH_CLAIMS {json}` for bench/suites/placement.ts.
import { env, SELF } from "cloudflare:test";
import { it } from "vitest";
import { CapacityIndex } from "../../src/domain/capacity.ts";
import { planPlacements, type TenantDemand } from "../../src/domain/fairshare.ts";
import { BENCH_ADMIN_TOKEN } from "./token.ts";

/** The TenantQueue RPC methods used here (src/do/tenant-queue.ts; its types need the Workers runtime). */
interface TenantRpc {
  claim(items: ClaimItem[]): Promise<{
    results: { placementId: string; assignment: { jobId: string; lease: number } | null; reason?: string }[];
  }>;
  unclaim(items: { jobId: string; lease: number; reason: string }[]): Promise<void>;
  flushOutbox(): Promise<{ flushed: number; pending: number }>;
}

interface ClaimItem {
  placementId: string;
  shape: string;
  workerId: string;
  shard: string;
  typeName: string;
  indices: number[];
}

const GPUS = [1, 2, 4, 8];
const TYPES = ["H100", "A100"];
const PRIOS = ["low", "normal", "high"] as const;
const USERS = 5;
const ARRAY = 1000;
const BATCH = 256;
const BATCHES = 24;

async function api<T>(method: string, path: string, token: string, body?: unknown): Promise<T> {
  const r = await SELF.fetch(`https://gantry.bench${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path} → ${r.status}: ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : null) as T;
}

/** The i-th array submission's shape: every (gpus, type) pair, priorities and users rotate. */
const shapeOf = (i: number) => ({
  gpus: GPUS[i % GPUS.length]!,
  gpuType: TYPES[Math.floor(i / GPUS.length) % TYPES.length]!,
  priority: PRIOS[i % PRIOS.length]!,
  user: `u${i % USERS}`,
});

async function fill(tenant: string, jobs: number) {
  await api("POST", "/v1/tenants", BENCH_ADMIN_TOKEN, { id: tenant });
  const { key } = await api<{ key: string }>("POST", `/v1/tenants/${tenant}/keys`, BENCH_ADMIN_TOKEN, {
    name: "alice",
    role: "member",
  });
  await api("PUT", `/v1/tenants/${tenant}/quota`, BENCH_ADMIN_TOKEN, {
    gpus: { "*": { nominal: 1_000_000 } },
  });
  const t0 = Date.now();
  const counts = new Map<string, { gpus: number; typeKey: string; priority: number; count: number }>();
  for (let i = 0; i < jobs / ARRAY; i++) {
    const s = shapeOf(i);
    await api("POST", "/v1/jobs", key, {
      name: `fill-${i}`,
      command: ["true"],
      gpus: s.gpus,
      gpuType: s.gpuType,
      priority: s.priority,
      user: s.user,
      array: { size: ARRAY },
    });
    const k = `${s.gpus}x${s.gpuType}|${s.priority}`;
    const c = counts.get(k) ?? {
      gpus: s.gpus,
      typeKey: s.gpuType,
      priority: PRIOS.indexOf(s.priority),
      count: 0,
    };
    c.count += ARRAY;
    counts.set(k, c);
  }
  const fillMs = Date.now() - t0;
  // Let the outbox reach Postgres first, so the timed claims do not share the object with a big flush.
  const stub = env.TENANT_QUEUE.getByName(tenant) as TenantRpc;
  const t1 = Date.now();
  for (;;) {
    const r = await stub.flushOutbox();
    if (r.pending === 0) break;
  }
  return { stub, counts, fillMs, flushMs: Date.now() - t1 };
}

/** Placements of the tenant's own shapes onto 1,000 8-GPU workers: realistic claim items. */
function claimItems(
  tenant: string,
  counts: Map<string, { gpus: number; typeKey: string; priority: number; count: number }>,
) {
  const capacity = new CapacityIndex();
  for (let w = 0; w < 1000; w++) {
    const type = TYPES[w % TYPES.length]!;
    capacity.upsert({
      workerId: `w-${String(w % 16).padStart(2, "0")}-bench${w}`,
      shard: `shard-${String(w % 16).padStart(2, "0")}`,
      poolId: "bench",
      gpus: Array.from({ length: 8 }, (_, i) => ({ index: i, type, typeKey: type })),
      free: [0, 1, 2, 3, 4, 5, 6, 7],
      schedulable: true,
      version: 1,
    });
  }
  const demand: TenantDemand = {
    tenantId: tenant,
    weight: 1,
    quota: null,
    usage: { byType: {}, jobs: 0 },
    held: 0,
    avgUsage: 0,
    shapes: [...counts.entries()].map(([k, c]) => ({
      shape: k.split("|")[0]!,
      gpus: c.gpus,
      typeKey: c.typeKey,
      priority: c.priority,
      count: c.count,
      oldestAt: 0,
    })),
  };
  return planPlacements([demand], capacity, BATCH, () => []).map(
    (p, i): ClaimItem => ({
      placementId: `p${i}`,
      shape: p.shape,
      workerId: p.block.workerId,
      shard: p.block.shard,
      typeName: p.block.typeName,
      indices: p.indices,
    }),
  );
}

/** One timed claim of `items` (then an untimed unclaim and outbox flush); µs per placement. */
async function timedClaim(stub: TenantRpc, items: ClaimItem[]): Promise<{ micros: number; failed: number }> {
  // Time only advances across I/O inside workerd, so the RPC round trip brackets the measurement.
  const t0 = performance.now();
  const { results } = await stub.claim(items);
  const ms = performance.now() - t0;
  const won = results.filter((r) => r.assignment);
  await stub.unclaim(
    won.map((r) => ({ jobId: r.assignment!.jobId, lease: r.assignment!.lease, reason: "bench" })),
  );
  // Flush what claim + unclaim wrote to the outbox (untimed): otherwise the object's alarm flushes it
  // to Postgres during the next timed claim, and the figure measures the overlap, not the claim.
  while ((await stub.flushOutbox()).pending > 0);
  return { micros: (ms * 1000) / items.length, failed: results.length - won.length };
}

it("claims against 10k and 100k queued jobs", async () => {
  const sizes = [10_000, 100_000];
  const runs = [];
  for (const jobs of sizes) {
    const filled = await fill(`claims-${jobs}`, jobs);
    runs.push({
      jobs,
      ...filled,
      items: claimItems(`claims-${jobs}`, filled.counts),
      micros: [] as number[],
      failed: 0,
    });
  }
  // Paired: the two tenants' claims alternate, so whatever else the machine (or the runtime) does at a
  // given moment weighs on both sizes alike; batch 0 of each warms its object up.
  for (let b = 0; b < BATCHES + 1; b++) {
    for (const r of b % 2 === 0 ? runs : [...runs].reverse()) {
      const { micros, failed } = await timedClaim(r.stub, r.items);
      r.failed += failed;
      if (b > 0) r.micros.push(micros);
    }
  }
  const out = runs.map((r) => {
    const sorted = [...r.micros].sort((a, b) => a - b);
    return {
      jobs: r.jobs,
      batch: r.items.length,
      batches: BATCHES,
      failed: r.failed,
      fillMs: r.fillMs,
      flushMs: r.flushMs,
      perClaimMicrosMedian: sorted[Math.floor(sorted.length / 2)],
      perClaimMicros: sorted,
    };
  });
  console.log(`BENCH_CLAIMS ${JSON.stringify(out)}`);
});
