// Lazy liveness in a real fleet shard: plain heartbeats from a live worker keep its exact deadlines in
// memory and leave its row alone until they pass the stored (padded) ones; what is stored always covers
// the truth, so a shard that restarts declares a silent worker dead late, never early; and the sweep and
// the alarm go by memory, so a worker that falls silent is found on time, not one interval late.
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { nextLivenessDue, sweepLiveness } from "../../src/do/fleet/liveness.ts";
import type { FleetStore } from "../../src/do/fleet/store.ts";
import type { FleetShard } from "../../src/do/fleet-shard.ts";
import { shardOfWorker } from "../../src/stubs.ts";
import { ADMIN, api, createPool, heartbeat, registerWorker } from "./helpers.ts";

// vitest.worker.config.ts: HEARTBEAT_SECONDS 2, LEASE_TTL_SECONDS 6.
const HB = 2_000;
const TTL = 6_000;

interface Stored {
  last_seen: number;
  suspect_at: number;
  dead_at: number;
  state: string;
}

const shardOf = (workerId: string) => env.FLEET.getByName(shardOfWorker(workerId)!);

/** The worker's row as stored, and its exact deadlines in the shard's memory. */
async function inspect(workerId: string) {
  return runInDurableObject(shardOf(workerId), (inst: FleetShard, state) => {
    const stored = state.storage.sql
      .exec<Stored & Record<string, SqlStorageValue>>(
        "SELECT last_seen, suspect_at, dead_at, state FROM workers WHERE id = ?",
        workerId,
      )
      .one();
    const store = (inst as unknown as { store: FleetStore }).store;
    return { stored: { ...stored }, memory: store.liveness.get(workerId) ?? null };
  });
}

const lastSeenAt = async (id: string) => {
  const r = await api<{ items: { id: string; lastSeenAt: string }[] }>("GET", "/v1/workers", {
    token: ADMIN,
  });
  return Date.parse(r.body.items.find((w) => w.id === id)!.lastSeenAt);
};

describe("lazy liveness deadlines", () => {
  it("plain heartbeats within an interval write nothing; storage still covers the exact deadlines", async () => {
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, "LZ");
    await heartbeat(w); // starting → alive: a state change, always written
    const first = await inspect(w.workerId);
    expect(first.stored.state).toBe("alive");
    expect(first.memory).not.toBeNull();
    // Stored deadlines are the exact ones padded by one interval.
    expect(first.stored.suspect_at).toBe(first.memory!.suspectAt + HB);
    expect(first.stored.dead_at).toBe(first.memory!.deadAt + HB);

    let before = 0;
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 20));
      before = Date.now();
      await heartbeat(w);
    }
    const after = await inspect(w.workerId);
    // Unless an interval passed (a slow machine), the row was not written again.
    if (after.memory!.lastSeen - first.memory!.lastSeen < HB) expect(after.stored).toEqual(first.stored);
    // Memory has the last heartbeat; the stored deadlines are at least as late.
    expect(after.memory!.lastSeen).toBeGreaterThanOrEqual(before);
    expect(after.memory!.deadAt).toBe(after.memory!.lastSeen + TTL);
    expect(after.stored.suspect_at).toBeGreaterThanOrEqual(after.memory!.suspectAt);
    expect(after.stored.dead_at).toBeGreaterThanOrEqual(after.memory!.deadAt);
    // The API shows when the worker was really last heard from.
    expect(await lastSeenAt(w.workerId)).toBe(after.memory!.lastSeen);
  });

  it("a heartbeat past the stored deadlines writes them again, padded", async () => {
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, "LZ");
    await heartbeat(w);
    // Pretend the last write was long ago: the stored deadlines no longer cover a new heartbeat.
    await runInDurableObject(shardOf(w.workerId), (inst: FleetShard, state) => {
      state.storage.sql.exec(
        "UPDATE workers SET suspect_at = suspect_at - 60000, dead_at = dead_at - 60000 WHERE id = ?",
        w.workerId,
      );
      (inst as unknown as { store: FleetStore }).store.forget(w.workerId);
    });
    await heartbeat(w);
    const { stored, memory } = await inspect(w.workerId);
    expect(stored.last_seen).toBe(memory!.lastSeen);
    expect(stored.suspect_at).toBe(memory!.suspectAt + HB);
    expect(stored.dead_at).toBe(memory!.deadAt + HB);
  });

  it("the sweep and the alarm go by memory: a silent worker is due at its exact deadline, not the stored one", async () => {
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, "LZ");
    await heartbeat(w);
    await new Promise((r) => setTimeout(r, 30));
    await heartbeat(w); // memory moves on; the row keeps the first heartbeat's padded deadlines
    await runInDurableObject(shardOf(w.workerId), async (inst: FleetShard, state) => {
      const store = (inst as unknown as { store: FleetStore }).store;
      const sql = state.storage.sql;
      const truth = store.liveness.get(w.workerId)!;
      const row = store.worker(w.workerId)!;
      expect(row.suspect_at!).toBeGreaterThan(truth.suspectAt);
      expect(nextLivenessDue(sql, store)).toBeLessThanOrEqual(truth.suspectAt);

      const sweep = async (now: number) => {
        const seen = { suspect: [] as string[], dead: [] as string[] };
        await sweepLiveness(sql, store, now, {
          suspect: (id) => void seen.suspect.push(id),
          dead: async (id) => void seen.dead.push(id),
        });
        return {
          suspect: seen.suspect.includes(w.workerId),
          dead: seen.dead.includes(w.workerId),
        };
      };
      expect(await sweep(truth.suspectAt - 1)).toEqual({ suspect: false, dead: false });
      expect(await sweep(truth.suspectAt)).toEqual({ suspect: true, dead: false });
      expect(await sweep(truth.deadAt)).toEqual({ suspect: true, dead: true });

      // A restart loses memory: storage alone finds the worker due late (within one interval), never early.
      store.liveness.forget(w.workerId);
      expect(await sweep(truth.suspectAt)).toEqual({ suspect: false, dead: false });
      expect(await sweep(row.suspect_at!)).toEqual({ suspect: true, dead: false });
      expect((await sweep(truth.deadAt)).dead).toBe(false);
      expect(await sweep(row.dead_at!)).toEqual({ suspect: true, dead: true });
      expect(row.suspect_at! - truth.suspectAt).toBeLessThanOrEqual(HB);
      expect(row.dead_at! - truth.deadAt).toBeLessThanOrEqual(HB);
    });
  });
});
