// Fleet shard storage: its workers (liveness, GPUs, token hash) and the leases they hold. The lease table is
// the truth about which GPUs are busy; free capacity is derived from it, never counted separately.
import type { WorkerCapacity } from "../../domain/capacity.ts";
import { gpuTypeKey } from "../../domain/job.ts";
import { type Deadlines, LivenessBook } from "../../domain/liveness.ts";
import type { WorkerRecord } from "../../lib/history.ts";
import { all, first } from "../../lib/sql.ts";

export const FLEET_SCHEMA: readonly string[] = [
  `CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    pool_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    gpus TEXT NOT NULL,
    labels TEXT NOT NULL,
    agent_version TEXT,
    state TEXT NOT NULL,
    drain INTEGER NOT NULL DEFAULT 0,
    registered_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    suspect_at INTEGER,
    dead_at INTEGER,
    version INTEGER NOT NULL
  )`,
  "CREATE INDEX workers_suspect ON workers (suspect_at) WHERE suspect_at IS NOT NULL",
  "CREATE INDEX workers_dead ON workers (dead_at) WHERE dead_at IS NOT NULL",
  `CREATE TABLE leases (
    job_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    lease INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    gpu_indices TEXT NOT NULL,
    gpu_type TEXT NOT NULL,
    assignment TEXT NOT NULL,
    state TEXT NOT NULL,
    delivered_at INTEGER,
    missing_since INTEGER,
    cancel INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  )`,
  "CREATE INDEX leases_worker ON leases (worker_id)",
  // Final answers for leases already released, so an agent repeating a report gets the same 200.
  "CREATE TABLE released (job_id TEXT NOT NULL, lease INTEGER NOT NULL, state TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (job_id, lease))",
  "CREATE INDEX released_at ON released (at)",
  "CREATE TABLE capacity_dirty (worker_id TEXT PRIMARY KEY)",
];

export type WorkerState = "starting" | "alive" | "suspect" | "dead" | "left";

export interface GpuInfo {
  index: number;
  model: string;
  type: string;
  memoryMiB: number | null;
  uuid: string | null;
}

export interface WorkerRow {
  id: string;
  pool_id: string;
  hostname: string;
  token_hash: string;
  gpus: string;
  labels: string;
  agent_version: string | null;
  state: WorkerState;
  drain: number;
  registered_at: number;
  last_seen: number;
  suspect_at: number | null;
  dead_at: number | null;
  version: number;
}

export interface LeaseRow {
  job_id: string;
  tenant_id: string;
  lease: number;
  worker_id: string;
  gpu_indices: string;
  gpu_type: string;
  assignment: string;
  state: "assigned" | "running";
  delivered_at: number | null;
  missing_since: number | null;
  cancel: number;
  created_at: number;
}

export type LeaseKey = Pick<LeaseRow, "job_id" | "tenant_id" | "lease" | "worker_id" | "state">;

export interface RegisterInput {
  id: string;
  poolId: string;
  hostname: string;
  tokenHash: string;
  gpus: GpuInfo[];
  labels: Record<string, string>;
  agentVersion: string | null;
}

export const LIVE: ReadonlySet<WorkerState> = new Set(["starting", "alive", "suspect"]);

export class FleetStore {
  constructor(
    private sql: SqlStorage,
    readonly shard: string,
  ) {}

  /** Exact deadlines of workers heard from since their padded ones were stored. */
  readonly liveness = new LivenessBook();

  /** When the worker was last heard from: memory knows better than its row. */
  lastSeen(w: WorkerRow): number {
    return this.liveness.get(w.id)?.lastSeen ?? w.last_seen;
  }

  insertWorker(w: RegisterInput, now: number, d: Deadlines): void {
    this.sql.exec(
      `INSERT INTO workers (id, pool_id, hostname, token_hash, gpus, labels, agent_version, state, drain,
         registered_at, last_seen, suspect_at, dead_at, version)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'starting', 0, ?, ?, ?, ?, 1)`,
      w.id,
      w.poolId,
      w.hostname,
      w.tokenHash,
      JSON.stringify(w.gpus),
      JSON.stringify(w.labels),
      w.agentVersion,
      now,
      now,
      d.suspectAt,
      d.deadAt,
    );
  }

  /**
   * Rows read once and kept: every heartbeat needs its worker's row, and re-reading it was most of a
   * heartbeat's storage time. Every write to a worker goes through forget() or remember().
   */
  private rows = new Map<string, WorkerRow>();

  worker(id: string): WorkerRow | null {
    const cached = this.rows.get(id);
    if (cached) return cached;
    const r = first<WorkerRow>(this.sql, "SELECT * FROM workers WHERE id = ?", id);
    if (r) this.rows.set(id, r);
    return r;
  }

  /** A worker's row changed in storage (or may have): read it again next time. No id: all of them. */
  forget(id?: string): void {
    if (id === undefined) this.rows.clear();
    else this.rows.delete(id);
  }

  /** The caller wrote these fields (outside a transaction that could roll back): keep the copy current. */
  remember(id: string, fields: Partial<WorkerRow>): void {
    const r = this.rows.get(id);
    if (r) Object.assign(r, fields);
  }

