// What explain learns from the scheduler about everyone else (src/domain/competition.ts).
import { describe, expect, it } from "vitest";
import { competition, placementRates, readyByPriority, recentMarks } from "../../src/domain/competition.ts";

const shape = (typeKey: string, count: number, priority = 1) => ({
  shape: `1x${typeKey}`,
  gpus: 1,
  typeKey,
  priority,
  count,
  oldestAt: 0,
});
const tenant = (tenantId: string, held: number, weight: number, shapes: ReturnType<typeof shape>[]) => ({
  tenantId,
  held,
  avgUsage: 0,
  weight,
  shapes,
});

describe("competition", () => {
  const demand = [
    tenant("me", 4, 1, [shape("H100", 5)]),
    tenant("below", 1, 1, [shape("H100", 3), shape("A100", 7)]), // standing 1 < 4: ahead
    tenant("weighted", 6, 3, [shape("H100", 2)]), // standing 2 < 4: ahead
    tenant("above", 8, 1, [shape("H100", 9)]), // standing 8: behind
    tenant("idle", 0, 1, []), // ahead by standing but nothing ready
    tenant("any", 0, 1, [shape("*", 4)]), // jobs with no type compete for every type
  ];

  it("counts tenants with a better standing and ready jobs that could use the type", () => {
    expect(competition(demand, "me", "H100")).toEqual({ tenantsAhead: 3, jobsAhead: 3 + 2 + 4 });
    expect(competition(demand, "me", "A100")).toEqual({ tenantsAhead: 2, jobsAhead: 7 + 4 });
    expect(competition(demand, "me", "*")).toEqual({ tenantsAhead: 3, jobsAhead: 10 + 2 + 4 });
  });

  it("treats an unknown tenant as standing 0: nobody is ahead of it", () => {
    expect(competition(demand, "new", "H100")).toEqual({ tenantsAhead: 0, jobsAhead: 0 });
  });
});

describe("placement rates", () => {
  it("are per minute by type over the marks, with at least a minute of history", () => {
    const now = 10 * 60_000;
    const marks = [
      { at: now - 120_000, typeKey: "H100" },
      { at: now - 60_000, typeKey: "H100" },
      { at: now - 1000, typeKey: "A100" },
    ];
    expect(placementRates(marks, now)).toEqual({ H100: 1, A100: 0.5 });
    expect(placementRates([{ at: now - 1000, typeKey: "H100" }], now)).toEqual({ H100: 1 });
    expect(placementRates([], now)).toEqual({});
  });

  it("keep only the last ten minutes", () => {
    const now = 60 * 60_000;
    const marks = [
      { at: now - 11 * 60_000, typeKey: "H100" },
      { at: now - 9 * 60_000, typeKey: "H100" },
    ];
    expect(recentMarks(marks, now)).toEqual([marks[1]]);
  });
});

it("readyByPriority sums ready jobs by priority name", () => {
  expect(readyByPriority({ shapes: [shape("H100", 2, 0), shape("A100", 3, 2), shape("*", 1, 2)] })).toEqual({
    low: 2,
    normal: 0,
    high: 4,
  });
});
