// The scheduler's side of release hints (src/domain/release.ts): GPUs a tenant gave back arrive with the
// capacity they freed, count at once, are not applied twice, and survive a stale summary arriving later.
import { describe, expect, it } from "vitest";
import type { DemandSummary } from "../../src/do/tenant/summary.ts";
import { emptyHistogram } from "../../src/domain/histogram.ts";
import type { Release } from "../../src/domain/release.ts";
import { env, uniq } from "./helpers.ts";

interface SchedulerRpc {
  updateDemand(s: DemandSummary): Promise<void>;
  updateCapacity(reports: never[], releases: Release[]): Promise<void>;
  getStats(): Promise<{ demand: { tenantId: string; held: number }[] }>;
}

const summary = (tenantId: string, rev: number, held: number): DemandSummary => ({
  tenantId,
  rev,
  weight: 1,
  quota: null,
  usage: { byType: { H100: held }, jobs: held },
  held,
  avgUsage: 0,
  shapes: [], // nothing ready: no pass is started by these calls
  at: Date.now(),
  stats: {
    counts: {},
    submit: emptyHistogram(),
    wait: emptyHistogram(),
    outboxPending: 0,
    outboxLagSeconds: 0,
  },
});

const release = (tenantId: string, rev: number, gpus: number): Release => ({
  tenantId,
  rev,
  byType: { H100: gpus },
  jobs: gpus,
});

describe("release hints in the scheduler", () => {
  it("count before the tenant's summary arrives, once, and are replayed onto an older summary", async () => {
    const s = env.SCHEDULER.getByName(uniq("release")) as unknown as SchedulerRpc;
    const t = "t-release";
    const held = async () => (await s.getStats()).demand.find((d) => d.tenantId === t)?.held;
    await s.updateDemand(summary(t, 5, 3));
    expect(await held()).toBe(3);

    // Two jobs end (tenant revision 6 and 7); their capacity arrives before the tenant's next summary.
    await s.updateCapacity([], [release(t, 6, 1)]);
    await s.updateCapacity([], [release(t, 7, 1)]);
    expect(await held()).toBe(1);
    // A release that the summary already counts is ignored.
    await s.updateCapacity([], [release(t, 5, 1)]);
    expect(await held()).toBe(1);

    // The summary of revision 6 includes the first release only: the second is replayed onto it.
    await s.updateDemand(summary(t, 6, 2));
    expect(await held()).toBe(1);
    // Revision 7 includes both: nothing is left to replay, and the summary is the truth again.
    await s.updateDemand(summary(t, 7, 1));
    expect(await held()).toBe(1);
    await s.updateDemand(summary(t, 8, 4));
    expect(await held()).toBe(4);
  });
});
