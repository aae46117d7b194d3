// Worker reports (heartbeat batches and single status calls), fenced twice: the fleet checks the lease it
// holds for the job, and the tenant's object checks the job's current lease before any transition.
import type { Release } from "../../domain/release.ts";
import type { WorkerUpdate } from "../tenant/leases.ts";
import type { FleetStore, LeaseKey } from "./store.ts";

export interface AgentUpdate {
  jobId: string;
  lease: number;
  state: "running" | "succeeded" | "failed" | "cancelled";
  exitCode?: number | null;
  message?: string | null;
  reason?: string | null;
  logTail?: string | null;
}

export interface Rejection {
  jobId: string;
  code: "StaleLease" | "InvalidTransition" | "NotFound";
  message: string;
}

export type ApplyToTenant = (
  tenantId: string,
  updates: WorkerUpdate[],
) => Promise<{
  results: {
    jobId: string;
    ok: boolean;
    code?: string;
    message?: string;
    state?: string;
    released: boolean;
  }[];
  /** GPUs the tenant gave back, for the scheduler along with the capacity freed here. */
  release: Release | null;
}>;

/**
 * Forward each update to its tenant (one call per tenant for the whole batch), then free the GPUs of every
 * lease the tenant says is over. Returns the refused updates (everything else is acknowledged) and what the
 * tenants gave back, which the capacity push carries to the scheduler.
 */
export async function applyReports(
  store: FleetStore,
  sql: SqlStorage,
  storage: DurableObjectStorage,
  workerId: string,
  updates: AgentUpdate[],
  toTenant: ApplyToTenant,
): Promise<{ rejected: Rejection[]; accepted: string[]; releases: Release[] }> {
  const releases: Release[] = [];
  const rejected: Rejection[] = [];
  const accepted: string[] = [];
  const byTenant = new Map<string, { u: AgentUpdate; l: LeaseKey }[]>();
  for (const u of updates) {
    const l = store.leaseKey(u.jobId);
    if (!l || l.lease !== u.lease || l.worker_id !== workerId) {
      const done = sql
        .exec<{ state: string }>(
          "SELECT state FROM released WHERE job_id = ? AND lease = ?",
          u.jobId,
          u.lease,
        )
        .toArray()[0];
      // The same final report again (its first answer was lost): same answer. A lease released for any
      // other reason (worker declared dead, cancelled before it started) stays refused.
      if (done && done.state === u.state) accepted.push(u.jobId);
      else {
        rejected.push({
          jobId: u.jobId,
          code: "StaleLease",
          message: `this worker does not hold lease ${u.lease} of job ${u.jobId}`,
        });
      }
      continue;
    }
    const g = byTenant.get(l.tenant_id) ?? [];
    g.push({ u, l });
    byTenant.set(l.tenant_id, g);
  }
  await Promise.all(
    [...byTenant].map(async ([tenantId, group]) => {
      const { results, release } = await toTenant(
        tenantId,
        group.map(({ u }) => ({ ...u, workerId })),
      );
      if (release) releases.push(release);
      const now = Date.now();
      storage.transactionSync(() => {
        results.forEach((r, i) => {
          const { l, u } = group[i]!;
          const current = store.leaseKey(l.job_id);
          const same = current && current.lease === l.lease;
          if (!r.ok) {
            rejected.push({
              jobId: r.jobId,
              code: (r.code as Rejection["code"]) ?? "StaleLease",
              message: r.message ?? "refused",
            });
            if (same && r.released) store.releaseLease(current, "refused", now);
            return;
          }
          accepted.push(r.jobId);
          if (!same) return;
          // Keyed by what the agent reported, so the identical report repeated gets the identical answer.
          if (r.released) store.releaseLease(current, u.state, now);
          else if (r.state === "running" && current.state !== "running") {
            sql.exec("UPDATE leases SET state = 'running', missing_since = NULL WHERE job_id = ?", l.job_id);
          }
        });
      });
    }),
  );
  return { rejected, accepted, releases };
}
