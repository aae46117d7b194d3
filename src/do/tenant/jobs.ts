// The tenant's jobs in SQLite and the one function that changes their state. Everything that must move
// together with a transition — quota, decayed usage, the ready queue, the event, the outbox rows — happens
// inside `transition`, which callers run inside ctx.storage.transactionSync.
import {
  canTransition,
  gpuTypeKey,
  HOLDS_QUOTA,
  isTerminal,
  type JobState,
  priorityName,
} from "../../domain/job.ts";
import type { EventRecord, JobRecord } from "../../lib/history.ts";
import type { Outbox } from "../../lib/outbox.ts";
import { all, first, type Meta, type Row } from "../../lib/sql.ts";
import {
  type ChangeListener,
  COLUMNS,
  EVENT_COLUMNS,
  type EventInfo,
  eventRecord,
  INSERT_COLUMNS,
  insertSql,
  type JobRow,
  jobRecord,
  updateSql,
} from "./job-row.ts";
import type { Ledger } from "./ledger.ts";

export type { ChangeListener, EventInfo, JobRow, StoredSpec } from "./job-row.ts";
export { parseSpec } from "./job-row.ts";

/** shape, priority, user, change in ready jobs */
type ReadyDelta = [string, number, string, number];

/** Rows kept in memory: a job is read by id at each step of its life (claim, running, done) within seconds. */
const CACHED_ROWS = 4096;

export class JobStore {
  private listeners: ChangeListener[] = [];
  /**
   * Write-through cache of rows by id, newest writes last. This store is the only writer of the jobs table
   * (insert, write; prune calls forget), so a cached row is the stored row, except after a transaction that
   * rolled back: abort() empties it. Rows go in and out as copies, so a caller changing the object it got
   * changes nothing here.
   */
  private rows = new Map<string, JobRow>();
  /** What the transaction in progress has gathered (see begin()); null outside one. */
  private pending: {
    counts: Map<string, number>;
    ready: Map<string, ReadyDelta>;
    events: unknown[][];
  } | null = null;

  constructor(
    private sql: SqlStorage,
    private meta: Meta,
    private outbox: Outbox,
    private ledger: Ledger,
    private tenantId: () => string,
  ) {}

  onChange(l: ChangeListener): void {
    this.listeners.push(l);
  }

  get(id: string): JobRow | null {
    const hit = this.rows.get(id);
    if (hit) return { ...hit };
    const row = first<JobRow>(this.sql, "SELECT * FROM jobs WHERE id = ?", id);
    if (row) this.keep(row);
    return row;
  }

  /** Rows deleted from the table (retention): not to be served from memory any more. */
  forget(ids: string[]): void {
    for (const id of ids) this.rows.delete(id);
  }

  private keep(row: JobRow): void {
    // As SELECT * returns it: every column, NULL where a new row leaves one unset.
    const copy = {} as Record<keyof JobRow, unknown>;
    for (const c of INSERT_COLUMNS) copy[c] = row[c] ?? null;
    this.rows.delete(row.id); // re-inserted last: the newest writes are evicted last
    this.rows.set(row.id, copy as unknown as JobRow);
    if (this.rows.size > CACHED_ROWS) this.rows.delete(this.rows.keys().next().value!);
  }

  insert(
    row: Omit<JobRow, "seq" | "state" | "ready" | "version" | "updated_at">,
    info: EventInfo = { reason: "Submitted" },
  ): JobRow {
    const job: JobRow = {
      ...row,
      seq: this.meta.next("job_seq"),
      state: "queued",
      ready: 0,
      updated_at: row.submitted_at,
      version: 1,
    };
    job.ready = this.isReady(job, job.submitted_at) ? 1 : 0;
    // Only the columns this row sets: a new job leaves a dozen of them NULL (lease, worker, times...), and
    // every bound value has a cost. The statement text per column set is built once.
    const cols = INSERT_COLUMNS.filter((c) => job[c] != null);
    this.sql.exec(insertSql(cols), ...cols.map((c) => job[c]));
    this.keep(job);
    if (job.ready) this.readyDelta(job, 1);
    this.countDelta("queued", job.priority, 1);
    this.record(job, null, info);
    return job;
  }

