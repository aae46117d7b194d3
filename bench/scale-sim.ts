// The scale model behind docs/scale.md: 100k GPUs on 10k workers, 1M queued jobs, 1,000 tenants. For each
// Durable Object class it computes what the hottest object *receives* per second (the ~1,000 req/s soft
// limit is per object), the storage each holds, and the outbox traffic to Postgres — first for the design as
// coded today (src/do/*: debounce, push-per-change, single scheduler, status call per update, 7-day
// retention), then for the proposed design, and across fleet-shard and scheduling-domain counts.
//
// Rates are steady state: the fleet is full (there is a backlog), so jobs finish and start at the same
// rate J = (GPUs / GPUs per job) / mean runtime, and tenants submit at J. Tenants' shares of load and
// backlog follow Zipf(1) — the biggest of 1,000 tenants has ~13 %. Coalescing channels (one push in flight
// and whatever piles up meanwhile goes in the next one, as CapacityPusher and the tenant's debounced demand
// push do) send λ / (λ·T + e^(−λ·T)) messages for λ events/s and a hold time T: an event finds the channel
// idle and starts a busy period in which each send is followed by another with probability 1 − e^(−λT).
// A Monte Carlo simulation of the channel checks that formula (`checkCoalescing`).
//
// `npx tsx bench/scale-sim.ts` prints the tables; `npm run bench -- scale` puts the key figures in
// BENCHMARKS.md.
import { pathToFileURL } from "node:url";
import { checkCoalescing, coalesced, zipf } from "./lib/queueing.ts";

export interface Load {
  gpus: number;
  workers: number;
  tenants: number;
  queued: number;
  gpusPerJob: number;
  /** Mean job runtime, seconds. */
  runtimeSeconds: number;
  /** Share of tasks submitted inside arrays, and the mean array size. */
  arrayShare: number;
  arraySize: number;
  /** Tenant reads (show/events/explain/queue) per second over all tenants. */
  readsPerSecond: number;
  /** Share of reads that are `explain` (which asks the scheduler for capacity). */
  explainShare: number;
}

export interface Design {
  name: string;
  fleetShards: number;
  /** Scheduling domains (one coordinator each); tenants push a summary to each domain they have demand in. */
  domains: number;
  heartbeatSeconds: number;
  leaseTtlSeconds: number;
  /** DO-to-DO round trip, seconds. */
  rtt: number;
  /** Tenant demand push: hold time before a push (debounce), seconds. */
  demandHold: number;
  /** Fleet → scheduler capacity push: minimum spacing per shard, seconds (0 = push on every change). */
  capacityHold: number;
  /** Worker reports: requests per job (2 = a status call per transition, as the agent does today). */
  reportCallsPerJob: number;
  /** …or batched: at most this many report requests per worker per second (0 = not batched). */
  reportBatchPerWorker: number;
  /** Outbox: minimum seconds between flushes of one object, and the batch that flushes early. */
  outboxInterval: number;
  outboxBatch: number;
  /** Terminal jobs kept in the tenant object after Postgres has them, seconds. */
  retentionSeconds: number;
  /** Scheduler passes per second are bounded by its debounce plus the pass itself. */
  passSeconds: number;
  /** explain answered from a capacity copy the tenant holds (no scheduler call). */
  explainCached: boolean;
}

export const LOAD: Load = {
  gpus: 100_000,
  workers: 10_000,
  tenants: 1_000,
  queued: 1_000_000,
  gpusPerJob: 2,
  runtimeSeconds: 60,
  arrayShare: 0.5,
  arraySize: 100,
  readsPerSecond: 2_000,
  explainShare: 0.1,
};

/** What src/ does today (src/env.ts defaults; src/do/*). */
export const CURRENT: Design = {
  name: "as coded",
  fleetShards: 16,
  domains: 1,
  heartbeatSeconds: 10,
  leaseTtlSeconds: 30,
  rtt: 0.005,
  demandHold: 0.01, // SCHEDULE_DEBOUNCE_MS
  capacityHold: 0, // CapacityPusher: every update-bearing call pushes (one in flight per shard)
  reportCallsPerJob: 2, // cli/agent/updates.ts: one status call per transition
  reportBatchPerWorker: 0,
  outboxInterval: 0.1, // OUTBOX_FLUSH_MS
  outboxBatch: 2000,
  retentionSeconds: 7 * 86400, // src/do/tenant/upkeep.ts RETENTION_MS
  passSeconds: 0.02,
  explainCached: false,
};

