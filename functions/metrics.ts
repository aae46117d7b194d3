// Prometheus text exposition of what the objects know: queue depth by tenant and priority, jobs by state,
// workers by state, scheduler passes and placements, outbox lag.
import type { Env } from "../src/env.ts";
import { allShards, fleetStub, schedulerStub } from "../src/stubs.ts";

function line(name: string, labels: Record<string, string | number>, value: number): string {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${String(v).replace(/["\\\n]/g, "_")}"`)
    .join(",");
  return `${name}${l ? `{${l}}` : ""} ${Number.isFinite(value) ? value : 0}`;
}

export async function collectMetrics(env: Env): Promise<string> {
  const [sched, shards] = await Promise.all([
    schedulerStub(env).getStats(),
    Promise.all(allShards(env).map((s) => fleetStub(env, s).listWorkers())),
  ]);
  const out: string[] = [];
  out.push(
    "# HELP gantry_scheduler_passes_total Scheduling passes run.",
    "# TYPE gantry_scheduler_passes_total counter",
  );
  out.push(line("gantry_scheduler_passes_total", {}, sched.passes));
  out.push(
    "# HELP gantry_placements_total Jobs placed on workers.",
    "# TYPE gantry_placements_total counter",
  );
  out.push(line("gantry_placements_total", {}, sched.placements));
  out.push(
    "# HELP gantry_scheduler_last_pass_seconds Duration of the last pass.",
    "# TYPE gantry_scheduler_last_pass_seconds gauge",
  );
  out.push(line("gantry_scheduler_last_pass_seconds", {}, sched.lastPassMs / 1000));
  out.push(
    "# HELP gantry_queue_ready_jobs Ready (placeable) queued jobs by tenant.",
    "# TYPE gantry_queue_ready_jobs gauge",
  );
  for (const d of sched.demand) out.push(line("gantry_queue_ready_jobs", { tenant: d.tenantId }, d.ready));
  out.push(
    "# HELP gantry_tenant_gpus_held GPUs held by scheduled and running jobs.",
    "# TYPE gantry_tenant_gpus_held gauge",
  );
  for (const d of sched.demand) out.push(line("gantry_tenant_gpus_held", { tenant: d.tenantId }, d.held));
  const byState = new Map<string, number>();
  let gpus = 0;
  let free = 0;
  for (const w of shards.flat()) {
    byState.set(w.state, (byState.get(w.state) ?? 0) + 1);
    if (w.state !== "dead" && w.state !== "left") {
      gpus += w.gpus.length;
      free += w.freeGpuIndices.length;
    }
  }
  out.push("# HELP gantry_workers Workers by state.", "# TYPE gantry_workers gauge");
  for (const [s, n] of byState) out.push(line("gantry_workers", { state: s }, n));
  out.push("# HELP gantry_gpus GPUs on live workers.", "# TYPE gantry_gpus gauge");
  out.push(line("gantry_gpus", { state: "total" }, gpus), line("gantry_gpus", { state: "free" }, free));
  return `${out.join("\n")}\n`;
}
