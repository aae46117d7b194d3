// Issue 4's figures: CEL policy evaluation per job (bench/policy.ts, 20 realistic policies, target ≤ 20 µs)
// and the quota arithmetic that runs for every placement: checkOwn, and a cohort's borrowable() with 50
// members. Pure functions in this process; medians of several timed runs after a warm-up.

import {
  borrowable,
  type CohortMember,
  checkOwn,
  type QuotaSpec,
  type QuotaUsage,
} from "../../src/domain/quota.ts";
import { CpuWindow } from "../lib/proc.ts";
import { atMost, fig, type SuiteResult } from "../lib/result.ts";
import { median, round } from "../lib/stats.ts";
import { benchPolicy } from "../policy.ts";

/** Median over `runs` of the mean µs per call over `iterations` calls. */
function time(fn: () => unknown, iterations: number, runs: number): number {
  let sink = 0;
  const out: number[] = [];
  for (let r = 0; r < runs + 2; r++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) if (fn()) sink++;
    // The first two runs are warm-up (V8 tiers up the loop and the callee).
    if (r >= 2) out.push(((performance.now() - t0) * 1000) / iterations);
  }
  if (sink < 0) console.log(sink);
  return median(out);
}

const TYPES = ["H100", "A100", "L4", "T4"];

function quotaOf(i: number): QuotaSpec {
  return {
    gpus: Object.fromEntries(
      TYPES.map((t, k) => [t, { nominal: 8 + ((i + k) % 5) * 8, borrowingLimit: 16, lendingLimit: 8 }]),
    ),
    maxConcurrentJobs: 500,
    cohort: "research",
  };
}

function usageOf(i: number): QuotaUsage {
  return { byType: Object.fromEntries(TYPES.map((t, k) => [t, (i * 7 + k * 3) % 40])), jobs: (i * 13) % 400 };
}

export async function benchPolicySuite(): Promise<SuiteResult> {
  // A pure-CPU micro-benchmark: what the hypervisor takes meanwhile (steal) shows up directly in it.
  const w = new CpuWindow();
  const p = await benchPolicy();
  const policyCpu = w.finish();
  const members: CohortMember[] = Array.from({ length: 50 }, (_, i) => ({
    tenantId: `t${i}`,
    quota: quotaOf(i),
    usage: usageOf(i),
  }));
  const me = members[0]!;
  let k = 0;
  const checkOwnMicros = time(() => checkOwn(me.quota, me.usage, TYPES[k++ & 3]!, 2).fits, 200_000, 7);
  const borrowMicros = time(() => borrowable(members, "t0", TYPES[k++ & 3]!), 20_000, 7);
  return {
    suite: "policy",
    title: "Policy evaluation and quota checks (pure functions)",
    measuredAt: new Date().toISOString(),
    method: [
      "bench/policy.ts benchPolicy(): 20 realistic CEL policies on one job, the median of many timed runs after warm-up (counts below)",
      "quota: src/domain/quota.ts checkOwn (4 GPU types, cohort, maxConcurrentJobs) and borrowable() over a 50-member cohort; median of 7 runs after 2 warm-up runs",
      `Node ${process.version}, in the orchestrator process (no server running)`,
    ],
    figures: [
      fig("policy.perJob", "20 policies per job", p.perJobMicros, "µs", { target: atMost(20) }),
      fig("policy.perPolicy", "Per policy", p.perPolicyMicros, "µs"),
      fig("policy.compile", "Compile one policy (once per write)", p.compileMicros, "µs"),
      fig("quota.checkOwn", "Quota checkOwn per placement", round(checkOwnMicros, 3), "µs"),
      fig("quota.borrowable50", "Cohort borrowable(), 50 members", round(borrowMicros, 2), "µs"),
    ],
    noise: [{ phase: "20 policies per job (Node, one thread)", ...policyCpu }],
    notes: p.notes,
    details: { policy: p, checkOwnMicros, borrowMicros },
  };
}
