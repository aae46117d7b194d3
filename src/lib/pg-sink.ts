// Applies outbox batches to Postgres. Every write is an idempotent upsert keyed by id, and snapshots only
// replace older versions, so a batch delivered twice (alarm retried after a crash) changes nothing.
import { getTableColumns, type SQL, sql } from "drizzle-orm";
import type { PgTable } from "drizzle-orm/pg-core";
import {
  auditLog,
  jobEvents,
  jobLogs,
  jobs,
  quotaAllocations,
  usageRecords,
  workers,
} from "../../db/schema.ts";
import type { OutboxItem } from "./history.ts";
import type { Db } from "./pg.ts";

const date = (ms: number | null | undefined) => (ms == null ? null : new Date(ms));

/** `SET col = excluded.col` for every column but the keys. */
function excludedSet(table: PgTable, keys: string[]): Record<string, SQL> {
  const set: Record<string, SQL> = {};
  for (const [prop, col] of Object.entries(getTableColumns(table))) {
    if (!keys.includes(prop)) set[prop] = sql.raw(`excluded."${col.name}"`);
  }
  return set;
}

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

function chunks<T>(a: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < a.length; i += n) out.push(a.slice(i, i + n));
  return out;
}

/** Postgres text cannot hold U+0000: replace it (agents' output and old rows may carry it). */
function clean<T>(v: T): T {
  if (typeof v === "string") return (v.includes("\u0000") ? v.replaceAll("\u0000", "\uFFFD") : v) as T;
  if (Array.isArray(v)) return v.map(clean) as T;
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[clean(k)] = clean(x);
    return o as T;
  }
  return v;
}

export async function applyOutbox(db: Db, raw: OutboxItem[]): Promise<void> {
  const items = raw.map((i) => clean(i));
  type DataOf<K extends OutboxItem["kind"]> = Extract<OutboxItem, { kind: K }>["data"];
  const by = <K extends OutboxItem["kind"]>(k: K): DataOf<K>[] =>
    items.filter((i) => i.kind === k).map((i) => i.data as unknown as DataOf<K>);

  const jobRows = latest(
    by("job"),
    (j) => j.id,
    (j) => j.version,
  );
  const eventRows = by("event");
  const logRows = latest(
    by("log"),
    (l) => l.jobId,
    (l) => l.updatedAt,
  );
  const usageRows = by("usage");
  const auditRows = by("audit");
  const allocRows = latest(
    by("allocation"),
    (a) => a.id,
    (a) => (a.releasedAt ? 1 : 0),
  );
  const workerRows = latest(
    by("worker"),
    (w) => w.id,
    (w) => w.version,
  );

  await db.transaction(async (tx) => {
    for (const part of chunks(jobRows, 500)) {
      await tx
        .insert(jobs)
        .values(
          part.map((j) => ({
            ...j,
            submittedAt: date(j.submittedAt)!,
            startedAt: date(j.startedAt),
            finishedAt: date(j.finishedAt),
            updatedAt: date(j.updatedAt)!,
          })),
        )
        .onConflictDoUpdate({
          target: jobs.id,
          set: excludedSet(jobs, ["id"]),
          setWhere: sql`${jobs.version} < excluded.version`,
        });
    }
    for (const part of chunks(eventRows, 1000)) {
      await tx
        .insert(jobEvents)
        .values(part.map((e) => ({ ...e, at: date(e.at)! })))
        .onConflictDoNothing();
    }
    for (const part of chunks(logRows, 200)) {
      await tx
        .insert(jobLogs)
        .values(part.map((l) => ({ ...l, updatedAt: date(l.updatedAt)! })))
        .onConflictDoUpdate({
          target: jobLogs.jobId,
          set: excludedSet(jobLogs, ["jobId"]),
          setWhere: sql`${jobLogs.updatedAt} <= excluded.updated_at`,
        });
    }
    for (const part of chunks(usageRows, 1000)) {
      await tx
        .insert(usageRecords)
        .values(part.map((u) => ({ ...u, startedAt: date(u.startedAt)!, endedAt: date(u.endedAt)! })))
        .onConflictDoNothing();
    }
    for (const part of chunks(auditRows, 1000)) {
      await tx
        .insert(auditLog)
        .values(part.map((a) => ({ ...a, at: date(a.at)! })))
        .onConflictDoNothing();
    }
    for (const part of chunks(allocRows, 500)) {
      await tx
        .insert(quotaAllocations)
        .values(part.map((a) => ({ ...a, createdAt: date(a.createdAt)!, releasedAt: date(a.releasedAt) })))
        .onConflictDoUpdate({ target: quotaAllocations.id, set: excludedSet(quotaAllocations, ["id"]) });
    }
    for (const part of chunks(workerRows, 500)) {
      await tx
        .insert(workers)
        .values(
          part.map((w) => ({
            ...w,
            registeredAt: date(w.registeredAt)!,
            lastSeenAt: date(w.lastSeenAt),
            updatedAt: date(w.updatedAt)!,
          })),
        )
        .onConflictDoUpdate({
          target: workers.id,
          set: excludedSet(workers, ["id"]),
          setWhere: sql`${workers.version} < excluded.version`,
        });
    }
  });
}
