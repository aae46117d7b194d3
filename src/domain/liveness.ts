// Worker liveness deadlines, kept in memory and written to storage lazily.
//
// Every heartbeat moves its worker's deadlines later. Writing them on every heartbeat made each reply wait
// for a durable disk commit, and on an ordinary disk that commit, not CPU, bounded how many heartbeats a
// shard could take. So the exact deadlines live in memory, and storage holds deadlines padded by one
// heartbeat interval. A heartbeat writes only when its deadlines pass the stored ones: about every other
// heartbeat at the normal interval, rarely when heartbeats come faster.
//
// The invariant: stored deadlines are never earlier than the true ones. If the shard restarts and loses its
// memory, it declares a silent worker suspect or dead late (by at most one interval), never early. Early
// would requeue a job the agent still runs; late only delays requeueing the job of a worker already gone.
// While the shard lives, memory decides, so detection is on time.

export interface Timing {
  heartbeatMs: number;
  ttlMs: number;
}

export interface Deadlines {
  lastSeen: number;
  /** Two missed heartbeats: no new work. */
  suspectAt: number;
  /** The lease TTL: its leases go back to their queues. */
  deadAt: number;
}

export interface StoredDeadlines {
  suspectAt: number | null;
  deadAt: number | null;
}

export function deadlinesAt(now: number, t: Timing): Deadlines {
  return { lastSeen: now, suspectAt: now + 2 * t.heartbeatMs, deadAt: now + t.ttlMs };
}

/** What storage holds for deadlines `d`: later by one heartbeat interval, so the next heartbeat needs no write. */
export function padded(d: Deadlines, t: Timing): Deadlines {
  return { lastSeen: d.lastSeen, suspectAt: d.suspectAt + t.heartbeatMs, deadAt: d.deadAt + t.heartbeatMs };
}

/** True when storage still covers `d`: a restart would not find the worker due before `d` says. */
export function covers(stored: StoredDeadlines, d: Deadlines): boolean {
  return (
    stored.suspectAt !== null &&
    stored.deadAt !== null &&
    stored.suspectAt >= d.suspectAt &&
    stored.deadAt >= d.deadAt
  );
}

/** The true deadlines of live workers whose stored ones are later (padded). Absent: storage is exact. */
export class LivenessBook {
  private truth = new Map<string, Deadlines>();

  /**
   * A worker was heard from at `now`. Returns what to write to storage, or null when the stored deadlines
   * still cover the new ones. `force` (a state change that is written anyway) always returns the padded values.
   */
  seen(id: string, stored: StoredDeadlines, now: number, t: Timing, force = false): Deadlines | null {
    const d = deadlinesAt(now, t);
    this.truth.set(id, d);
    return force || !covers(stored, d) ? padded(d, t) : null;
  }

  get(id: string): Deadlines | undefined {
    return this.truth.get(id);
  }

  /** The worker's deadlines in force: memory's when it has them, else what storage says. */
  effective(id: string, stored: StoredDeadlines): StoredDeadlines {
    const d = this.truth.get(id);
    return d ? { suspectAt: d.suspectAt, deadAt: d.deadAt } : stored;
  }

  /** Storage was set to exact deadlines (or cleared): memory has nothing newer. No id: for every worker. */
  forget(id?: string): void {
    if (id === undefined) this.truth.clear();
    else this.truth.delete(id);
  }

  /** Workers whose in-memory suspect or dead deadline has passed. */
  due(now: number): string[] {
    const out: string[] = [];
    for (const [id, d] of this.truth) if (d.suspectAt <= now || d.deadAt <= now) out.push(id);
    return out;
  }

  /**
   * The earliest in-memory deadlines that still matter: `stateOf` says whether a worker is "alive" (or
   * starting: both deadlines count), "suspect" (only death is left) or neither (nothing counts).
   */
  earliest(stateOf: (id: string) => "alive" | "suspect" | null): StoredDeadlines {
    let suspectAt: number | null = null;
    let deadAt: number | null = null;
    for (const [id, d] of this.truth) {
      const state = stateOf(id);
      if (state === null) continue;
      if (state === "alive" && (suspectAt === null || d.suspectAt < suspectAt)) suspectAt = d.suspectAt;
      if (deadAt === null || d.deadAt < deadAt) deadAt = d.deadAt;
    }
    return { suspectAt, deadAt };
  }

  get size(): number {
    return this.truth.size;
  }
}