  workers(): WorkerRow[] {
    return all<WorkerRow>(this.sql, "SELECT * FROM workers ORDER BY id");
  }

  leasesOf(workerId: string): LeaseRow[] {
    return all<LeaseRow>(this.sql, "SELECT * FROM leases WHERE worker_id = ? ORDER BY created_at", workerId);
  }

  lease(jobId: string): LeaseRow | null {
    return first<LeaseRow>(this.sql, "SELECT * FROM leases WHERE job_id = ?", jobId);
  }

  /** The lease without its assignment text: what fencing a report needs, read twice per report. */
  leaseKey(jobId: string): LeaseKey | null {
    return first<LeaseKey>(
      this.sql,
      "SELECT job_id, tenant_id, lease, worker_id, state FROM leases WHERE job_id = ?",
      jobId,
    );
  }

  gpus(w: WorkerRow): GpuInfo[] {
    return JSON.parse(w.gpus) as GpuInfo[];
  }

  busyIndices(workerId: string): Set<number> {
    const busy = new Set<number>();
    for (const l of all<{ gpu_indices: string }>(
      this.sql,
      "SELECT gpu_indices FROM leases WHERE worker_id = ?",
      workerId,
    ))
      for (const i of JSON.parse(l.gpu_indices) as number[]) busy.add(i);
    return busy;
  }

  schedulable(w: WorkerRow): boolean {
    return (w.state === "alive" || w.state === "starting") && w.drain === 0;
  }

  capacity(w: WorkerRow): WorkerCapacity {
    const busy = this.busyIndices(w.id);
    const gpus = this.gpus(w);
    return {
      workerId: w.id,
      shard: this.shard,
      poolId: w.pool_id,
      gpus: gpus.map((g) => ({ index: g.index, type: g.type, typeKey: gpuTypeKey(g.type) })),
      free: gpus.map((g) => g.index).filter((i) => !busy.has(i)),
      schedulable: this.schedulable(w),
      version: w.version,
    };
  }

  markDirty(workerId: string): void {
    this.sql.exec("INSERT OR IGNORE INTO capacity_dirty (worker_id) VALUES (?)", workerId);
  }

  /** Bump the worker's version: the scheduler ignores capacity reports older than what it has seen. */
  bump(workerId: string): void {
    this.sql.exec("UPDATE workers SET version = version + 1 WHERE id = ?", workerId);
    this.forget(workerId);
    this.markDirty(workerId);
  }

  releaseLease(l: Pick<LeaseRow, "job_id" | "lease" | "worker_id">, finalState: string, now: number): void {
    this.sql.exec("DELETE FROM leases WHERE job_id = ? AND lease = ?", l.job_id, l.lease);
    this.sql.exec(
      "INSERT OR REPLACE INTO released (job_id, lease, state, at) VALUES (?, ?, ?, ?)",
      l.job_id,
      l.lease,
      finalState,
      now,
    );
    this.bump(l.worker_id);
  }

  record(w: WorkerRow): WorkerRecord {
    return {
      id: w.id,
      poolId: w.pool_id,
      hostname: w.hostname,
      gpus: JSON.parse(w.gpus),
      labels: JSON.parse(w.labels) as Record<string, string>,
      state: w.drain && LIVE.has(w.state) ? `${w.state}/draining` : w.state,
      registeredAt: w.registered_at,
      lastSeenAt: this.lastSeen(w),
      updatedAt: Date.now(),
      version: w.version,
    };
  }

  /** Workers by state, GPUs and free GPUs of the live ones. */
  gauges() {
    const workersByState: Record<string, number> = {};
    let gpus = 0;
    let freeGpus = 0;
    for (const w of this.workers()) {
      const key = w.drain && LIVE.has(w.state) ? "draining" : w.state;
      workersByState[key] = (workersByState[key] ?? 0) + 1;
      if (LIVE.has(w.state)) {
        const c = this.capacity(w);
        gpus += c.gpus.length;
        freeGpus += c.free.length;
      }
    }
    return { shard: this.shard, workersByState, gpus, freeGpus };
  }

  /** The admin view of a worker: GPUs, free indices, state, leases. */
  describe(w: WorkerRow) {
    const cap = this.capacity(w);
    return {
      id: w.id,
      poolId: w.pool_id,
      hostname: w.hostname,
      state: w.state,
      draining: w.drain === 1,
      gpus: this.gpus(w),
      freeGpuIndices: cap.free,
      labels: JSON.parse(w.labels) as Record<string, string>,
      agentVersion: w.agent_version,
      registeredAt: new Date(w.registered_at).toISOString(),
      lastSeenAt: new Date(this.lastSeen(w)).toISOString(),
      leases: this.leasesOf(w.id).map((l) => ({
        jobId: l.job_id,
        tenantId: l.tenant_id,
        lease: l.lease,
        gpuIndices: JSON.parse(l.gpu_indices) as number[],
        state: l.state,
        cancelRequested: l.cancel === 1,
      })),
    };
  }
}

export type WorkerView = ReturnType<FleetStore["describe"]>;
