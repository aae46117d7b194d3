// Job dependencies (Slurm's afterok/afterany): when a job ends, each job waiting on it either loses one
// pending dependency (and becomes ready at zero) or, if its condition can no longer hold, is cancelled with
// DependencyFailed — which ends it too, so the cancellation cascades down the chain in the same transaction.
import { isTerminal } from "../../domain/job.ts";
import { all } from "../../lib/sql.ts";
import type { TenantCtx } from "./context.ts";
import type { JobRow } from "./jobs.ts";

export function resolveDependents(ctx: TenantCtx, ended: JobRow): void {
  if (!isTerminal(ended.state)) return;
  const waiting = all<{ job_id: string; condition: string }>(
    ctx.sql,
    "SELECT job_id, condition FROM deps WHERE dep_id = ?",
    ended.id,
  );
  for (const d of waiting) {
    const j = ctx.jobs.get(d.job_id);
    if (j?.state !== "queued" || j.deps_pending <= 0) continue;
    if (d.condition === "finished" || ended.state === "succeeded") {
      ctx.jobs.patch(j, { deps_pending: j.deps_pending - 1 });
      continue;
    }
    const message = `dependency ${ended.id} ended ${ended.state}; condition "succeeded" can no longer hold`;
    ctx.jobs.transition(
      j,
      "cancelled",
      { reason: "DependencyFailed", message },
      { reason: "DependencyFailed", message },
    );
  }
  if (waiting.length) ctx.demandChanged();
}