  /** The single place a job changes state. Throws on a transition the state machine forbids. */
  transition(job: JobRow, to: JobState, patch: Partial<JobRow>, info: EventInfo, now = Date.now()): JobRow {
    if (!canTransition(job.state, to))
      throw new Error(`invalid transition ${job.state} → ${to} for ${job.id}`);
    const next: JobRow = { ...job, ...patch, state: to, updated_at: now, version: job.version + 1 };
    if (isTerminal(to)) {
      next.finished_at = now;
      next.check_at = null;
      next.not_before = null;
    }
    if (to === "queued") {
      next.worker_id = null;
      next.shard = null;
      next.gpu_indices = null;
      next.assigned_type = null;
      next.check_at = null;
      next.scheduled_at = null;
      next.started_at = null;
      next.cancel_requested = 0;
    }
    next.ready = this.isReady(next, now) ? 1 : 0;

    const held = HOLDS_QUOTA.has(job.state);
    const holds = HOLDS_QUOTA.has(to);
    if (held && !holds) this.release(job, now);
    if (!held && holds) {
      this.ledger.take(gpuTypeKey(next.assigned_type), this.typeName(next), next.gpus);
      this.ledger.accrue(next.user, next.gpus, now);
    }
    if (job.ready !== next.ready) this.readyDelta(job, next.ready ? 1 : -1);
    this.countDelta(job.state, job.priority, -1);
    this.countDelta(to, job.priority, 1);
    this.write(job, next);
    this.record(next, job.state, info, now);
    return next;
  }

  /** Update fields that are not a state change (ready flag maintenance included). */
  patch(job: JobRow, patch: Partial<JobRow>, now = Date.now()): JobRow {
    const next: JobRow = { ...job, ...patch };
    next.ready = this.isReady(next, now) ? 1 : 0;
    if (job.ready !== next.ready) this.readyDelta(job, next.ready ? 1 : -1);
    this.write(job, next);
    return next;
  }

  /** Quota and GPUs given back, usage accounted: one usage record per (job, lease). */
  private release(job: JobRow, now: number): void {
    this.ledger.give(gpuTypeKey(job.assigned_type), job.gpus);
    this.ledger.accrue(job.user, -job.gpus, now);
    const start = job.scheduled_at ?? now;
    this.outbox.add({
      kind: "usage",
      data: {
        id: `${job.id}:${job.lease}`,
        tenantId: this.tenantId(),
        jobId: job.id,
        user: job.user,
        gpuType: this.typeName(job),
        gpus: job.gpus,
        startedAt: start,
        endedAt: Math.max(now, start),
      },
    });
  }

  /** `assigned_type` is the GPU type's display name ("H100") of the worker the job was placed on. */
  private typeName(j: JobRow): string {
    return j.assigned_type ?? j.type_key;
  }

  private isReady(j: JobRow, now: number): boolean {
    return j.state === "queued" && j.deps_pending === 0 && (j.not_before == null || j.not_before <= now);
  }

  private readyDelta(j: JobRow, d: 1 | -1): void {
    if (this.pending) {
      const k = `${j.shape}|${j.priority}|${j.user}`;
      const e = this.pending.ready.get(k);
      if (e) e[3] += d;
      else this.pending.ready.set(k, [j.shape, j.priority, j.user, d]);
      return;
    }
    this.writeReady([[j.shape, j.priority, j.user, d]]);
  }

  /**
   * The ready-queue counters the transaction has changed so far, written now. Placement reads
   * ready_users inside its transaction, so it calls this first (pickJob); commit() calls it too.
   */
  settleReady(): void {
    const p = this.pending;
    if (!p || p.ready.size === 0) return;
    const rows = [...p.ready.values()].filter((r) => r[3] !== 0);
    p.ready.clear();
    if (rows.length > 0) this.writeReady(rows);
  }

  private writeReady(rows: ReadyDelta[]): void {
    this.sql.exec(
      `INSERT INTO ready_users (shape, priority, user, n)
       SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?) WHERE true
       ON CONFLICT (shape, priority, user) DO UPDATE SET n = n + excluded.n`,
      JSON.stringify(rows),
    );
    if (rows.some((r) => r[3] < 0)) this.sql.exec("DELETE FROM ready_users WHERE n <= 0");
  }

  private countDelta(state: JobState, priority: number, d: number): void {
    if (this.pending) {
      const k = `${state}|${priority}`;
      this.pending.counts.set(k, (this.pending.counts.get(k) ?? 0) + d);
      return;
    }
    this.sql.exec(
      `INSERT INTO state_counts (state, priority, n) VALUES (?, ?, ?)
       ON CONFLICT (state, priority) DO UPDATE SET n = n + excluded.n`,
      state,
      priority,
      d,
    );
  }

