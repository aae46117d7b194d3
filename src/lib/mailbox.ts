// Reliable messages from one Durable Object to another. The sender writes the message in the same SQLite
// transaction as the change that caused it; delivery happens after the commit and is retried from the
// alarm until the receiver accepts it. Receivers must be idempotent (messages carry fencing tokens).
import { all } from "./sql.ts";

export const MAILBOX_DDL = `CREATE TABLE IF NOT EXISTS _mailbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  target TEXT NOT NULL,
  method TEXT NOT NULL,
  payload TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL
)`;

export type Dispatch = (target: string, method: string, payloads: unknown[]) => Promise<void>;

export class Mailbox {
  private delivering: Promise<void> | null = null;

  constructor(private sql: SqlStorage) {
    sql.exec(MAILBOX_DDL);
  }

  add(target: string, method: string, payload: unknown, at = Date.now()): void {
    this.sql.exec(
      "INSERT INTO _mailbox (target, method, payload, next_at) VALUES (?, ?, ?, ?)",
      target,
      method,
      JSON.stringify(payload),
      at,
    );
  }

  nextDue(): number | null {
    const r = all<{ t: number | null }>(this.sql, "SELECT min(next_at) AS t FROM _mailbox")[0];
    return r?.t ?? null;
  }

  /** Deliver every due message, batched per (target, method). Failed batches back off individually. */
  deliver(dispatch: Dispatch, now = Date.now()): Promise<void> {
    if (!this.delivering) {
      this.delivering = this.run(dispatch, now).finally(() => {
        this.delivering = null;
      });
    }
    return this.delivering;
  }

  private async run(dispatch: Dispatch, now: number): Promise<void> {
    const rows = all<{ id: number; target: string; method: string; payload: string; attempts: number }>(
      this.sql,
      "SELECT id, target, method, payload, attempts FROM _mailbox WHERE next_at <= ? ORDER BY id LIMIT 5000",
      now,
    );
    const groups = new Map<string, typeof rows>();
    for (const r of rows) {
      const k = `${r.target}\u0000${r.method}`;
      const g = groups.get(k) ?? [];
      g.push(r);
      groups.set(k, g);
    }
    await Promise.all(
      [...groups.values()].map(async (g) => {
        const ids = g.map((r) => r.id);
        try {
          await dispatch(
            g[0]!.target,
            g[0]!.method,
            g.map((r) => JSON.parse(r.payload)),
          );
          for (const id of ids) this.sql.exec("DELETE FROM _mailbox WHERE id = ?", id);
        } catch (e) {
          const attempts = Math.max(...g.map((r) => r.attempts)) + 1;
          const delay = Math.min(500 * 2 ** attempts, 30_000);
          for (const id of ids) {
            this.sql.exec(
              "UPDATE _mailbox SET attempts = attempts + 1, next_at = ? WHERE id = ?",
              Date.now() + delay,
              id,
            );
          }
          console.warn(
            JSON.stringify({
              level: "warn",
              msg: "mailbox delivery failed",
              target: g[0]!.target,
              method: g[0]!.method,
              attempts,
              error: String((e as Error)?.message ?? e),
            }),
          );
        }
      }),
    );
  }
}
