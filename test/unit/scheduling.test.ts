// Pure scheduling logic in plain Node: placement, fair share, decay, quotas, the state machine, config.
import { describe, expect, it } from "vitest";
import { config } from "../../src/config.ts";
import { CapacityIndex, type WorkerCapacity } from "../../src/domain/capacity.ts";
import { averageGpus, rollForward, validateHalfLife, withRate } from "../../src/domain/decay.ts";
import { planPlacements, standing, type TenantDemand } from "../../src/domain/fairshare.ts";
import { canTransition, retryBackoffMs } from "../../src/domain/job.ts";
import { borrowable, type CohortMember, checkOwn, type QuotaSpec } from "../../src/domain/quota.ts";
import { take } from "../../src/domain/token-bucket.ts";

const worker = (id: string, n: number, type = "H100", free?: number[]): WorkerCapacity => ({
  workerId: id,
  shard: "shard-00",
  poolId: "p",
  gpus: Array.from({ length: n }, (_, i) => ({ index: i, type, typeKey: type.toUpperCase() })),
  free: free ?? Array.from({ length: n }, (_, i) => i),
  schedulable: true,
  version: 1,
});

const demand = (
  id: string,
  weight: number,
  count: number,
  extra: Partial<TenantDemand> = {},
): TenantDemand => ({
  tenantId: id,
  weight,
  quota: null,
  usage: { byType: {}, jobs: 0 },
  held: 0,
  avgUsage: 0,
  shapes: [{ shape: "1xH100", gpus: 1, typeKey: "H100", priority: 1, count, oldestAt: 0 }],
  ...extra,
});

describe("capacity index", () => {
  it("best fit picks the block that leaves the fewest GPUs, with the lowest indices", () => {
    const c = new CapacityIndex();
    c.upsert(worker("big", 8));
    c.upsert(worker("mid", 4, "H100", [1, 2, 3]));
    c.upsert(worker("small", 2));
    expect(c.bestFit(2, "H100")?.workerId).toBe("small");
    expect(c.bestFit(3, "H100")?.workerId).toBe("mid");
    expect(c.take("mid/H100", 3)).toEqual([1, 2, 3]);
    expect(c.bestFit(3, "H100")?.workerId).toBe("big");
    expect(c.bestFit(9, "H100")).toBeNull();
    expect(c.bestFit(1, "A100")).toBeNull();
    expect(c.bestFit(1, "*")?.workerId).toBe("small");
  });

  it("unschedulable workers and other types are never chosen; give() returns GPUs", () => {
    const c = new CapacityIndex();
    c.upsert({ ...worker("drain", 4), schedulable: false });
    c.upsert(worker("a100", 4, "A100"));
    expect(c.bestFit(1, "H100")).toBeNull();
    expect(c.bestFit(1, "*")?.workerId).toBe("a100");
    const got = c.take("a100/A100", 4);
    expect(c.bestFit(1, "*")).toBeNull();
    c.give("a100/A100", got);
    expect(c.bestFit(4, "A100")?.workerId).toBe("a100");
    expect(c.stats().get("A100")).toMatchObject({ workers: 1, largestBlock: 4, largestFree: 4 });
  });
});

describe("fair share", () => {
  it("a tenant that has used nothing goes first, however deep the other backlog", () => {
    const c = new CapacityIndex();
    c.upsert(worker("w", 1));
    const a = demand("a", 1, 1000, { avgUsage: 0.5 });
    const b = demand("b", 1, 1);
    const [p] = planPlacements([a, b], c, 10, () => []);
    expect(p?.tenantId).toBe("b");
  });

  it("deep queues split the GPUs by weight in one pass", () => {
    const c = new CapacityIndex();
    for (let i = 0; i < 8; i++) c.upsert(worker(`w${i}`, 1));
    const light = demand("light", 1, 100);
    const heavy = demand("heavy", 3, 100);
    const plan = planPlacements([light, heavy], c, 100, () => []);
    expect(plan).toHaveLength(8);
    expect(plan.filter((p) => p.tenantId === "heavy")).toHaveLength(6);
    expect(plan.filter((p) => p.tenantId === "light")).toHaveLength(2);
    expect(standing(heavy)).toBeCloseTo(standing(light), 5);
  });

  it("higher priority shapes of a tenant go first; a shape that fits nowhere does not block others", () => {
    const c = new CapacityIndex();
    c.upsert(worker("w", 2));
    const t = demand("t", 1, 0, {
      shapes: [
        { shape: "8xH100", gpus: 8, typeKey: "H100", priority: 2, count: 1, oldestAt: 0 },
        { shape: "1xH100", gpus: 1, typeKey: "H100", priority: 0, count: 5, oldestAt: 0 },
        { shape: "2xH100", gpus: 2, typeKey: "H100", priority: 1, count: 1, oldestAt: 0 },
      ],
    });
    const plan = planPlacements([t], c, 10, () => []);
    expect(plan.map((p) => p.shape)).toEqual(["2xH100"]);
  });

  it("inside nominal quota beats borrowing; borrowing stops at what the cohort lends", () => {
    const c = new CapacityIndex();
    c.upsert(worker("w", 8));
    const quotaA: QuotaSpec = { gpus: { H100: { nominal: 4, lendingLimit: 2 } }, cohort: "c" };
    const quotaB: QuotaSpec = { gpus: { H100: { nominal: 2, borrowingLimit: 10 } }, cohort: "c" };
    const a = demand("a", 1, 0, { quota: quotaA });
    const b = demand("b", 1, 10, { quota: quotaB });
    const members = () => [a, b].map((d) => ({ tenantId: d.tenantId, quota: d.quota!, usage: d.usage }));
    const plan = planPlacements([a, b], c, 10, members);
    expect(plan).toHaveLength(4); // 2 nominal + 2 lent by A
    expect(plan.filter((p) => p.borrowing > 0)).toHaveLength(2);
  });
});

