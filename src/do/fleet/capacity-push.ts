// Free-capacity reports from a fleet shard to the scheduler. Workers whose GPUs or state changed are marked
// dirty in the same transaction as the change; a push sends their snapshots, and a change made while a
// push is in flight stays dirty (its version moved) and goes out in the next round. Tenants' releases
// (src/domain/release.ts) go out with the capacity they freed, in the same call, so the scheduler applies
// them before that capacity can start a pass; a failed push drops them (the tenants' summaries follow).

import type { Release } from "../../domain/release.ts";
import { all } from "../../lib/sql.ts";
import type { CapacityReport } from "../scheduler.ts";
import { type FleetStore, LIVE } from "./store.ts";

export class CapacityPusher {
  private pushing: Promise<void> | null = null;
  private releases: Release[] = [];

  constructor(
    private sql: SqlStorage,
    private store: () => FleetStore,
    private send: (reports: CapacityReport[], releases: Release[]) => Promise<void>,
  ) {}

  /** Releases to send with the next push (call before push()). */
  released(releases: Release[]): void {
    this.releases.push(...releases);
  }

  push(): Promise<void> {
    if (!this.pushing) {
      this.pushing = this.rounds().finally(() => {
        this.pushing = null;
      });
    }
    return this.pushing.catch(() => {});
  }

  private async rounds(): Promise<void> {
    const store = this.store();
    for (let round = 0; round < 5; round++) {
      const dirty = all<{ worker_id: string }>(this.sql, "SELECT worker_id FROM capacity_dirty");
      if (dirty.length === 0 && this.releases.length === 0) return;
      const reports: CapacityReport[] = dirty.map(({ worker_id }) => {
        const w = store.worker(worker_id);
        return w && LIVE.has(w.state)
          ? { ...store.capacity(w), removed: false as const }
          : { workerId: worker_id, shard: store.shard, removed: true as const, version: w?.version ?? 0 };
      });
      await this.send(reports, this.releases.splice(0));
      for (const r of reports) {
        const w = store.worker(r.workerId);
        if (!w || w.version === r.version)
          this.sql.exec("DELETE FROM capacity_dirty WHERE worker_id = ?", r.workerId);
      }
    }
  }
}
