// Issue 5: placements/s with 10k and 100k queued jobs across 1k and 10k workers, and how the cost grows.
// A placement has two halves, measured where they run:
//  - the scheduler's decision (src/domain/fairshare.ts planPlacements over a CapacityIndex): pure code,
//    timed here in Node (inside workerd the clock only advances across I/O, so pure CPU cannot be timed
//    there). It sees demand summaries, never jobs: the backlog enters only as counts.
//  - the tenant's claim (TenantQueue.claim in workerd, real SQLite queue filled with 10k / 100k jobs
//    through the API): bench/placement/claim.workerd.ts under the vitest workers pool, timed around the RPC.
// cost(jobs, workers) = plan µs (workers) + claim µs (jobs); placements/s = 1e6 / cost. Not included: the
// fleet shard's assign (per placement, independent of backlog and fleet size) and the RPC hops.
import { spawn } from "node:child_process";
import path from "node:path";
import { CapacityIndex, type WorkerCapacity } from "../../src/domain/capacity.ts";
import { planPlacements, type TenantDemand } from "../../src/domain/fairshare.ts";
import { ROOT } from "../lib/machine.ts";
import { CpuWindow } from "../lib/proc.ts";
import { atMost, type Figure, fig, type Noise, type SuiteResult } from "../lib/result.ts";
import { median, round } from "../lib/stats.ts";

const TYPES = ["H100", "A100"];
const GPUS = [1, 2, 4, 8];
const ROUND = 256; // the scheduler's placements per round (src/do/scheduler.ts)
const TENANTS = 50;

/** A fleet of 8-GPU workers, partly busy (free counts vary) as a running fleet's would be. */
function fleet(workers: number): WorkerCapacity[] {
  return Array.from({ length: workers }, (_, w) => {
    const type = TYPES[w % TYPES.length]!;
    const busy = (w * 7) % 9; // 0..8 GPUs in use
    return {
      workerId: `w-${String(w % 16).padStart(2, "0")}-bench${w}`,
      shard: `shard-${String(w % 16).padStart(2, "0")}`,
      poolId: "bench",
      gpus: Array.from({ length: 8 }, (_, i) => ({ index: i, type, typeKey: type })),
      free: Array.from({ length: 8 - busy }, (_, i) => busy + i),
      schedulable: true,
      version: 1,
    };
  });
}

/** 50 tenants, each with several shapes and priorities; `jobs` queued in total across them. */
function demand(jobs: number): TenantDemand[] {
  return Array.from({ length: TENANTS }, (_, t) => ({
    tenantId: `t${t}`,
    weight: 1 + (t % 3),
    quota: null,
    usage: { byType: {}, jobs: 0 },
    held: (t * 13) % 40,
    avgUsage: (t * 7) % 25,
    shapes: Array.from({ length: 6 }, (_, s) => ({
      shape: `${GPUS[(t + s) % 4]}x${TYPES[s % 2]}`,
      gpus: GPUS[(t + s) % 4]!,
      typeKey: TYPES[s % 2]!,
      priority: s % 3,
      count: Math.floor(jobs / TENANTS / 6),
      oldestAt: 1_700_000_000_000 + t * 1000 + s,
    })),
  }));
}

/** Median µs per placement of planPlacements rounds of 256, each on a fresh copy of the same state. */
function planCost(workers: number, jobs: number, rounds: number): { micros: number; placed: number } {
  const caps = fleet(workers);
  const base = demand(jobs);
  const samples: number[] = [];
  let placed = 0;
  for (let r = 0; r < rounds + 3; r++) {
    const capacity = new CapacityIndex();
    for (const c of caps) capacity.upsert(c);
    const tenants = structuredClone(base);
    const t0 = performance.now();
    const plans = planPlacements(tenants, capacity, ROUND, () => []);
    const ms = performance.now() - t0;
    placed = plans.length;
    if (r >= 3) samples.push((ms * 1000) / Math.max(1, plans.length)); // 3 warm-up rounds
  }
  return { micros: median(samples), placed };
}

interface ClaimRun {
  jobs: number;
  batch: number;
  batches: number;
  failed: number;
  fillMs: number;
  flushMs: number;
  perClaimMicrosMedian: number;
  perClaimMicros: number[];
}

function runClaims(): Promise<{ runs: ClaimRun[]; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [
        path.join(ROOT, "node_modules", "vitest", "vitest.mjs"),
        "run",
        "--config",
        "bench/placement/vitest.config.ts",
      ],
      { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    p.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    p.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    p.on("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("BENCH_CLAIMS "));
      if (!line) return reject(new Error(`placement bench failed (exit ${code}):\n${out.slice(-4000)}`));
      resolve({ runs: JSON.parse(line.slice("BENCH_CLAIMS ".length)) as ClaimRun[], output: out });
    });
  });
}

