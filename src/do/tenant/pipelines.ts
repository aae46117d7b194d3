// Pipeline runs and job arrays inside the tenant's object. A run creates every step's job in one
// transaction, wired by dependencies (so the DAG runs on the same queue, policies, quota and fair share as
// any job); cancelling a run or an array cancels its unfinished jobs.
import { type DagStep, orderSteps } from "../../domain/dag.ts";
import { newId } from "../../domain/ids.ts";
import { type DependsOn, isTerminal } from "../../domain/job.ts";
import { fail, type Result } from "../../errors.ts";
import { all, first } from "../../lib/sql.ts";
import type { KeyPrincipal } from "./catalog.ts";
import type { TenantCtx } from "./context.ts";
import type { JobRow } from "./jobs.ts";
import { requestCancel } from "./leases.ts";
import { admit, audit, insertJob, type SubmitJob } from "./submit.ts";

export interface PipelineTemplate {
  id: string;
  name: string;
  version: number;
  steps: (DagStep & { job: Omit<SubmitJob, "array" | "dependsOn"> })[];
}

export interface RunStep {
  name: string;
  jobId: string;
  dependsOn: DagStep["dependsOn"];
  state: string;
  reason: string | null;
  exitCode: number | null;
  attempt: number;
}

export interface RunView {
  id: string;
  pipelineId: string;
  name: string;
  version: number;
  state: string;
  createdAt: string;
  steps: RunStep[];
}

/** Overall state of a set of jobs: running while any is live, else the worst ending. */
export function rollup(states: string[]): string {
  if (states.some((s) => s === "running" || s === "scheduled")) return "running";
  if (states.some((s) => s === "queued")) return states.every((s) => s === "queued") ? "queued" : "running";
  if (states.every((s) => s === "succeeded")) return "succeeded";
  if (states.some((s) => s === "failed")) return "failed";
  return "cancelled";
}

export function startRun(
  ctx: TenantCtx,
  who: KeyPrincipal,
  t: PipelineTemplate,
  requestId: string,
): Result<{ run: RunView }> {
  const dag = orderSteps(t.steps);
  if (!dag.ok)
    return fail("ValidationFailed", dag.errors.map((e) => e.message).join("; "), { errors: dag.errors });
  const runId = newId("run");
  const byName = new Map(t.steps.map((s) => [s.name, s]));
  const ids = new Map(t.steps.map((s) => [s.name, newId("job")]));
  // Every step passes the policies before anything is created: a run starts whole or not at all.
  const specs = new Map<string, string>();
  for (const name of dag.order) {
    const s = byName.get(name)!;
    const job: SubmitJob = {
      ...s.job,
      labels: { ...s.job.labels, "gantry.pipeline": t.id, "gantry.run": runId, "gantry.step": name },
      dependsOn: s.dependsOn.map((d) => ({ job: ids.get(d.step)!, condition: d.condition })),
    };
    const a = admit(ctx, job, s.job.user || who.name, { pipelineRun: runId, step: name });
    if (!a.ok) return fail(a.code, `step "${name}": ${a.message}`, { errors: a.errors, extra: a.extra });
    specs.set(name, JSON.stringify({ ...a.spec, labels: job.labels }));
  }
  const now = Date.now();
  ctx.tx(() => {
    for (const name of dag.order) {
      const s = byName.get(name)!;
      const dependsOn: DependsOn[] = s.dependsOn.map((d) => ({
        job: ids.get(d.step)!,
        condition: d.condition,
      }));
      insertJob(ctx, {
        id: ids.get(name)!,
        job: { ...s.job, dependsOn },
        user: s.job.user || who.name,
        specJson: specs.get(name)!,
        depsPending: new Set(dependsOn.map((d) => d.job)).size,
        dependsOn,
        arrayId: null,
        arrayIndex: null,
        idempotencyKey: null,
        now,
      });
    }
    ctx.sql.exec(
      "INSERT INTO pipeline_runs (id, pipeline_id, name, version, created_at, steps) VALUES (?, ?, ?, ?, ?, ?)",
      runId,
      t.id,
      t.name,
      t.version,
      now,
      JSON.stringify(t.steps.map((s) => ({ name: s.name, jobId: ids.get(s.name), dependsOn: s.dependsOn }))),
    );
    audit(ctx, who, requestId, "pipeline.run", runId, { pipelineId: t.id, version: t.version });
  });
  ctx.demandChanged();
  return { ok: true, run: runView(ctx, runId)! };
}

