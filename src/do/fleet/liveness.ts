// Worker liveness, driven by the shard's alarm: alive → suspect after two missed heartbeats (no new work),
// → dead after the lease TTL (its leases go back to their queues).
import { all } from "../../lib/sql.ts";

export async function sweepLiveness(
  sql: SqlStorage,
  now: number,
  on: { suspect(workerId: string): void; dead(workerId: string): Promise<void> },
): Promise<void> {
  for (const w of all<{ id: string }>(
    sql,
    "SELECT id FROM workers WHERE state IN ('starting','alive') AND suspect_at <= ?",
    now,
  )) {
    on.suspect(w.id);
  }
  for (const w of all<{ id: string }>(
    sql,
    "SELECT id FROM workers WHERE state IN ('starting','alive','suspect') AND dead_at <= ?",
    now,
  )) {
    await on.dead(w.id);
  }
}
