// The tenant object keeps recently written job rows in memory (JobStore's write-through cache): a job is
// read by id at every step of its life. What it serves must be exactly what SQLite holds, including after
// a transaction rolled back, after a caller changed the object it was given, and after retention deleted it.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobRow, JobStore } from "../../src/do/tenant/jobs.ts";
import type { TenantQueue } from "../../src/do/tenant-queue.ts";
import { createTenant, env, gpuTypeName, submit } from "./helpers.ts";

type Inside = { tc: { jobs: JobStore; tx<T>(fn: () => T): T } };

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
      const done = tx(() =>
        jobs.transition(jobs.get(id)!, "cancelled", { reason: "Cancelled" }, { reason: "Cancelled" }),
      );
      expect(done.state).toBe("cancelled");
      expect(jobs.get(id)).toEqual(stored(state, id));
      expect(jobs.get(id)!.version).toBe(2);

      // Deleted by retention: forgotten, not served from memory.
      state.storage.sql.exec("DELETE FROM jobs WHERE id = ?", id);
      jobs.forget([id]);
      expect(jobs.get(id)).toBeNull();
    });
  });
});
