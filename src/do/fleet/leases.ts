// The fleet side of leases: recording the ones the scheduler placed (refused when the GPUs are gone), and
// reconciling a heartbeat's view of what the agent runs with what this shard says it should.
import type { AssignmentSpec } from "../tenant/leases.ts";
import type { AgentUpdate } from "./reports.ts";
import type { FleetStore, LeaseRow } from "./store.ts";

export interface AssignItem {
  placementId: string;
  workerId: string;
  indices: number[];
  assignment: AssignmentSpec;
}

export interface Assignment {
  jobId: string;
  lease: number;
  gpuIndices: number[];
  spec: AssignmentSpec["spec"] & { tenantId: string; gpuType: string };
}

/** Sends a worker its undelivered leases over the live channel; those that went out are marked delivered. */
export function pushFresh(
  store: FleetStore,
  sql: SqlStorage,
  workerId: string,
  now: number,
  send: (msg: { type: "assignments"; assignments: Assignment[] }) => boolean,
): void {
  const fresh = store
    .leasesOf(workerId)
    .filter((l) => l.state === "assigned" && !l.delivered_at && !l.cancel);
  if (!fresh.length || !send({ type: "assignments", assignments: fresh.map(toAssignment) })) return;
  for (const l of fresh) sql.exec("UPDATE leases SET delivered_at = ? WHERE job_id = ?", now, l.job_id);
}

export function toAssignment(l: LeaseRow): Assignment {
  const a = JSON.parse(l.assignment) as AssignmentSpec;
  return {
    jobId: l.job_id,
    lease: l.lease,
    gpuIndices: JSON.parse(l.gpu_indices) as number[],
    spec: { ...a.spec, tenantId: a.tenantId, gpuType: a.gpuType },
  };
}

/** Inside a transaction: one lease row per placement whose worker still takes work and has those GPUs free. */
export function recordLeases(store: FleetStore, sql: SqlStorage, items: AssignItem[], now: number) {
  const results: { placementId: string; ok: boolean; reason?: string }[] = [];
  const touched = new Set<string>();
  for (const it of items) {
    const w = store.worker(it.workerId);
    if (!w || !store.schedulable(w)) {
      results.push({ placementId: it.placementId, ok: false, reason: "WorkerUnavailable" });
      continue;
    }
    const busy = store.busyIndices(w.id);
    const exists = new Set(store.gpus(w).map((g) => g.index));
    if (it.indices.some((i) => busy.has(i) || !exists.has(i))) {
      results.push({ placementId: it.placementId, ok: false, reason: "GpusBusy" });
      continue;
    }
    const a = it.assignment;
    sql.exec(
      `INSERT OR REPLACE INTO leases (job_id, tenant_id, lease, worker_id, gpu_indices, gpu_type, assignment, state, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'assigned', ?)`,
      a.jobId,
      a.tenantId,
      a.lease,
      w.id,
      JSON.stringify(it.indices),
      a.gpuType,
      JSON.stringify(a),
      now,
    );
    store.bump(w.id);
    touched.add(w.id);
    results.push({ placementId: it.placementId, ok: true });
  }
  return { results, touched };
}

/** A lease column change reconcile decided on; the caller writes them in one transaction, if any. */
export type LeaseWrite =
  | { jobId: string; set: "running" }
  | { jobId: string; set: "delivered_at" | "missing_since"; at: number };

/**
 * Jobs the agent runs without holding their lease are to be stopped; leases it never started are
 * (re)delivered; cancelled ones it never started are dropped; a started job the agent stopped mentioning
 * for two heartbeats is lost. (A heartbeat may omit a job whose final report is still in flight, hence the
 * grace.) Reads only: most heartbeats change nothing, and a transaction opened for nothing costs as much
 * as the reads (bench/profile.ts heartbeat). The caller writes `writes` in the same synchronous turn.
 */
export function reconcile(
  store: FleetStore,
  workerId: string,
  runningList: { jobId: string; lease: number }[],
  updates: AgentUpdate[],
  now: number,
  heartbeatMs: number,
): { assignments: Assignment[]; cancel: string[]; lost: LeaseRow[]; writes: LeaseWrite[] } {
  const running = new Map(runningList.map((r) => [r.jobId, r.lease]));
  const reported = new Set(updates.map((u) => u.jobId));
  const cancel = new Set<string>();
  const assignments: Assignment[] = [];
  const lost: LeaseRow[] = [];
  const writes: LeaseWrite[] = [];
  for (const [jobId, lease] of running) {
    const l = store.leaseKey(jobId);
    if (!l || l.lease !== lease || l.worker_id !== workerId) cancel.add(jobId);
  }
  for (const l of store.leasesOf(workerId)) {
    if (running.get(l.job_id) === l.lease) {
      if (l.cancel) cancel.add(l.job_id);
      if (l.state !== "running" || l.missing_since) writes.push({ jobId: l.job_id, set: "running" });
      continue;
    }
    if (reported.has(l.job_id)) continue;
    if (l.state === "assigned") {
      if (l.cancel && (!l.delivered_at || l.delivered_at < now - 1000)) lost.push(l);
      else if (!l.cancel) {
        assignments.push(toAssignment(l));
        writes.push({ jobId: l.job_id, set: "delivered_at", at: now });
      }
    } else if (!l.missing_since) {
      writes.push({ jobId: l.job_id, set: "missing_since", at: now });
    } else if (l.missing_since < now - 2 * heartbeatMs) {
      lost.push(l);
    }
  }
  return { assignments, cancel: [...cancel], lost, writes };
}

/** Inside a transaction: what reconcile decided. */
export function writeLeases(sql: SqlStorage, writes: LeaseWrite[]): void {
  for (const w of writes) {
    if (w.set === "running")
      sql.exec("UPDATE leases SET state = 'running', missing_since = NULL WHERE job_id = ?", w.jobId);
    else sql.exec(`UPDATE leases SET ${w.set} = ? WHERE job_id = ?`, w.at, w.jobId);
  }
}
