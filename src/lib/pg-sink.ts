// Applies outbox batches to Postgres. Every write is an idempotent upsert keyed by id, and snapshots only
// replace older versions, so a batch delivered twice (alarm retried after a crash) changes nothing.
// Each kind goes as ONE JSON parameter expanded by jsonb_populate_recordset: the statement text is fixed
// and tiny, whatever the batch size (building thousands of placeholders was a tenth of the Worker's CPU).
import { sql } from "drizzle-orm";
import type { OutboxItem } from "./history.ts";
import type { Db, Q } from "./pg.ts";
import { rowsJson } from "./pg-json.ts";

const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(ms).toISOString());

/** Keep the newest snapshot per key: one INSERT … ON CONFLICT may not touch the same row twice. */
function latest<T>(items: T[], key: (t: T) => string, version: (t: T) => number): T[] {
  const m = new Map<string, T>();
  for (const it of items) {
    const k = key(it);
    const prev = m.get(k);
    if (!prev || version(it) >= version(prev)) m.set(k, it);
  }
  return [...m.values()];
}

interface Upsert {
  table: string;
  conflict: string;
  /** Columns replaced on conflict (none: DO NOTHING). */
  update?: string[];
  /** Only replace when this holds (e.g. the incoming version is newer). */
  where?: string;
}

const CHUNK = 1000;

async function upsert(q: Q, u: Upsert, rows: Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const list = cols.map((c) => `"${c}"`).join(", ");
  const action = u.update?.length
    ? `DO UPDATE SET ${u.update.map((c) => `"${c}" = EXCLUDED."${c}"`).join(", ")}${u.where ? ` WHERE ${u.where}` : ""}`
    : "DO NOTHING";
  const head = `INSERT INTO ${u.table} (${list}) SELECT ${list} FROM jsonb_populate_recordset(NULL::${u.table}, `;
  const tail = `::jsonb) ON CONFLICT (${u.conflict}) ${action}`;
  for (let i = 0; i < rows.length; i += CHUNK) {
    const json = rowsJson(rows.slice(i, i + CHUNK));
    await q.execute(sql`${sql.raw(head)}${json}${sql.raw(tail)}`);
  }
}

const all = (cols: string[], keys: string[]) => cols.filter((c) => !keys.includes(c));

const KINDS = new Set(["job", "event", "log", "usage", "audit", "allocation", "worker"]);

