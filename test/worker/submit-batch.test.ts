// Group commit: concurrent submits to one tenant share SQLite transactions (src/do/tenant/submit-batch.ts)
// without changing what each caller sees or what ends up stored. And the outbox's kept Postgres connection
// (KeptDb) is reused between flushes and replaced after a failure.
import { runInDurableObject } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { SubmitBatcher } from "../../src/do/tenant/submit-batch.ts";
import type { TenantQueue } from "../../src/do/tenant-queue.ts";
import { KeptDb, withDb } from "../../src/lib/pg.ts";
import { api, createTenant, env, flushTenant, gpuTypeName, submit } from "./helpers.ts";

type Inside = {
  submits: SubmitBatcher;
  tc: { jobs: { insert: (...a: unknown[]) => unknown } };
};

describe("submits committed in batches", () => {
  it("concurrent submits share transactions; each is answered and stored exactly once", async () => {
    const t = await createTenant();
    const gpuType = gpuTypeName("B");
    const stub = env.TENANT_QUEUE.getByName(t.id);
    await submit(t.memberKey, { gpuType, name: "warm" }); // the object exists and its catalog is loaded
    const before = await runInDurableObject(stub, (i: TenantQueue) => ({
      ...(i as unknown as Inside).submits.stats,
    }));

    // 36 distinct jobs, plus one Idempotency-Key sent 5 times with the same body, all at once.
    const same = { name: "same", gpuType };
    const rs = await Promise.all([
      ...Array.from({ length: 36 }, (_, i) => submit(t.memberKey, { name: `j${i}`, gpuType })),
      ...Array.from({ length: 5 }, () => submit(t.memberKey, same, { "idempotency-key": "k-same" })),
    ]);
    for (const r of rs) expect([200, 201], r.text).toContain(r.status);
    const keyed = rs.slice(36);
    expect(new Set(keyed.map((r) => r.body.id)).size).toBe(1);
    expect(keyed.filter((r) => r.status === 201)).toHaveLength(1);
    const ids = new Set(rs.map((r) => r.body.id));
    expect(ids.size).toBe(37);

    const inside = await runInDurableObject(stub, (i: TenantQueue, state) => {
      const s = (i as unknown as Inside).submits.stats;
      const q = (sql: string) => state.storage.sql.exec(sql).toArray() as Record<string, number>[];
      return {
        batches: s.batches - before.batches,
        submits: s.submits - before.submits,
        jobs: q("SELECT count(*) AS n FROM jobs")[0]!.n,
        queuedEvents: q("SELECT count(*) AS n FROM events WHERE to_state = 'queued'")[0]!.n,
        eventsPerJob: q("SELECT max(c) AS n FROM (SELECT count(*) AS c FROM events GROUP BY job_id)")[0]!.n,
        counted: q("SELECT sum(n) AS n FROM state_counts WHERE state = 'queued'")[0]!.n,
      };
    });
    expect(inside.submits).toBe(41);
    // The point of it: fewer transactions than submits (41 concurrent calls cannot all be alone).
    expect(inside.batches).toBeLessThan(inside.submits);
    expect(inside).toMatchObject({ jobs: 38, queuedEvents: 38, eventsPerJob: 1, counted: 38 });

    // The counters the queue view reads (written once per batch) agree with the rows.
    const queue = await api<{ counts: { detail: Record<string, Record<string, number>> } }>(
      "GET",
      "/v1/queue",
      {
        token: t.memberKey,
      },
    );
    expect(queue.status, queue.text).toBe(200);
    expect(queue.body.counts.detail.queued).toEqual({ normal: 38 });

    // Postgres receives every job and its one event, nothing twice.
    await flushTenant(t.id);
    const pg = await withDb(env, async (db) => {
      const jobs = await db.execute(sql`SELECT count(*)::int AS n FROM jobs WHERE tenant_id = ${t.id}`);
      const events = await db.execute(
        sql`SELECT count(*)::int AS n, count(DISTINCT job_id)::int AS jobs FROM job_events
            WHERE tenant_id = ${t.id} AND to_state = 'queued'`,
      );
      return { jobs: jobs.rows[0]!.n, events: events.rows[0]!.n, eventJobs: events.rows[0]!.jobs };
    });
    expect(pg).toEqual({ jobs: 38, events: 38, eventJobs: 38 });
  });

  it("a submit that throws mid-batch fails alone; the others of its batch are stored", async () => {
    const t = await createTenant();
    const gpuType = gpuTypeName("X");
    const stub = env.TENANT_QUEUE.getByName(t.id);
    await submit(t.memberKey, { gpuType, name: "warm" });
    // Fault injection: the insert of a job named "boom" throws, as a storage error would.
    const before = await runInDurableObject(stub, (i: TenantQueue) => {
      const jobs = (i as unknown as Inside).tc.jobs;
      const insert = jobs.insert.bind(jobs);
      jobs.insert = (...a: unknown[]) => {
        if ((a[0] as { spec: string }).spec.includes('"boom"')) throw new Error("injected storage failure");
        return insert(...a);
      };
      return { ...(i as unknown as Inside).submits.stats };
    });
    const rs = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => submit(t.memberKey, { name: `ok${i}`, gpuType })),
      submit(t.memberKey, { name: "boom", gpuType }),
      ...Array.from({ length: 6 }, (_, i) => submit(t.memberKey, { name: `ok${i + 6}`, gpuType })),
    ]);
    const after = await runInDurableObject(stub, (i: TenantQueue) => ({
      ...(i as unknown as Inside).submits.stats,
    }));
    // The failure happened inside a shared transaction (otherwise this shows nothing about batches).
    expect(after.batches - before.batches).toBeLessThan(after.submits - before.submits);
    expect(rs[6]!.status, rs[6]!.text).toBe(500);
    const ok = rs.filter((_, i) => i !== 6);
    for (const r of ok) expect(r.status, r.text).toBe(201);

    const stored = await runInDurableObject(stub, (_i: TenantQueue, state) =>
      state.storage.sql
        .exec("SELECT id FROM jobs")
        .toArray()
        .map((r) => r.id as string),
    );
    expect(stored).toHaveLength(13); // warm-up + 12
    for (const r of ok) expect(stored).toContain(r.body.id);
    const counted = await runInDurableObject(
      stub,
      (_i: TenantQueue, state) =>
        state.storage.sql.exec("SELECT sum(n) AS n FROM state_counts WHERE state = 'queued'").one().n,
    );
    expect(counted).toBe(13);
  });
});

describe("the outbox's kept Postgres connection", () => {
  it("is one session across uses, and a fresh one after a failure", async () => {
    const kept = new KeptDb();
    try {
      const one = await kept.use(env, (db) => db.execute(sql`SELECT 1 AS n`));
      const two = await kept.use(env, (db) => db.execute(sql`SELECT 2 AS n`));
      expect([one.rows[0]!.n, two.rows[0]!.n]).toEqual([1, 2]);
      expect(kept.sessions).toBe(1);

      // Postgres refuses a statement: the session (maybe mid-transaction) is dropped, the error surfaces,
      // and the next use opens a new one.
      await expect(kept.use(env, (db) => db.execute(sql`SELECT 1 / 0`))).rejects.toThrow();
      const three = await kept.use(env, (db) => db.execute(sql`SELECT 3 AS n`));
      expect(three.rows[0]!.n).toBe(3);
      expect(kept.sessions).toBe(2);
    } finally {
      await kept.close();
    }
  });
});