export async function benchPlacement(o: { rounds: number }): Promise<SuiteResult> {
  const noise: Noise[] = [];
  const w1 = new CpuWindow();
  const claims = await runClaims();
  noise.push({ phase: "claims in workerd (fill, flush, claim)", ...w1.finish() });
  const claimOf = (jobs: number) => claims.runs.find((r) => r.jobs === jobs)!.perClaimMicrosMedian;

  const w2 = new CpuWindow();
  // Let V8 optimise the planner (and the capacity index) before any cell is timed: without this the first
  // cell pays for tier-up and the 10k/1k-worker comparison measures JIT order instead of fleet size.
  planCost(10_000, 100_000, o.rounds);
  const cells: {
    jobs: number;
    workers: number;
    planMicros: number;
    claimMicros: number;
    total: number;
    perSecond: number;
  }[] = [];
  for (const jobs of [10_000, 100_000]) {
    for (const workers of [1_000, 10_000]) {
      const plan = planCost(workers, jobs, o.rounds);
      const claim = claimOf(jobs);
      const total = plan.micros + claim;
      cells.push({
        jobs,
        workers,
        planMicros: round(plan.micros, 2),
        claimMicros: round(claim, 1),
        total: round(total, 1),
        perSecond: round(1e6 / total),
      });
    }
  }
  noise.push({ phase: "planning in Node", ...w2.finish() });
  const cell = (j: number, w: number) => cells.find((c) => c.jobs === j && c.workers === w)!;
  const small = cell(10_000, 1_000);
  const big = cell(100_000, 10_000);
  const figures: Figure[] = cells.map((c) =>
    fig(
      `placement.${c.jobs / 1000}k.${c.workers / 1000}k`,
      `Placements/s, ${c.jobs.toLocaleString("en")} queued jobs, ${c.workers.toLocaleString("en")} workers`,
      c.perSecond,
      "/s",
      { note: `plan ${c.planMicros} µs + claim ${c.claimMicros} µs per placement` },
    ),
  );
  figures.push(
    fig(
      "placement.costRatio",
      "Cost per placement, (100k jobs, 10k workers) / (10k jobs, 1k workers)",
      big.total / small.total,
      "×",
      {
        target: atMost(1.5),
      },
    ),
    fig(
      "placement.planRatio",
      "Scheduler decision only, 10k / 1k workers (100k jobs)",
      cell(100_000, 10_000).planMicros / cell(100_000, 1_000).planMicros,
      "×",
    ),
    fig(
      "placement.claimRatio",
      "Tenant claim only, 100k / 10k queued jobs",
      claimOf(100_000) / claimOf(10_000),
      "×",
    ),
  );
  return {
    suite: "placement",
    title: "Placement cost vs backlog and fleet size",
    measuredAt: new Date().toISOString(),
    method: [
      `scheduler decision: planPlacements over a CapacityIndex of 1k / 10k 8-GPU workers (2 types, partly busy) for ${TENANTS} tenants × 6 shapes; rounds of ${ROUND} placements on fresh copies, median of ${o.rounds} rounds after 3 warm-up rounds; Node ${process.version}`,
      "tenant claim: inside workerd (vitest workers pool, bench/placement/claim.workerd.ts): a TenantQueue filled through the API with 10k / 100k jobs (arrays of 1,000; 8 shapes, 3 priorities, 5 users), outbox drained; both tenants filled first, then 24 timed claim() RPCs of 256 placements each per tenant, alternating between the two tenants (paired, so background work weighs on both sizes alike; median), each followed by an untimed unclaim() and outbox flush so the backlog stays the same and no flush overlaps a timed claim",
      "cost per placement = plan + claim; placements/s = 1e6 / cost; the fleet shard's assign and the RPC hops between objects are not included",
    ],
    figures,
    noise,
    notes: [
      `filling took ${claims.runs.map((r) => `${r.jobs.toLocaleString("en")} jobs: ${round(r.fillMs / 1000)} s (+ ${round(r.flushMs / 1000)} s outbox flush)`).join("; ")}`,
      `claim samples (µs per placement): ${claims.runs.map((r) => `${r.jobs / 1000}k: ${r.perClaimMicros.map((x) => round(x)).join(", ")}`).join("; ")}`,
    ],
    details: { cells, claims: claims.runs },
  };
}