export function runView(ctx: TenantCtx, runId: string): RunView | null {
  const r = first<{
    id: string;
    pipeline_id: string;
    name: string;
    version: number;
    created_at: number;
    steps: string;
  }>(ctx.sql, "SELECT * FROM pipeline_runs WHERE id = ?", runId);
  if (!r) return null;
  const steps = (
    JSON.parse(r.steps) as { name: string; jobId: string; dependsOn: DagStep["dependsOn"] }[]
  ).map((s) => {
    const j = ctx.jobs.get(s.jobId);
    return {
      ...s,
      state: j?.state ?? "unknown",
      reason: j?.reason ?? null,
      exitCode: j?.exit_code ?? null,
      attempt: j?.attempt ?? 0,
    };
  });
  return {
    id: r.id,
    pipelineId: r.pipeline_id,
    name: r.name,
    version: r.version,
    state: rollup(steps.map((s) => s.state)),
    createdAt: new Date(r.created_at).toISOString(),
    steps,
  };
}

export function listRuns(ctx: TenantCtx, pipelineId: string, limit = 50): RunView[] {
  return all<{ id: string }>(
    ctx.sql,
    "SELECT id FROM pipeline_runs WHERE pipeline_id = ? ORDER BY created_at DESC LIMIT ?",
    pipelineId,
    limit,
  ).map((r) => runView(ctx, r.id)!);
}

/** Cancel every unfinished job of a set (queued at once; scheduled/running through their agents). */
export function cancelJobs(
  ctx: TenantCtx,
  jobs: JobRow[],
  actor: string,
  audit: { requestId: string; action: string; target: string },
): number {
  let n = 0;
  // Newest first: a job is created after the jobs it depends on, so dependents are cancelled (as
  // Cancelled) before their dependencies could cascade a DependencyFailed onto them.
  const ordered = [...jobs].sort((a, b) => b.seq - a.seq);
  ctx.tx(() => {
    for (const listed of ordered) {
      const j = ctx.jobs.get(listed.id); // re-read: cancelling one may have cancelled its dependents
      if (!j || isTerminal(j.state)) continue;
      n++;
      if (j.state === "queued") {
        const message = `cancelled by ${actor}`;
        ctx.jobs.transition(
          j,
          "cancelled",
          { reason: "Cancelled", message },
          { reason: "Cancelled", message },
        );
      } else if (!j.cancel_requested) requestCancel(ctx, j);
    }
    ctx.outbox.add({
      kind: "audit",
      data: {
        id: newId("aud"),
        at: Date.now(),
        actor,
        tenantId: ctx.tenantId,
        action: audit.action,
        target: audit.target,
        requestId: audit.requestId,
        detail: { cancelled: n },
      },
    });
  });
  if (n) ctx.demandChanged();
  return n;
}

export function runJobs(ctx: TenantCtx, runId: string): JobRow[] | null {
  const r = first<{ steps: string }>(ctx.sql, "SELECT steps FROM pipeline_runs WHERE id = ?", runId);
  if (!r) return null;
  const ids = (JSON.parse(r.steps) as { jobId: string }[]).map((s) => s.jobId);
  return ids.map((id) => ctx.jobs.get(id)).filter((j): j is JobRow => j !== null);
}

export function arrayJobs(ctx: TenantCtx, arrayId: string): JobRow[] {
  return all<JobRow>(ctx.sql, "SELECT * FROM jobs WHERE array_id = ? ORDER BY array_index", arrayId);
}

export function arraySummary(ctx: TenantCtx, arrayId: string) {
  const counts = all<{ state: string; n: number }>(
    ctx.sql,
    "SELECT state, count(*) AS n FROM jobs WHERE array_id = ? GROUP BY state",
    arrayId,
  );
  if (counts.length === 0) return null;
  const byState: Record<string, number> = {
    queued: 0,
    scheduled: 0,
    running: 0,
    succeeded: 0,
    failed: 0,
    cancelled: 0,
  };
  for (const c of counts) byState[c.state] = c.n;
  const head = first<JobRow>(
    ctx.sql,
    "SELECT * FROM jobs WHERE array_id = ? ORDER BY array_index LIMIT 1",
    arrayId,
  )!;
  const size = counts.reduce((a, c) => a + c.n, 0);
  return {
    id: arrayId,
    name: (JSON.parse(head.spec) as { name: string }).name,
    size,
    counts: byState,
    state: rollup(Object.entries(byState).flatMap(([s, n]) => (n > 0 ? [s] : []))),
    submittedAt: new Date(head.submitted_at).toISOString(),
  };
}
