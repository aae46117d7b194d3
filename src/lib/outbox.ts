// Transactional outbox: a Durable Object writes a change and its outbox row in one SQLite transaction, and
// an alarm flushes rows to Postgres in batches. Rows are deleted only after Postgres committed them; a
// crash in between re-sends them, which the idempotent sink turns into a no-op.
import type { Env } from "../env.ts";
import type { JobRecord, OutboxItem } from "./history.ts";
import { classifyPgError, DatabaseUnavailable, KeptDb, withDb } from "./pg.ts";
import { applyOutbox } from "./pg-sink.ts";
import { all, scalar } from "./sql.ts";

export const OUTBOX_DDL =
  "CREATE TABLE IF NOT EXISTS _outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, payload TEXT NOT NULL)";

const BATCH = 2000;
const BATCH_ITEMS = 200;
const REFUSED_DDL =
  "CREATE TABLE IF NOT EXISTS _outbox_refused (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL)";

/** An outbox row is one item, or a transaction's items ("batch"). */
function expand(r: { kind: string; payload: string }): OutboxItem[] {
  if (r.kind === "batch") return JSON.parse(r.payload) as OutboxItem[];
  return [{ kind: r.kind, data: JSON.parse(r.payload) } as OutboxItem];
}

export class Outbox {
  private flushing: Promise<number> | null = null;
  /** Flushes come every OUTBOX_FLUSH_MS under load: they share one connection (see KeptDb). */
  private db = new KeptDb();
  /**
   * Turns job references into snapshots of the jobs' current rows. Recording only the id on each
   * transition (instead of serialising the whole job every time) keeps the write path cheap; the newest
   * row is what the versioned upsert wants anyway.
   */
  resolveJobs: ((ids: string[]) => JobRecord[]) | null = null;
  /** Consecutive failures, for backoff while Postgres is unreachable. */
  failures = 0;

  constructor(private sql: SqlStorage) {
    sql.exec(OUTBOX_DDL);
  }

  /** When the oldest unflushed row was written (ms), for the outbox-lag metric; null when empty. */
  private since: number | null | undefined = undefined;

  /** Items of the transaction in progress, written as one row when it commits (see begin/commit). */
  private buffer: OutboxItem[] | null = null;
  private depth = 0;

  add(item: OutboxItem): void {
    if (this.buffer) {
      this.buffer.push(item);
      // A 10,000-task array is one transaction: keep each row far below SQLite's 2 MB value limit.
      if (this.buffer.length >= BATCH_ITEMS) {
        this.write("batch", JSON.stringify(this.buffer));
        this.buffer = [];
      }
      return;
    }
    this.write(item.kind, JSON.stringify(item.data));
  }

  /**
   * A transaction starts: its items are gathered and written as ONE outbox row at commit — one SQLite
   * insert per submit instead of one per event, snapshot and audit record. Nested calls share it.
   */
  begin(): void {
    this.depth++;
    this.buffer ??= [];
  }

  /** Inside the same transaction, before it ends. */
  commit(): void {
    if (--this.depth > 0) return;
    const items = this.buffer ?? [];
    this.buffer = null;
    if (items.length === 1) this.write(items[0]!.kind, JSON.stringify(items[0]!.data));
    else if (items.length > 1) this.write("batch", JSON.stringify(items));
  }

  /** The transaction rolled back: its items never happened. */
  abort(): void {
    this.depth = 0;
    this.buffer = null;
  }

  private write(kind: string, payload: string): void {
    this.sql.exec("INSERT INTO _outbox (kind, payload) VALUES (?, ?)", kind, payload);
    if (this.since == null) this.since = Date.now();
  }

  /** Age of the oldest row not yet in Postgres, seconds (0 when everything is flushed). */
  lagSeconds(now = Date.now()): number {
    if (this.since === undefined) this.since = this.hasRows() ? now : null;
    return this.since == null ? 0 : Math.max(0, (now - this.since) / 1000);
  }

  /** Rows not yet in Postgres. Rows leave from the front only, so the id range counts them without a scan. */
  pending(): number {
    return scalar<number>(this.sql, "SELECT coalesce(max(seq) - min(seq) + 1, 0) FROM _outbox") ?? 0;
  }

  /** Oldest unflushed row's age is what `gantry_outbox_lag_seconds` reports. */
  hasRows(): boolean {
    return scalar<number>(this.sql, "SELECT seq FROM _outbox LIMIT 1") !== null;
  }

  /** Flush everything that is pending now; concurrent callers share one flush. Returns rows flushed. */
  flush(env: Env): Promise<number> {
    if (!this.flushing) {
      this.flushing = this.flushAll(env).finally(() => {
        this.flushing = null;
      });
    }
    return this.flushing;
  }