export async function applyOutbox(db: Db, raw: OutboxItem[]): Promise<void> {
  // Never drop silently: an item of a kind this sink does not know is a bug, and must stay in the outbox.
  const unknown = raw.find((i) => !KINDS.has(i.kind));
  if (unknown) throw new Error(`outbox item of unknown kind "${unknown.kind}"`);
  type DataOf<K extends OutboxItem["kind"]> = Extract<OutboxItem, { kind: K }>["data"];
  const by = <K extends OutboxItem["kind"]>(k: K): DataOf<K>[] =>
    raw.filter((i) => i.kind === k).map((i) => i.data as unknown as DataOf<K>);

  const jobRows = latest(
    by("job"),
    (j) => j.id,
    (j) => j.version,
  ).map((j) => ({
    id: j.id,
    tenant_id: j.tenantId,
    name: j.name,
    user_name: j.user,
    state: j.state,
    priority: j.priority,
    gpus: j.gpus,
    gpu_type: j.gpuType,
    command: j.command,
    env: j.env,
    labels: j.labels,
    max_runtime_seconds: j.maxRuntimeSeconds,
    max_retries: j.maxRetries,
    attempt: j.attempt,
    lease: j.lease,
    exit_code: j.exitCode,
    reason: j.reason,
    message: j.message,
    worker_id: j.workerId,
    gpu_indices: j.gpuIndices,
    assigned_gpu_type: j.assignedGpuType,
    array_id: j.arrayId,
    array_index: j.arrayIndex,
    depends_on: j.dependsOn ?? null,
    warnings: j.warnings ?? null,
    policy_versions: j.policyVersions ?? null,
    idempotency_key: j.idempotencyKey,
    submitted_at: iso(j.submittedAt),
    started_at: iso(j.startedAt),
    finished_at: iso(j.finishedAt),
    updated_at: iso(j.updatedAt),
    version: j.version,
  }));
  const eventRows = by("event").map((e) => ({
    tenant_id: e.tenantId,
    seq: e.seq,
    job_id: e.jobId,
    at: iso(e.at),
    from_state: e.fromState,
    to_state: e.toState,
    reason: e.reason,
    message: e.message,
    attempt: e.attempt,
    lease: e.lease,
    worker_id: e.workerId,
    exit_code: e.exitCode,
  }));
  const logRows = latest(
    by("log"),
    (l) => l.jobId,
    (l) => l.updatedAt,
  ).map((l) => ({
    job_id: l.jobId,
    tenant_id: l.tenantId,
    attempt: l.attempt,
    tail: l.tail,
    updated_at: iso(l.updatedAt),
  }));
  const usageRows = by("usage").map((u) => ({
    id: u.id,
    tenant_id: u.tenantId,
    job_id: u.jobId,
    user_name: u.user,
    gpu_type: u.gpuType,
    gpus: u.gpus,
    started_at: iso(u.startedAt),
    ended_at: iso(u.endedAt),
  }));
  const auditRows = by("audit").map((a) => ({
    id: a.id,
    at: iso(a.at),
    actor: a.actor,
    tenant_id: a.tenantId,
    action: a.action,
    target: a.target,
    request_id: a.requestId,
    detail: a.detail ?? null,
  }));
  const allocRows = latest(
    by("allocation"),
    (a) => a.id,
    (a) => (a.releasedAt ? 1 : 0),
  ).map((a) => ({
    id: a.id,
    tenant_id: a.tenantId,
    gpus: a.gpus,
    gpu_type: a.gpuType,
    note: a.note,
    created_at: iso(a.createdAt),
    released_at: iso(a.releasedAt),
  }));
  const workerRows = latest(
    by("worker"),
    (w) => w.id,
    (w) => w.version,
  ).map((w) => ({
    id: w.id,
    pool_id: w.poolId,
    hostname: w.hostname,
    gpus: w.gpus,
    labels: w.labels,
    state: w.state,
    registered_at: iso(w.registeredAt),
    last_seen_at: iso(w.lastSeenAt),
    updated_at: iso(w.updatedAt),
    version: w.version,
  }));

  await db.transaction(async (tx) => {
    if (jobRows.length) {
      const cols = Object.keys(jobRows[0]!);
      await upsert(
        tx,
        {
          table: "jobs",
          conflict: "id",
          update: all(cols, ["id"]),
          where: "jobs.version < EXCLUDED.version",
        },
        jobRows,
      );
    }
    await upsert(tx, { table: "job_events", conflict: "tenant_id, seq" }, eventRows);
    if (logRows.length) {
      await upsert(
        tx,
        {
          table: "job_logs",
          conflict: "job_id",
          update: ["tenant_id", "attempt", "tail", "updated_at"],
          where: "job_logs.updated_at <= EXCLUDED.updated_at",
        },
        logRows,
      );
    }
    await upsert(tx, { table: "usage_records", conflict: "id" }, usageRows);
    await upsert(tx, { table: "audit_log", conflict: "id" }, auditRows);
    if (allocRows.length) {
      await upsert(
        tx,
        { table: "quota_allocations", conflict: "id", update: all(Object.keys(allocRows[0]!), ["id"]) },
        allocRows,
      );
    }
    if (workerRows.length) {
      await upsert(
        tx,
        {
          table: "workers",
          conflict: "id",
          update: all(Object.keys(workerRows[0]!), ["id"]),
          where: "workers.version < EXCLUDED.version",
        },
        workerRows,
      );
    }
  });
}
