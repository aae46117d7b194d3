// Worker liveness, driven by the shard's alarm: alive → suspect after two missed heartbeats (no new work),
// → dead after the lease TTL (its leases go back to their queues). The exact deadlines of recently heard
// workers are in memory (the store's LivenessBook); storage holds padded ones (src/domain/liveness.ts).
import { deadlinesAt, type Timing } from "../../domain/liveness.ts";
import { minTime } from "../../lib/alarm.ts";
import { all, scalar } from "../../lib/sql.ts";
import { type FleetStore, LIVE, type WorkerRow } from "./store.ts";

/** Workers due by storage or by memory; memory's deadlines win where it has them. */
export async function sweepLiveness(
  sql: SqlStorage,
  store: FleetStore,
  now: number,
  on: { suspect(workerId: string): void; dead(workerId: string): Promise<void> },
): Promise<void> {
  const candidates = new Set(store.liveness.due(now));
  for (const w of all<{ id: string }>(
    sql,
    "SELECT id FROM workers WHERE state IN ('starting','alive','suspect') AND suspect_at <= ?",
    now,
  ))
    candidates.add(w.id);
  for (const w of all<{ id: string }>(
    sql,
    "SELECT id FROM workers WHERE state IN ('starting','alive','suspect') AND dead_at <= ?",
    now,
  ))
    candidates.add(w.id);
  const suspect: string[] = [];
  const dead: string[] = [];
  for (const id of candidates) {
    const w = store.worker(id);
    if (!w || !LIVE.has(w.state)) {
      store.liveness.forget(id);
      continue;
    }
    const d = store.liveness.effective(id, { suspectAt: w.suspect_at, deadAt: w.dead_at });
    if (w.state !== "suspect" && d.suspectAt !== null && d.suspectAt <= now) suspect.push(id);
    if (d.deadAt !== null && d.deadAt <= now) dead.push(id);
  }
  for (const id of suspect) on.suspect(id);
  for (const id of dead) await on.dead(id);
}

/** When the next worker becomes due: the earliest of storage's deadlines and memory's. */
export function nextLivenessDue(sql: SqlStorage, store: FleetStore): number | null {
  const mem = store.liveness.earliest((id) => {
    const w = store.worker(id);
    if (!w || !LIVE.has(w.state)) return null;
    return w.state === "suspect" ? "suspect" : "alive";
  });
  return minTime(
    scalar<number>(sql, "SELECT min(suspect_at) FROM workers WHERE state IN ('starting','alive')"),
    scalar<number>(sql, "SELECT min(dead_at) FROM workers WHERE state IN ('starting','alive','suspect')"),
    mem.suspectAt,
    mem.deadAt,
  );
}

/**
 * The alarm fired far later than it was due: this object (or the platform) was down, so the silence was
 * ours, not the workers'. Give every live worker a fresh lease instead of declaring the whole fleet dead and
 * requeueing every running job at once.
 */
export function extendAfterOutage(
  sql: SqlStorage,
  store: FleetStore,
  now: number,
  lateMs: number,
  t: Timing,
): void {
  const d = deadlinesAt(now, t);
  sql.exec(
    "UPDATE workers SET suspect_at = ?, dead_at = ? WHERE state IN ('starting','alive','suspect')",
    d.suspectAt,
    d.deadAt,
  );
  store.forget();
  store.liveness.forget();
  console.warn(
    JSON.stringify({ level: "warn", msg: "fleet shard was unavailable; worker leases extended", lateMs }),
  );
}

/**
 * A call from the agent proves it is alive. A plain heartbeat from a live worker usually writes nothing:
 * its exact deadlines go to memory, and storage is written only when they pass the stored, padded ones
 * (src/domain/liveness.ts), so the reply need not wait for a disk commit. True when the worker came back
 * from suspect or dead, which the scheduler must hear about.
 */
export function markSeen(sql: SqlStorage, store: FleetStore, w: WorkerRow, now: number, t: Timing): boolean {
  const revived = w.state !== "alive";
  const stored = { suspectAt: w.suspect_at, deadAt: w.dead_at };
  const write = store.liveness.seen(w.id, stored, now, t, revived);
  if (!write) return false;
  sql.exec(
    "UPDATE workers SET last_seen = ?, suspect_at = ?, dead_at = ?, state = 'alive' WHERE id = ?",
    now,
    write.suspectAt,
    write.deadAt,
    w.id,
  );
  store.remember(w.id, {
    last_seen: now,
    suspect_at: write.suspectAt,
    dead_at: write.deadAt,
    state: "alive",
  });
  return revived;
}