describe("quota arithmetic", () => {
  const q: QuotaSpec = { gpus: { H100: { nominal: 4 }, "*": { nominal: 2 } }, maxConcurrentJobs: 3 };
  it("at exactly the limit it fits; one more does not", () => {
    expect(checkOwn(q, { byType: { H100: 3 }, jobs: 1 }, "H100", 1).fits).toBe(true);
    expect(checkOwn(q, { byType: { H100: 4 }, jobs: 1 }, "H100", 1).fits).toBe(false);
    expect(checkOwn(q, { byType: { A100: 1 }, jobs: 1 }, "A100", 1).fits).toBe(true);
    expect(checkOwn(q, { byType: { A100: 2 }, jobs: 1 }, "L4", 1).fits).toBe(false); // "*" covers both
    expect(checkOwn(q, { byType: {}, jobs: 3 }, "H100", 1)).toMatchObject({
      fits: false,
      code: "MaxConcurrentJobs",
    });
    expect(checkOwn(null, { byType: { H100: 999 }, jobs: 999 }, "H100", 64).fits).toBe(true);
    expect(checkOwn({ gpus: { H100: { nominal: 1 } } }, { byType: {}, jobs: 0 }, "A100", 1)).toMatchObject({
      fits: false,
      code: "NoQuotaForType",
    });
  });
  it("a cohort lends what its members leave unused, capped by each lending limit", () => {
    const members: CohortMember[] = [
      {
        tenantId: "a",
        quota: { gpus: { H100: { nominal: 4, lendingLimit: 2 } }, cohort: "c" },
        usage: { byType: {}, jobs: 0 },
      },
      {
        tenantId: "b",
        quota: { gpus: { H100: { nominal: 2 } }, cohort: "c" },
        usage: { byType: { H100: 3 }, jobs: 3 },
      },
      {
        tenantId: "c",
        quota: { gpus: { H100: { nominal: 1 } }, cohort: "c" },
        usage: { byType: {}, jobs: 0 },
      },
    ];
    // a lends 2, c lends 1; b already borrows 1.
    expect(borrowable(members, "b", "H100")).toBe(2);
    expect(borrowable(members, "c", "H100")).toBe(1);
  });
});

describe("decayed usage", () => {
  it("holding R GPUs for many half-lives converges to an average of R; idle time decays it", () => {
    const h = 60;
    let u = withRate({ value: 0, rate: 0, at: 0 }, 0, h, 4);
    expect(averageGpus(u, 3600_000, h)).toBeCloseTo(4, 3);
    u = withRate(u, 3600_000, h, 0);
    expect(averageGpus(u, 3600_000 + 60_000, h)).toBeCloseTo(2, 3); // one half-life later
    expect(rollForward(u, 3600_000 + 120_000, h).value).toBeCloseTo(rollForward(u, 3600_000, h).value / 4, 3);
  });
  it("a zero or negative half-life is refused, not silently accepted", () => {
    expect(() => validateHalfLife(0)).toThrow(RangeError);
    expect(() => validateHalfLife(-5)).toThrow(RangeError);
    expect(() => config({ USAGE_HALF_LIFE_SECONDS: "0" })).toThrow(/USAGE_HALF_LIFE_SECONDS/);
    expect(config({ USAGE_HALF_LIFE_SECONDS: "7200" }).halfLifeSeconds).toBe(7200);
    expect(config({}).halfLifeSeconds).toBe(3600);
    expect(config({}).retentionHours).toBe(168);
    expect(config({ JOB_RETENTION_HOURS: "0.5" }).retentionHours).toBe(0.5);
    expect(() => config({ JOB_RETENTION_HOURS: "0" })).toThrow(/JOB_RETENTION_HOURS/);
    expect(() => config({ JOB_RETENTION_HOURS: "a week" })).toThrow(/JOB_RETENTION_HOURS/);
  });
});

describe("job state machine and backoff", () => {
  it("allows only the transitions of PRODUCT.md §4", () => {
    expect(canTransition("queued", "scheduled")).toBe(true);
    expect(canTransition("scheduled", "running")).toBe(true);
    expect(canTransition("running", "queued")).toBe(true); // requeue: worker lost, retry
    expect(canTransition("succeeded", "running")).toBe(false);
    expect(canTransition("cancelled", "queued")).toBe(false);
    expect(canTransition("queued", "running")).toBe(false);
  });
  it("retries back off 10 s × 2^(attempt−1), at most 10 min", () => {
    expect(retryBackoffMs(1)).toBe(10_000);
    expect(retryBackoffMs(3)).toBe(40_000);
    expect(retryBackoffMs(20)).toBe(600_000);
  });
});

describe("token bucket", () => {
  it("allows a burst, then refills at the rate, and says when to retry", () => {
    let b = take(undefined, { rate: 2, burst: 3 }, 0).bucket;
    b = take(b, { rate: 2, burst: 3 }, 0).bucket;
    b = take(b, { rate: 2, burst: 3 }, 0).bucket;
    const refused = take(b, { rate: 2, burst: 3 }, 0);
    expect(refused.ok).toBe(false);
    expect(refused.retryAfterSeconds).toBe(1);
    expect(take(refused.bucket, { rate: 2, burst: 3 }, 500).ok).toBe(true);
  });
});
