import { describe, expect, it } from "vitest";
import { bucketBounds, bucketCount, usageBuckets } from "../../src/domain/usage.ts";

const H = 3_600_000;

describe("usage buckets", () => {
  it("cuts [from, to) into whole steps; the last one ends at `to`", () => {
    expect(bucketBounds(0, 3 * H, H)).toEqual([
      [0, H],
      [H, 2 * H],
      [2 * H, 3 * H],
    ]);
    expect(bucketBounds(0, 2.5 * H, H)).toEqual([
      [0, H],
      [H, 2 * H],
      [2 * H, 2.5 * H],
    ]);
    expect(bucketCount(0, 2.5 * H, H)).toBe(3);
    expect(bucketCount(0, H, H)).toBe(1);
  });

  it("adds finished rows to their bucket and merges them by user and GPU type", () => {
    const b = usageBuckets(
      bucketBounds(0, 2 * H, H),
      [
        { bucket: 0, user: "a", gpuType: "H100", gpuSeconds: 10, jobs: 1 },
        { bucket: 1, user: "a", gpuType: "H100", gpuSeconds: 5, jobs: 2 },
        { bucket: 1, user: "b", gpuType: "A100", gpuSeconds: 7.0004, jobs: 1 },
        { bucket: 9, user: "x", gpuType: "H100", gpuSeconds: 1, jobs: 1 }, // out of range: ignored
      ],
      [],
      10 * H,
    );
    expect(b.map((x) => x.totalGpuSeconds)).toEqual([10, 12]);
    expect(b[1]!.items).toEqual([
      { user: "b", gpuType: "A100", gpuSeconds: 7, jobs: 1 },
      { user: "a", gpuType: "H100", gpuSeconds: 5, jobs: 2 },
    ]);
  });

  it("cuts a running holding at each bucket's edges and at now, and counts it once per bucket it touches", () => {
    // 2 GPUs since 0.5 h, now is 2.25 h: 0.5 h, 1 h and 0.25 h of the three buckets, nothing in the fourth.
    const b = usageBuckets(
      bucketBounds(0, 4 * H, H),
      [{ bucket: 0, user: "a", gpuType: "H100", gpuSeconds: 100, jobs: 1 }],
      [{ user: "a", gpuType: "H100", gpus: 2, since: 0.5 * H }],
      2.25 * H,
    );
    expect(b.map((x) => x.totalGpuSeconds)).toEqual([100 + 3600, 7200, 1800, 0]);
    expect(b.map((x) => x.items[0]?.jobs ?? 0)).toEqual([2, 1, 1, 0]);
    expect(b[3]!.items).toEqual([]);
  });

  it("a holding that started before the window counts from the window's start", () => {
    const [only] = usageBuckets([[H, 2 * H]], [], [{ user: "a", gpuType: "T4", gpus: 1, since: 0 }], 3 * H);
    expect(only!.items).toEqual([{ user: "a", gpuType: "T4", gpuSeconds: 3600, jobs: 1 }]);
  });
});
