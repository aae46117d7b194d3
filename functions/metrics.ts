// Prometheus text exposition, assembled from what the objects already report: the scheduler holds every
// tenant's latest demand summary (queue depth, jobs by state, latency histograms, outbox backlog) and each
// fleet shard answers one small stats call. No Postgres, no per-job work.
import { emptyHistogram, exposition, type Histogram, merge } from "../src/domain/histogram.ts";
import type { Env } from "../src/env.ts";
import { allShards, fleetStub, schedulerStub } from "../src/stubs.ts";

const esc = (v: string | number) => String(v).replace(/["\\\n]/g, "_");

function line(name: string, labels: Record<string, string | number>, value: number): string {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${esc(v)}"`)
    .join(",");
  return `${name}${l ? `{${l}}` : ""} ${Number.isFinite(value) ? value : 0}`;
}

class Out {
  lines: string[] = [];
  metric(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    return this;
  }
  add(name: string, labels: Record<string, string | number>, value: number): this {
    this.lines.push(line(name, labels, value));
    return this;
  }
}

export async function collectMetrics(env: Env): Promise<string> {
  const [sched, shards] = await Promise.all([
    schedulerStub(env).getStats(),
    Promise.all(allShards(env).map((s) => fleetStub(env, s).stats())),
  ]);
  const o = new Out();

  o.metric("gantry_queue_depth", "gauge", "Queued jobs ready to place, by tenant and priority.");
  for (const d of sched.demand) {
    for (const [p, n] of Object.entries(d.readyByPriority))
      o.add("gantry_queue_depth", { tenant: d.tenantId, priority: p }, n);
  }
  o.metric("gantry_jobs", "gauge", "Jobs by tenant and state (terminal states: every job that ended there).");
  for (const d of sched.demand) {
    for (const [state, byPrio] of Object.entries(d.stats?.counts ?? {})) {
      o.add(
        "gantry_jobs",
        { tenant: d.tenantId, state },
        Object.values(byPrio).reduce((a, b) => a + b, 0),
      );
    }
  }
  o.metric(
    "gantry_tenant_gpus_held",
    "gauge",
    "GPUs held by scheduled and running jobs and manual allocations.",
  );
  for (const d of sched.demand) o.add("gantry_tenant_gpus_held", { tenant: d.tenantId }, d.held);
  o.metric("gantry_tenant_fair_share_average_gpus", "gauge", "Exponentially decayed average GPUs in use.");
  for (const d of sched.demand)
    o.add("gantry_tenant_fair_share_average_gpus", { tenant: d.tenantId }, d.avgUsage);

  const submit: Histogram = emptyHistogram();
  const wait: Histogram = emptyHistogram();
  for (const d of sched.demand) {
    if (d.stats) {
      merge(submit, d.stats.submit);
      merge(wait, d.stats.wait);
    }
  }
  o.metric(
    "gantry_submit_duration_seconds",
    "histogram",
    "Submit latency at the API (gateway + tenant object).",
  );
  o.lines.push(...exposition("gantry_submit_duration_seconds", {}, submit));
  o.metric("gantry_queue_wait_seconds", "histogram", "Time from queued (or ready again) to scheduled.");
  o.lines.push(...exposition("gantry_queue_wait_seconds", {}, wait));
  o.metric(
    "gantry_scheduling_pass_duration_seconds",
    "histogram",
    "Duration of scheduling passes that placed jobs.",
  );
  o.lines.push(...exposition("gantry_scheduling_pass_duration_seconds", {}, sched.passSeconds));
  o.metric("gantry_scheduler_passes_total", "counter", "Scheduling passes run.").add(
    "gantry_scheduler_passes_total",
    {},
    sched.passes,
  );
  o.metric("gantry_placements_total", "counter", "Jobs placed on workers.").add(
    "gantry_placements_total",
    {},
    sched.placements,
  );
  o.metric("gantry_placement_failures_total", "counter", "Planned placements a tenant or shard refused.")
    .add("gantry_placement_failures_total", { stage: "claim" }, sched.failedClaims)
    .add("gantry_placement_failures_total", { stage: "assign" }, sched.failedAssigns);

  o.metric("gantry_workers", "gauge", "Workers by state.");
  const byState = new Map<string, number>();
  for (const s of shards)
    for (const [k, n] of Object.entries(s.workersByState)) byState.set(k, (byState.get(k) ?? 0) + n);
  for (const [state, n] of byState) o.add("gantry_workers", { state }, n);
  o.metric("gantry_gpus", "gauge", "GPUs on live workers.")
    .add(
      "gantry_gpus",
      { state: "total" },
      shards.reduce((a, s) => a + s.gpus, 0),
    )
    .add(
      "gantry_gpus",
      { state: "free" },
      shards.reduce((a, s) => a + s.freeGpus, 0),
    );
  o.metric("gantry_heartbeats_total", "counter", "Worker heartbeats received (since each shard started).");
  for (const s of shards) o.add("gantry_heartbeats_total", { shard: s.shard }, s.heartbeats);
  o.metric("gantry_worker_reports_total", "counter", "Single job status reports received.");
  for (const s of shards) o.add("gantry_worker_reports_total", { shard: s.shard }, s.reports);

  const outbox = [
    ...sched.demand.flatMap((d) =>
      d.stats
        ? [{ object: `tenant:${d.tenantId}`, pending: d.stats.outboxPending, lag: d.stats.outboxLagSeconds }]
        : [],
    ),
    ...shards.map((s) => ({ object: `fleet:${s.shard}`, pending: s.outboxPending, lag: s.outboxLagSeconds })),
  ];
  o.metric("gantry_outbox_pending", "gauge", "Changes not yet written to Postgres, by object.");
  for (const x of outbox) o.add("gantry_outbox_pending", { object: x.object }, x.pending);
  o.metric("gantry_outbox_lag_seconds", "gauge", "Age of the oldest change not yet written to Postgres.");
  for (const x of outbox) o.add("gantry_outbox_lag_seconds", { object: x.object }, x.lag);
  return `${o.lines.join("\n")}\n`;
}