  /**
   * A transaction starts (see tx() in lib/sql.ts): state counts, ready-queue counters and event rows are
   * gathered and written at its end, one statement each, instead of one statement per job. Nothing reads
   * state_counts or events inside a write transaction (reads, summaries and the live event replay run
   * outside one); placement reads ready_users and settles it first (settleReady).
   */
  begin(): void {
    this.pending ??= { counts: new Map(), ready: new Map(), events: [] };
  }

  commit(): void {
    this.settleReady();
    const p = this.pending;
    this.pending = null;
    if (!p) return;
    const counts = [...p.counts].flatMap(([k, n]) => {
      if (n === 0) return [];
      const i = k.lastIndexOf("|");
      return [[k.slice(0, i), Number(k.slice(i + 1)), n]];
    });
    if (counts.length > 0) {
      this.sql.exec(
        `INSERT INTO state_counts (state, priority, n)
         SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true
         ON CONFLICT (state, priority) DO UPDATE SET n = n + excluded.n`,
        JSON.stringify(counts),
      );
    }
    if (p.events.length > 0) {
      this.sql.exec(
        `INSERT INTO events (${EVENT_COLUMNS.join(", ")})
         SELECT ${EVENT_COLUMNS.map((_, i) => `value ->> ${i}`).join(", ")} FROM json_each(?)`,
        JSON.stringify(p.events),
      );
    }
  }

  /** The transaction rolled back: what it gathered never happened, and cached rows may say otherwise. */
  abort(): void {
    this.pending = null;
    this.rows.clear();
  }

  /** Jobs by state and priority name (terminal states count every job that ever ended there). */
  counts(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const r of all<{ state: string; priority: number; n: number }>(
      this.sql,
      "SELECT state, priority, n FROM state_counts",
    )) {
      out[r.state] ??= {};
      out[r.state]![priorityName(r.priority)] = r.n;
    }
    return out;
  }

  /** Stores the columns in which `next` differs from `prev`, the row as the caller read it. */
  private write(prev: JobRow, next: JobRow): void {
    const changed = COLUMNS.filter((c) => (prev[c] ?? null) !== (next[c] ?? null));
    if (changed.length === 0) return;
    this.sql.exec(updateSql(changed), ...changed.map((c) => next[c] ?? null), next.id);
    // The cached row (the stored one) takes the same changes; without one, the next get reads SQLite.
    const cached = this.rows.get(next.id);
    if (!cached) return;
    const row = cached as unknown as Record<string, unknown>;
    for (const c of changed) row[c] = next[c] ?? null;
    this.rows.delete(next.id); // last: the newest writes are evicted last
    this.rows.set(next.id, cached);
  }

  private record(job: JobRow, from: JobState | null, info: EventInfo, now = job.updated_at): void {
    const seq = this.meta.next("event_seq");
    const ev: EventRecord = {
      tenantId: this.tenantId(),
      seq,
      jobId: job.id,
      at: now,
      fromState: from,
      toState: job.state,
      reason: info.reason,
      message: info.message ?? null,
      attempt: job.attempt,
      lease: job.lease,
      workerId: job.worker_id,
      exitCode: info.exitCode ?? null,
    };
    const row = [
      seq,
      ev.jobId,
      ev.at,
      ev.fromState,
      ev.toState,
      ev.reason,
      ev.message,
      ev.attempt,
      ev.lease,
      ev.workerId,
      ev.exitCode,
    ];
    if (this.pending) this.pending.events.push(row);
    else
      this.sql.exec(
        `INSERT INTO events (${EVENT_COLUMNS.join(", ")}) VALUES (${EVENT_COLUMNS.map(() => "?").join(", ")})`,
        ...row,
      );
    this.outbox.add({ kind: "event", data: ev });
    this.outbox.add({ kind: "jobref", data: { id: job.id } });
    for (const l of this.listeners) l(job, ev);
  }

  /** Current snapshots for the outbox's job references (jobs are pruned only once their rows are flushed). */
  records(ids: string[]): JobRecord[] {
    // One statement for the whole flush (a statement per id was a tenth of the flush's CPU).
    return all<JobRow>(
      this.sql,
      "SELECT * FROM jobs WHERE id IN (SELECT value FROM json_each(?))",
      JSON.stringify(ids),
    ).map((j) => this.toRecord(j));
  }

  toRecord(j: JobRow): JobRecord {
    return jobRecord(j, this.tenantId());
  }

  events(jobId: string): EventRecord[] {
    return all<Row>(this.sql, "SELECT * FROM events WHERE job_id = ? ORDER BY seq", jobId).map((r) =>
      eventRecord(r, this.tenantId()),
    );
  }
}
