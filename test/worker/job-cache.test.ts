// The tenant object keeps recently written job rows (JobStore) and its quota ledger (Ledger: holdings,
// manual allocations, users' decayed usage) in memory, written through at the end of each transaction:
// a job is read by id, and quota read and changed, at every step of its life. What they serve must be
// exactly what SQLite holds, including after a transaction rolled back, after a caller changed the object
// it was given, and after retention deleted a job.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobRow, JobStore } from "../../src/do/tenant/jobs.ts";
import type { Ledger } from "../../src/do/tenant/ledger.ts";
import type { TenantQueue } from "../../src/do/tenant-queue.ts";
import { createTenant, env, gpuTypeName, submit } from "./helpers.ts";

type Inside = { tc: { jobs: JobStore; ledger: Ledger; tx<T>(fn: () => T): T } };

const stored = (state: DurableObjectState, id: string) =>
  state.storage.sql.exec("SELECT * FROM jobs WHERE id = ?", id).toArray()[0] as unknown as JobRow | undefined;

describe("job rows served from memory", () => {
  it("match the stored row through writes, rollbacks, callers' changes and deletion", async () => {
    const t = await createTenant();
    const r = await submit(t.memberKey, { name: "cached", gpuType: gpuTypeName("C") });
    expect(r.status).toBe(201);
    const id = r.body.id as string;
    const stub = env.TENANT_QUEUE.getByName(t.id);
    await runInDurableObject(stub, (inst: TenantQueue, state) => {
      const { jobs, tx } = (inst as unknown as Inside).tc;
      // Freshly inserted: every column present, NULL where the submit left one unset.
      const first = jobs.get(id)!;
      expect(first).toEqual(stored(state, id));
      expect(first.lease).toBeNull();

      // A caller changing its copy changes nothing stored or served.
      first.state = "running";
      first.message = "scribbled";
      expect(jobs.get(id)).toEqual(stored(state, id));
      expect(jobs.get(id)!.state).toBe("queued");

      // A transaction that throws after a transition: neither SQLite nor memory keeps the transition.
      expect(() =>
        tx(() => {
          jobs.transition(jobs.get(id)!, "cancelled", { reason: "Cancelled" }, { reason: "Cancelled" });
          expect(jobs.get(id)!.state).toBe("cancelled"); // inside it, the write is visible
          throw new Error("rolled back on purpose");
        }),
      ).toThrow("rolled back on purpose");
      expect(stored(state, id)!.state).toBe("queued");
      expect(jobs.get(id)).toEqual(stored(state, id));

      // A committed transition is served as stored.
      const before = jobs.get(id)!;
      const done = tx(() =>
        jobs.transition(jobs.get(id)!, "cancelled", { reason: "Cancelled" }, { reason: "Cancelled" }),
      );
      expect(done.state).toBe("cancelled");
      expect(jobs.get(id)).toEqual(stored(state, id));
      expect(jobs.get(id)!.version).toBe(2);

      // Only changed columns are written: a patch made from the row read before the transition sets its
      // own column and leaves the transition's in place, in SQLite and in memory alike.
      tx(() => jobs.patch(before, { message: "from an older read" }));
      expect(stored(state, id)).toMatchObject({
        state: "cancelled",
        message: "from an older read",
        version: 2,
      });
      expect(jobs.get(id)).toEqual(stored(state, id));

      // Deleted by retention: forgotten, not served from memory.
      state.storage.sql.exec("DELETE FROM jobs WHERE id = ?", id);
      jobs.forget([id]);
      expect(jobs.get(id)).toBeNull();
    });
  });
});

/** Quota usage and users' decayed usage as SQLite holds them. */
function storedLedger(state: DurableObjectState) {
  const byType: Record<string, number> = {};
  let jobs = 0;
  for (const h of state.storage.sql.exec("SELECT type_key, gpus, jobs FROM holdings").toArray()) {
    byType[h.type_key as string] = (byType[h.type_key as string] ?? 0) + (h.gpus as number);
    jobs += h.jobs as number;
  }
  for (const a of state.storage.sql
    .exec("SELECT type_key, sum(gpus) AS g FROM allocations GROUP BY type_key")
    .toArray())
    byType[a.type_key as string] = (byType[a.type_key as string] ?? 0) + (a.g as number);
  const users = state.storage.sql
    .exec("SELECT user, value, rate, at FROM user_usage ORDER BY user")
    .toArray();
  return { usage: { byType, jobs }, users };
}

describe("quota ledger served from memory", () => {
  it("matches SQLite through takes, gives, allocations and a rollback", async () => {
    const t = await createTenant();
    expect((await submit(t.memberKey, { name: "warm", gpuType: gpuTypeName("L") })).status).toBe(201);
    const stub = env.TENANT_QUEUE.getByName(t.id);
    await runInDurableObject(stub, (inst: TenantQueue, state) => {
      const { ledger, tx } = (inst as unknown as Inside).tc;
      const now = Date.now();
      const mine = () => ({
        usage: ledger.usage(),
        users: ["alice", "bob"].flatMap((u) => {
          const x = ledger.userUsage(u);
          return x.rate === 0 && x.value === 0 ? [] : [{ user: u, value: x.value, rate: x.rate, at: x.at }];
        }),
      });
      const same = () => expect(mine()).toEqual(storedLedger(state));

      tx(() => {
        ledger.take("h100", "H100", 4);
        ledger.take("h100", "H100", 2);
        ledger.accrue("alice", 6, now);
        ledger.take("a100", "A100", 1);
        ledger.accrue("bob", 1, now);
      });
      expect(ledger.usage()).toEqual({ byType: { h100: 6, a100: 1 }, jobs: 3 });
      same();

      // Rolled back: neither SQLite nor memory keeps any of it.
      expect(() =>
        tx(() => {
          ledger.give("h100", 4);
          ledger.accrue("alice", -4, now + 1000);
          ledger.addAllocation({
            id: "al1",
            gpus: 8,
            type_key: "h100",
            gpu_type: "H100",
            note: null,
            created_at: now,
          });
          expect(ledger.usage().byType.h100).toBe(10); // visible inside
          throw new Error("rolled back on purpose");
        }),
      ).toThrow("rolled back on purpose");
      expect(ledger.usage()).toEqual({ byType: { h100: 6, a100: 1 }, jobs: 3 });
      same();

      // Given back to zero: the row goes; allocations count until removed; writes outside a transaction.
      tx(() => ledger.give("a100", 1));
      expect(
        state.storage.sql.exec("SELECT count(*) AS n FROM holdings WHERE type_key = 'a100'").one().n,
      ).toBe(0);
      ledger.addAllocation({
        id: "al2",
        gpus: 3,
        type_key: "a100",
        gpu_type: "A100",
        note: "n",
        created_at: now,
      });
      expect(ledger.usage().byType.a100).toBe(3);
      same();
      ledger.give("h100", 2);
      ledger.accrue("alice", -2, now + 2000);
      ledger.removeAllocation("al2");
      expect(ledger.usage()).toEqual({ byType: { h100: 4 }, jobs: 1 });
      same();
      expect(ledger.typeNames()).toEqual({ h100: "H100" });
    });
  });
});
