// Thin helpers over the Durable Object SQLite API. Every helper consumes its cursor before returning, so no
// caller can read a cursor across an await (cursors have no snapshot isolation).
export type Row = Record<string, SqlStorageValue>;

/** Rows typed by the caller (the query decides the shape; SQLite does not). */
export function all<T = Row>(sql: SqlStorage, q: string, ...args: unknown[]): T[] {
  return sql.exec(q, ...args).toArray() as unknown as T[];
}

export function first<T = Row>(sql: SqlStorage, q: string, ...args: unknown[]): T | null {
  const rows = sql.exec(q, ...args).toArray() as unknown as T[];
  return rows[0] ?? null;
}

export function run(sql: SqlStorage, q: string, ...args: unknown[]): number {
  return sql.exec(q, ...args).rowsWritten;
}

export function scalar<T extends SqlStorageValue>(sql: SqlStorage, q: string, ...args: unknown[]): T | null {
  const r = [...sql.exec(q, ...args).raw()][0];
  return (r?.[0] as T | undefined) ?? null;
}

/** Schema migrations kept as an ordered list; the applied count is stored in the object itself. */
export function migrate(sql: SqlStorage, steps: readonly string[]): void {
  sql.exec(
    "CREATE TABLE IF NOT EXISTS _schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
  );
  const v = scalar<number>(sql, "SELECT version FROM _schema WHERE id = 1") ?? 0;
  for (let i = v; i < steps.length; i++) sql.exec(steps[i]!);
  if (v !== steps.length) {
    sql.exec(
      "INSERT INTO _schema (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
      steps.length,
    );
  }
}

/** Small key/value settings table shared by every object (counters, due times, cached config). */
export class Meta {
  /**
   * Read-through, write-through cache: the object is the only writer of its storage, so SQLite is read
   * once per key. A transaction that throws must call invalidate() (see tx()): its writes are rolled back.
   */
  private cache = new Map<string, string | null>();
  /** Keys written inside the transaction in progress: stored once, at its end (see tx()). */
  private dirty: Set<string> | null = null;

  constructor(private sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS _meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
  }
  get(k: string): string | null {
    if (this.cache.has(k)) return this.cache.get(k)!;
    const v = scalar<string>(this.sql, "SELECT v FROM _meta WHERE k = ?", k);
    this.cache.set(k, v);
    return v;
  }
  set(k: string, v: string | number): void {
    const s = String(v);
    if (this.cache.get(k) === s) return;
    this.cache.set(k, s);
    if (this.dirty) this.dirty.add(k);
    else this.store(k, s);
  }
  private store(k: string, v: string): void {
    this.sql.exec(
      "INSERT INTO _meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
      k,
      v,
    );
  }
  /** Counters bumped many times in one transaction are written once, at its end. */
  begin(): void {
    this.dirty ??= new Set();
  }
  /** A tx() is in progress: nested calls join it (see tx()). */
  get inTx(): boolean {
    return this.dirty !== null;
  }
  commit(): void {
    const keys = this.dirty;
    this.dirty = null;
    if (!keys?.size) return;
    // One statement for all of them: each statement has a fixed cost that dwarfs the row.
    const rows = [...keys].flatMap((k) => {
      const v = this.cache.get(k);
      return v == null ? [] : [k, v];
    });
    if (rows.length === 0) return;
    this.sql.exec(
      `INSERT INTO _meta (k, v) VALUES ${Array.from({ length: rows.length / 2 }, () => "(?, ?)").join(", ")} ON CONFLICT (k) DO UPDATE SET v = excluded.v`,
      ...rows,
    );
  }
  del(k: string): void {
    this.sql.exec("DELETE FROM _meta WHERE k = ?", k);
    this.cache.set(k, null);
    this.dirty?.delete(k);
  }
  invalidate(): void {
    this.cache.clear();
    this.dirty = null;
  }
  num(k: string, dflt = 0): number {
    const v = this.get(k);
    return v === null ? dflt : Number(v);
  }
  /** Increment and return a persistent counter (fencing tokens, event sequence numbers). */
  next(k: string): number {
    const n = this.num(k) + 1;
    this.set(k, n);
    return n;
  }
  json<T>(k: string): T | null {
    const v = this.get(k);
    return v === null ? null : (JSON.parse(v) as T);
  }
}

export interface Batching {
  begin(): void;
  commit(): void;
  abort(): void;
}

/** Several participants as one: begun and committed in order, all aborted together. */
export function together(...parts: Batching[]): Batching {
  return {
    begin: () => {
      for (const p of parts) p.begin();
    },
    commit: () => {
      for (const p of parts) p.commit();
    },
    abort: () => {
      for (const p of parts) p.abort();
    },
  };
}

/**
 * transactionSync that writes the settings and the outbox items gathered during the transaction once, at
 * its end — and forgets them if it rolls back.
 */
export function tx<T>(storage: DurableObjectStorage, meta: Meta, fn: () => T, outbox?: Batching): T {
  // Nested inside another tx (a batch of submits): one transaction, written and rolled back as a whole by
  // the outermost call, so the inner writes share its single settings write, outbox row and commit.
  if (meta.inTx) return fn();
  try {
    return storage.transactionSync(() => {
      meta.begin();
      outbox?.begin();
      const r = fn();
      outbox?.commit();
      meta.commit();
      return r;
    });
  } catch (e) {
    meta.invalidate();
    outbox?.abort();
    throw e;
  }
}