/** The proposal of docs/scale.md. */
export const PROPOSED: Design = {
  ...CURRENT,
  name: "proposed",
  fleetShards: 32,
  domains: 4,
  demandHold: 0.25,
  capacityHold: 0.1,
  reportBatchPerWorker: 2,
  outboxInterval: 5,
  outboxBatch: 500,
  retentionSeconds: 3600,
  explainCached: true,
};

export interface ClassRates {
  /** Requests per second the hottest object of the class receives, by source. */
  hottest: Record<string, number>;
  hottestTotal: number;
  /** Objects in the class. */
  objects: number;
}

export interface ModelResult {
  design: Design;
  jobsPerSecond: number;
  fleetShard: ClassRates;
  scheduler: ClassRates;
  tenant: ClassRates;
  postgres: { transactionsPerSecond: number; rowsPerSecond: number };
  storage: {
    biggestTenantQueued: number;
    biggestTenantRetained: number;
    biggestTenantGiB: number;
    workersPerShard: number;
    leasesPerShard: number;
    socketsPerShard: number;
  };
  schedulerPassesPerSecond: number;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/** Bytes per job row in a tenant's SQLite (spec JSON, 9 indexes) and per event row. */
const JOB_BYTES = 1600;
const EVENT_BYTES = 200;
const EVENTS_PER_JOB = 4; // Submitted, Scheduled, Started, Succeeded
/** Outbox rows per job: a snapshot per transition (4), its events (4), one usage record, audit per request. */
const ROWS_PER_JOB = 9;

export function model(load: Load, d: Design): ModelResult {
  const J = load.gpus / load.gpusPerJob / load.runtimeSeconds; // jobs finishing (and starting) per second
  const running = load.gpus / load.gpusPerJob;
  const shares = zipf(load.tenants);
  const top = shares[0]!;
  const S = d.fleetShards;
  const D = d.domains;

  // Submit requests: singles one each, arrays one per `arraySize` tasks.
  const submitReqs = (jobs: number) =>
    jobs * (1 - load.arrayShare) + (jobs * load.arrayShare) / load.arraySize;
  // Worker report requests (status calls, or batched into few requests per worker).
  const reportReqs = (jobs: number, workers: number) =>
    d.reportBatchPerWorker > 0
      ? Math.min(jobs * d.reportCallsPerJob, workers * d.reportBatchPerWorker)
      : jobs * d.reportCallsPerJob;

  // ---- scheduler passes: kicked continuously under load; each pass = debounce + the pass itself.
  const passes = 1 / (d.demandHold > 0.01 ? 0.01 + d.passSeconds : d.demandHold + d.passSeconds);

  // ---- fleet shard (workers spread evenly by id)
  const wps = load.workers / S;
  const reportsShard = reportReqs(J / S, wps);
  // Tenants verify running leases every max(5 × TTL, 60 s), in batches per (tenant alarm, shard).
  const checkEvery = Math.max(5 * d.leaseTtlSeconds, 60);
  const leaseChecks = shares.reduce((acc, sh) => {
    const leases = running * sh;
    // one call per shard per check round of this tenant, at most one per lease
    return acc + Math.min(leases, S) / checkEvery;
  }, 0);
  const fleetShard: ClassRates = {
    objects: S,
    hottest: {
      heartbeats: wps / d.heartbeatSeconds,
      "job reports": reportsShard,
      // Every pass with placements sends one assign per shard it touched; shards serve every domain.
      "assign (scheduler)": D * Math.min(passes, J / S / D),
      "lease checks (tenants)": leaseChecks / S,
      "cancels, drains, ticks": 1,
    },
    hottestTotal: 0,
  };
  fleetShard.hottestTotal = sum(fleetShard.hottest);

  // ---- scheduler (per domain): capacity pushes from the shards of its domain + demand pushes + explain
  const shardsPerDomain = Math.max(1, S / D);
  // Each update-bearing request (and each assign, via the 1 s dirty alarm) marks capacity dirty.
  const capEventsPerShard = reportsShard / d.reportCallsPerJob + 1;
  const capPushPerShard = coalesced(capEventsPerShard, Math.max(d.rtt, d.capacityHold));
  // Tenant demand changes: each submit request, each claim batch, each report that frees GPUs.
  const demandPushes = (sh: number) => {
    const jobs = J * sh;
    const events =
      submitReqs(jobs) + Math.min(passes, jobs) + reportReqs(jobs, load.workers * sh) / d.reportCallsPerJob;
    return coalesced(events, d.demandHold + d.rtt);
  };
  // A tenant's demand spans ~2 GPU types; with D domains it pushes to min(D, 2) of them.
  const domainsPerTenant = Math.min(D, 2);
  const demandPerDomain = (shares.reduce((a, sh) => a + demandPushes(sh), 0) * domainsPerTenant) / D;
  const scheduler: ClassRates = {
    objects: D,
    hottest: {
      "capacity pushes (shards)": capPushPerShard * shardsPerDomain,
      "demand summaries (tenants)": demandPerDomain,
      "explain capacity lookups": d.explainCached ? 0 : (load.readsPerSecond * load.explainShare) / D,
      "metrics, ticks": 0.1,
    },
    hottestTotal: 0,
  };
  scheduler.hottestTotal = sum(scheduler.hottest);

  // ---- the biggest tenant
  const Jt = J * top;
  const tenant: ClassRates = {
    objects: load.tenants,
    hottest: {
      submits: submitReqs(Jt),
      "reads (its users)": load.readsPerSecond * top,
      "claims (scheduler)": Math.min(passes, Jt) * Math.min(D, 2),
      // One applyWorkerUpdates per report request that carries one of its jobs.
      "worker reports (shards)": reportReqs(Jt, load.workers * top),
      "leases lost, catalog, ticks": 0.5,
    },
    hottestTotal: 0,
  };
  tenant.hottestTotal = sum(tenant.hottest);

  // ---- Postgres: outbox flushes of every tenant and shard
  // A flush goes out `outboxInterval` after the first unflushed row (or at once with a full batch) and holds
  // the outbox while Postgres commits it (a new connection per flush from a Worker: ~50 ms).
  const flushes = (rowsPerSecond: number) =>
    Math.max(coalesced(rowsPerSecond, d.outboxInterval + 0.05), rowsPerSecond / d.outboxBatch);
  const tenantRows = shares.map((sh) => J * sh * ROWS_PER_JOB);
  const tenantFlushes = tenantRows.reduce((a, r) => a + flushes(r), 0);
  const shardRows = 0.2; // worker snapshots on state changes only
  const postgres = {
    transactionsPerSecond: tenantFlushes + S * flushes(shardRows),
    rowsPerSecond: tenantRows.reduce((a, b) => a + b, 0) + S * shardRows,
  };

  const retained = Jt * d.retentionSeconds;
  const queuedTop = load.queued * top;
  return {
    design: d,
    jobsPerSecond: J,
    fleetShard,
    scheduler,
    tenant,
    postgres,
    storage: {
      biggestTenantQueued: queuedTop,
      biggestTenantRetained: retained,
      biggestTenantGiB: ((queuedTop + retained) * (JOB_BYTES + EVENTS_PER_JOB * EVENT_BYTES)) / 2 ** 30,
      workersPerShard: wps,
      leasesPerShard: running / S,
      socketsPerShard: wps,
    },
    schedulerPassesPerSecond: passes,
  };
}

// ------------------------------------------------------------------------------------------ report

export interface ScaleFigure {
  id: string;
  label: string;
  value: number;
  unit: string;
  limit?: number;
  note?: string;
}

const r0 = (x: number) => Math.round(x);
const r1 = (x: number) => Math.round(x * 10) / 10;

function describe(m: ModelResult): string[] {
  const rows = (c: ClassRates) =>
    Object.entries(c.hottest)
      .map(([k, v]) => `${k} ${r1(v)}`)
      .join(", ");
  return [
    `${m.design.name}: ${m.design.fleetShards} fleet shards, ${m.design.domains} scheduling domain(s), ${r0(m.jobsPerSecond)} jobs/s`,
    `  fleet shard (hottest): ${r0(m.fleetShard.hottestTotal)} req/s — ${rows(m.fleetShard)}`,
    `  scheduler (per domain): ${r0(m.scheduler.hottestTotal)} req/s — ${rows(m.scheduler)}`,
    `  biggest tenant: ${r0(m.tenant.hottestTotal)} req/s — ${rows(m.tenant)}`,
    `  Postgres: ${r0(m.postgres.transactionsPerSecond)} outbox transactions/s, ${r0(m.postgres.rowsPerSecond)} rows/s`,
    `  storage: biggest tenant ${r0(m.storage.biggestTenantQueued)} queued + ${r0(m.storage.biggestTenantRetained)} retained jobs ≈ ${r1(m.storage.biggestTenantGiB)} GiB; ${r0(m.storage.workersPerShard)} workers, ${r0(m.storage.leasesPerShard)} leases, ${r0(m.storage.socketsPerShard)} sockets per shard`,
  ];
}

export function scaleReport(load: Load = LOAD) {
  const runtimes = [1800, 60];
  const lines: string[] = [];
  const figures: ScaleFigure[] = [];
  const results: Record<string, unknown> = {};
  for (const runtime of runtimes) {
    const l = { ...load, runtimeSeconds: runtime };
    for (const d of [CURRENT, PROPOSED]) {
      const m = model(l, d);
      results[`${d.name}, ${runtime} s jobs`] = m;
      lines.push(`[${runtime} s jobs] ${describe(m).join("\n")}`);
      const tag = `${d.name === CURRENT.name ? "current" : "proposed"}.${runtime}s`;
      const note = `${r0(m.jobsPerSecond)} jobs/s (mean runtime ${runtime} s)`;
      figures.push(
        {
          id: `${tag}.scheduler`,
          label: `Scheduler req/s — ${d.name}, ${runtime} s jobs`,
          value: m.scheduler.hottestTotal,
          unit: "req/s",
          limit: 1000,
          note,
        },
        {
          id: `${tag}.shard`,
          label: `Hottest fleet shard req/s — ${d.name}, ${runtime} s jobs`,
          value: m.fleetShard.hottestTotal,
          unit: "req/s",
          limit: 1000,
        },
        {
          id: `${tag}.tenant`,
          label: `Biggest tenant req/s — ${d.name}, ${runtime} s jobs`,
          value: m.tenant.hottestTotal,
          unit: "req/s",
          limit: 1000,
        },
        {
          id: `${tag}.pg`,
          label: `Postgres outbox transactions/s — ${d.name}, ${runtime} s jobs`,
          value: m.postgres.transactionsPerSecond,
          unit: "/s",
        },
        {
          id: `${tag}.storage`,
          label: `Biggest tenant storage — ${d.name}, ${runtime} s jobs`,
          value: m.storage.biggestTenantGiB,
          unit: "GiB",
          limit: 10,
        },
      );
    }
  }
  // Sweep: the hottest object of each class against shard and domain counts (proposed design, 60 s jobs).
  const sweep: { shards: number; domains: number; shard: number; scheduler: number; tenant: number }[] = [];
  for (const shards of [8, 16, 32, 64]) {
    for (const domains of [1, 2, 4, 8]) {
      const m = model({ ...load, runtimeSeconds: 60 }, { ...PROPOSED, fleetShards: shards, domains });
      sweep.push({
        shards,
        domains,
        shard: r0(m.fleetShard.hottestTotal),
        scheduler: r0(m.scheduler.hottestTotal),
        tenant: r0(m.tenant.hottestTotal),
      });
    }
  }
  const checks = [
    checkCoalescing(100, 0.01),
    checkCoalescing(1000, 0.005),
    checkCoalescing(50, 0.1),
    checkCoalescing(5, 0.25),
  ].map((c) => ({ simulated: r1(c.simulated), model: r1(c.model) }));
  return {
    method: [
      `steady state, fleet full: ${load.gpus.toLocaleString("en")} GPUs on ${load.workers.toLocaleString("en")} workers, ${load.queued.toLocaleString("en")} queued jobs, ${load.tenants.toLocaleString("en")} tenants with Zipf(1) shares (biggest ≈ ${r1(zipf(load.tenants)[0]! * 100)} %), ${load.gpusPerJob} GPUs per job; mean runtimes 30 min and 60 s (stress)`,
      `${load.arrayShare * 100} % of tasks submitted in arrays of ${load.arraySize}; ${load.readsPerSecond} tenant reads/s (${load.explainShare * 100} % explain)`,
      "coalescing channels send λ/(1+λ·hold) messages/s (checked by Monte Carlo in the details)",
      "as coded: 16 shards, 1 scheduler, 10 ms demand debounce, a capacity push per update-bearing call, a status call per transition, 100 ms outbox flushes, 7-day retention; proposed: see docs/scale.md",
    ],
    figures,
    notes: [
      ...lines.flatMap((l) => l.split("\n")),
      `coalescing check (simulated vs model msg/s): ${checks.map((c) => `${c.simulated}/${c.model}`).join(", ")}`,
    ],
    details: { load, results, sweep, checks },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = scaleReport();
  for (const n of r.notes) console.log(n);
  console.log(
    "\nsweep (proposed design, 60 s jobs): shards × domains → hottest shard / scheduler / tenant req/s",
  );
  for (const s of (
    r.details as {
      sweep: { shards: number; domains: number; shard: number; scheduler: number; tenant: number }[];
    }
  ).sweep)
    console.log(
      `  ${String(s.shards).padStart(2)} × ${s.domains}: ${s.shard} / ${s.scheduler} / ${s.tenant}`,
    );
}
