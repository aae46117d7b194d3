// Release hints (src/domain/release.ts): applied to a tenant's summary only when it predates them, once.
import { describe, expect, it } from "vitest";
import { applyRelease, pendingAfter, released } from "../../src/domain/release.ts";

const view = (rev: number, h100: number, jobs: number) => ({
  rev,
  held: h100,
  usage: { byType: { H100: h100 }, jobs },
});

describe("release hints", () => {
  it("are the decrease between two usages, per type, or null when nothing was given back", () => {
    const before = { byType: { H100: 4, A100: 2 }, jobs: 3 };
    expect(released("t", 7, before, { byType: { H100: 3, A100: 2 }, jobs: 2 })).toEqual({
      tenantId: "t",
      rev: 7,
      byType: { H100: 1 },
      jobs: 1,
    });
    expect(released("t", 7, before, { byType: { H100: 0 }, jobs: 0 })).toEqual({
      tenantId: "t",
      rev: 7,
      byType: { H100: 4, A100: 2 },
      jobs: 3,
    });
    // A job that only started (held more, not less) is not a release.
    expect(released("t", 7, before, { byType: { H100: 5, A100: 2 }, jobs: 4 })).toBeNull();
    expect(released("t", 7, before, before)).toBeNull();
  });

  it("apply to a summary older than the release, and not to one that already counts it", () => {
    const r = { tenantId: "t", rev: 5, byType: { H100: 1 }, jobs: 1 };
    const stale = view(4, 3, 3);
    expect(applyRelease(stale, r)).toBe(true);
    expect(stale).toEqual(view(4, 2, 2));
    const fresh = view(5, 2, 2);
    expect(applyRelease(fresh, r)).toBe(false);
    expect(fresh).toEqual(view(5, 2, 2));
  });

  it("never drive held or usage below zero", () => {
    const d = view(1, 1, 1);
    applyRelease(d, { tenantId: "t", rev: 2, byType: { H100: 3 }, jobs: 2 });
    expect(d).toEqual(view(1, 0, 0));
  });

  it("stay pending until a summary of their revision or later arrives", () => {
    const rs = [4, 6, 9].map((rev) => ({ tenantId: "t", rev, byType: { H100: 1 }, jobs: 1 }));
    expect(pendingAfter(rs, 6).map((r) => r.rev)).toEqual([9]);
    expect(pendingAfter(rs, 3)).toHaveLength(3);
    expect(pendingAfter(rs, 9)).toHaveLength(0);
  });
});