  /**
   * Read your own writes: everything written before this call is in Postgres when it resolves true. A
   * flush already under way may have read its batch before the newest rows, so flush until the oldest row
   * left is newer than the mark. False when `ms` ran out first or a flush failed (Postgres unreachable):
   * the caller reads what Postgres has, which may lag.
   */
  async flushThrough(env: Env, ms: number): Promise<boolean> {
    const mark = scalar<number>(this.sql, "SELECT max(seq) FROM _outbox");
    if (mark === null) return true;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const through = async (): Promise<boolean> => {
      for (;;) {
        const oldest = scalar<number>(this.sql, "SELECT min(seq) FROM _outbox");
        if (oldest === null || oldest > mark) return true;
        await this.flush(env);
      }
    };
    try {
      return await Promise.race([through().catch(() => false), timeout]);
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  private async flushAll(env: Env): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = all<{ seq: number; kind: string; payload: string }>(
        this.sql,
        "SELECT seq, kind, payload FROM _outbox ORDER BY seq LIMIT ?",
        BATCH,
      );
      if (rows.length === 0) break;
      const items = this.resolve(rows.flatMap((r) => expand(r)));
      try {
        await this.db.use(env, (db) => applyOutbox(db, items));
      } catch (e) {
        this.failures++;
        // Postgres unreachable: keep everything and retry later. Postgres refusing the data itself: one
        // bad row must not stop the tenant's history for good, so find it and set it aside.
        if (e instanceof DatabaseUnavailable || classifyPgError(e) !== "refused") throw e;
        await this.isolate(env, rows, e);
      }
      this.failures = 0;
      const last = rows[rows.length - 1]!.seq;
      this.sql.exec("DELETE FROM _outbox WHERE seq <= ?", last);
      // What is left was written after this batch was read: its age starts now at the latest.
      this.since = this.hasRows() ? Date.now() : null;
      total += rows.length;
      if (rows.length < BATCH) break;
    }
    return total;
  }

  /**
   * A batch Postgres refused: apply its items one by one and move the ones it still refuses to _outbox_refused
   * (kept in the object with the error, for an operator), so the rest of the history keeps flowing.
   */
  private async isolate(
    env: Env,
    rows: { seq: number; kind: string; payload: string }[],
    first: unknown,
  ): Promise<void> {
    this.sql.exec(REFUSED_DDL);
    await withDb(env, async (db) => {
      for (const r of rows) {
        for (const item of expand(r)) {
          try {
            await applyOutbox(db, this.resolve([item]));
          } catch (e) {
            // Only an item Postgres itself refuses is set aside; on any other failure every row stays.
            if (e instanceof DatabaseUnavailable || classifyPgError(e) !== "refused") throw e;
            // The driver's message lists the query's parameters (a job's env can hold secrets): drop them.
            const error = String((e as Error)?.message ?? e)
              .split("\nparams:")[0]!
              .slice(0, 2000);
            this.sql.exec(
              "INSERT INTO _outbox_refused (seq, kind, payload, error, at) VALUES (?, ?, ?, ?, ?)",
              r.seq,
              item.kind,
              JSON.stringify(item.data),
              error,
              Date.now(),
            );
            console.error(
              JSON.stringify({
                level: "error",
                msg: "outbox item refused by Postgres; set aside",
                kind: item.kind,
                seq: r.seq,
                error,
                batchError: String(first).split("\nparams:")[0]!.slice(0, 500),
              }),
            );
          }
        }
      }
    });
  }

  private resolve(items: OutboxItem[]): OutboxItem[] {
    const ids = [...new Set(items.flatMap((i) => (i.kind === "jobref" ? [i.data.id] : [])))];
    if (ids.length === 0) return items;
    const rest = items.filter((i) => i.kind !== "jobref");
    const jobs = this.resolveJobs ? this.resolveJobs(ids) : [];
    return [...rest, ...jobs.map((data) => ({ kind: "job" as const, data }))];
  }

  /** Rows Postgres refused (see isolate), for metrics and operators. */
  refusedCount(): number {
    try {
      return scalar<number>(this.sql, "SELECT count(*) FROM _outbox_refused") ?? 0;
    } catch {
      return 0; // never created: nothing was ever refused
    }
  }

  /** Retry delay while Postgres is down: 1 s doubling to 60 s. */
  retryDelayMs(): number {
    return Math.min(1000 * 2 ** Math.max(0, this.failures - 1), 60_000);
  }
}
