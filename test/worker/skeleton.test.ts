// The walking skeleton in the real runtime: submit → placement → lease → status reports → history in
// Postgres, with the Durable Objects' own invariants checked from inside them.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { TenantQueue } from "../../src/do/tenant-queue.ts";
import { withDb } from "../../src/lib/pg.ts";
import {
  api,
  awaitAssignments,
  createPool,
  createTenant,
  env,
  expectProblem,
  flushTenant,
  getJob,
  heartbeat,
  registerWorker,
  submit,
  uniq,
  until,
} from "./helpers.ts";

describe("walking skeleton", () => {
  it("runs a job from submit to succeeded and fences old leases", async () => {
    const t = await createTenant();
    const pool = await createPool();
    const gpuType = uniq("G")
      .toUpperCase()
      .replace(/[^A-Z0-9]/g, "");
    const w = await registerWorker(pool.joinToken, 2, gpuType);
    const s = await submit(t.memberKey, { name: "hello", command: ["sh", "-c", "echo hi"], gpuType });
    expect(s.status, s.text).toBe(201);
    expect(s.body.state).toBe("queued");
    expect(s.body.user).toBe("bob"); // defaults to the key's name
    expect(s.headers.get("location")).toBe(`/v1/jobs/${s.body.id}`);

    const [a] = await awaitAssignments(w);
    expect(a!.jobId).toBe(s.body.id);
    expect(a!.gpuIndices).toEqual([0]); // concrete GPU index
    expect((await getJob(t.memberKey, s.body.id)).state).toBe("scheduled");

    const run = await api("POST", `/v1/workers/${w.workerId}/jobs/${a!.jobId}/status`, {
      token: w.token,
      body: { lease: a!.lease, state: "running" },
    });
    expect(run.status, run.text).toBe(200);
    // A report carrying a lease the job never had is refused and changes nothing.
    const stale = await api("POST", `/v1/workers/${w.workerId}/jobs/${a!.jobId}/status`, {
      token: w.token,
      body: { lease: a!.lease - 1, state: "succeeded", exitCode: 0 },
    });
    expectProblem(stale, 409, "StaleLease");
    expect((await getJob(t.memberKey, s.body.id)).state).toBe("running");

    const done = await api("POST", `/v1/workers/${w.workerId}/jobs/${a!.jobId}/status`, {
      token: w.token,
      body: { lease: a!.lease, state: "succeeded", exitCode: 0, logTail: "hi\n" },
    });
    expect(done.status, done.text).toBe(200);
    const job = await getJob(t.memberKey, s.body.id);
    expect(job).toMatchObject({ state: "succeeded", exitCode: 0, attempt: 1, gpuIndices: [0] });
    // The same final report again (its answer was lost) gets the same answer.
    const again = await api("POST", `/v1/workers/${w.workerId}/jobs/${a!.jobId}/status`, {
      token: w.token,
      body: { lease: a!.lease, state: "succeeded", exitCode: 0 },
    });
    expect(again.status, again.text).toBe(200);
    const logs = await api<{ tail: string }>("GET", `/v1/jobs/${s.body.id}/logs`, { token: t.memberKey });
    expect(logs.body.tail).toBe("hi\n");

    const events = await api<{ items: { from: string | null; to: string }[] }>(
      "GET",
      `/v1/jobs/${s.body.id}/events`,
      { token: t.memberKey },
    );
    expect(events.body.items.map((e) => e.to)).toEqual(["queued", "scheduled", "running", "succeeded"]);
    // GPUs are free again: the worker has no lease left.
    const hb = await heartbeat(w);
    expect(hb.assignments).toEqual([]);
  });

  it("a failing command ends failed with its exit code", async () => {
    const t = await createTenant();
    const pool = await createPool();
    const gpuType = uniq("F")
      .toUpperCase()
      .replace(/[^A-Z0-9]/g, "");
    const w = await registerWorker(pool.joinToken, 1, gpuType);
    const s = await submit(t.memberKey, { command: ["sh", "-c", "exit 3"], gpuType });
    const [a] = await awaitAssignments(w);
    const r = await api("POST", `/v1/workers/${w.workerId}/jobs/${a!.jobId}/status`, {
      token: w.token,
      body: { lease: a!.lease, state: "failed", exitCode: 3 },
    });
    expect(r.status).toBe(200);
    expect(await getJob(t.memberKey, s.body.id)).toMatchObject({
      state: "failed",
      exitCode: 3,
      reason: "Failed",
    });
  });

  it("orders a tenant's queue by priority, then submit time", async () => {
    const t = await createTenant();
    const gpuType = uniq("Q")
      .toUpperCase()
      .replace(/[^A-Z0-9]/g, "");
    const ids: Record<string, string> = {};
    for (const [name, priority] of [
      ["n1", "normal"],
      ["l1", "low"],
      ["h1", "high"],
      ["n2", "normal"],
      ["h2", "high"],
    ] as const) {
      const r = await submit(t.memberKey, { name, priority, gpuType });
      ids[name] = r.body.id;
    }
    const stub = env.TENANT_QUEUE.getByName(t.id);
    const order = await runInDurableObject(stub, async (_inst: TenantQueue, state) => {
      const { pickJob } = await import("../../src/do/tenant/leases.ts");
      const picked: string[] = [];
      // Drain the ready queue in the order placement would take it.
      for (;;) {
        const ctx = (_inst as unknown as { tc: Parameters<typeof pickJob>[0] }).tc;
        const j = pickJob(ctx, `1x${gpuType}`, Date.now());
        if (!j) break;
        picked.push(j.id);
        state.storage.sql.exec("UPDATE jobs SET ready = 0 WHERE id = ?", j.id);
        state.storage.sql.exec(
          "UPDATE ready_users SET n = n - 1 WHERE shape = ? AND priority = ? AND user = ?",
          j.shape,
          j.priority,
          j.user,
        );
        state.storage.sql.exec("DELETE FROM ready_users WHERE n <= 0");
      }
      return picked;
    });
    expect(order).toEqual([ids.h1, ids.h2, ids.n1, ids.n2, ids.l1]);
  });

  it("flushes outbox rows to Postgres once and only once", async () => {
    const t = await createTenant();
    const s = await submit(t.memberKey, { name: "outboxed", gpuType: "NONE" });
    const stub = env.TENANT_QUEUE.getByName(t.id);
    // Run the alarm until the outbox is empty.
    await until(
      async () => {
        await runDurableObjectAlarm(stub);
        return runInDurableObject(
          stub,
          (_i, state) => state.storage.sql.exec("SELECT count(*) AS n FROM _outbox").one().n === 0,
        );
      },
      10_000,
      "outbox drained",
    );
    const count = () =>
      withDb(env, async (db) => {
        const r = await db.execute(
          sql`SELECT count(*)::int AS n FROM job_events WHERE job_id = ${s.body.id}`,
        );
        return (r.rows[0] as { n: number }).n;
      });
    expect(await count()).toBe(1);
    // Replaying the same rows (an alarm retried after a crash between commit and delete) adds nothing.
    await runInDurableObject(stub, async (inst: TenantQueue, state) => {
      const ev = state.storage.sql.exec("SELECT * FROM events WHERE job_id = ?", s.body.id).one();
      const rec = {
        tenantId: t.id,
        seq: ev.seq,
        jobId: ev.job_id,
        at: ev.at,
        fromState: ev.from_state,
        toState: ev.to_state,
        reason: ev.reason,
        message: ev.message,
        attempt: ev.attempt,
        lease: ev.lease,
        workerId: ev.worker_id,
        exitCode: ev.exit_code,
      };
      state.storage.sql.exec("INSERT INTO _outbox (kind, payload) VALUES ('event', ?)", JSON.stringify(rec));
      await inst.flushOutbox();
    });
    expect(await count()).toBe(1);
    const job = await withDb(env, (db) =>
      db.execute(sql`SELECT state, version FROM jobs WHERE id = ${s.body.id}`),
    );
    expect(job.rows[0]).toMatchObject({ state: "queued", version: 1 });
  });

  it("a row Postgres refuses is set aside; the rest of the history keeps flowing", async () => {
    const t = await createTenant();
    const good = await submit(t.memberKey, { name: "good", gpuType: "NONE" });
    const stub = env.TENANT_QUEUE.getByName(t.id);
    await runInDurableObject(stub, async (inst: TenantQueue, state) => {
      // A usage record whose GPU count is not a number: Postgres rejects it, and with it the whole batch.
      state.storage.sql.exec(
        "INSERT INTO _outbox (kind, payload) VALUES ('usage', ?)",
        JSON.stringify({
          id: "bad:1",
          tenantId: t.id,
          jobId: "job_x",
          user: "u",
          gpuType: "X",
          gpus: "many",
          startedAt: 0,
          endedAt: 1,
        }),
      );
      await inst.flushOutbox();
    });
    const after = await submit(t.memberKey, { name: "after", gpuType: "NONE" });
    await flushTenant(t.id);
    const rows = await withDb(env, (db) =>
      db.execute(sql`SELECT name FROM jobs WHERE tenant_id = ${t.id} ORDER BY name`),
    );
    expect(rows.rows.map((r) => (r as { name: string }).name)).toEqual(["after", "good"]);
    const dead = await runInDurableObject(stub, (_i, state) =>
      state.storage.sql.exec("SELECT kind, error FROM _outbox_refused").toArray(),
    );
    expect(dead).toHaveLength(1);
    expect(dead[0]!.kind).toBe("usage");
    void good;
    void after;
  });
});
