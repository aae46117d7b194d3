// Quotas (Kueue model): the limit holds under a burst, usage always returns to zero, cohorts lend.
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { withDb } from "../../src/lib/pg.ts";
import {
  type Assignment,
  api,
  awaitAssignments,
  complete,
  createPool,
  createTenant,
  env,
  expectProblem,
  flushTenant,
  getJob,
  gpuTypeName,
  heartbeat,
  registerWorker,
  report,
  setQuota,
  submit,
  until,
} from "./helpers.ts";

interface QuotaStatus {
  usage: { gpus: number; jobs: number; byType: Record<string, number> };
}

/** Max number of jobs holding GPUs at once, replayed from the tenant's transition history in Postgres. */
async function maxConcurrentFromHistory(tenantId: string): Promise<{ max: number; scheduled: number }> {
  const rows = await withDb(env, async (db) => {
    const r = await db.execute(
      sql`SELECT seq, from_state, to_state FROM job_events WHERE tenant_id = ${tenantId} ORDER BY seq`,
    );
    return r.rows as { seq: number; from_state: string | null; to_state: string }[];
  });
  const holds = (s: string | null) => s === "scheduled" || s === "running";
  let cur = 0;
  let max = 0;
  let scheduled = 0;
  for (const e of rows) {
    if (e.to_state === "scheduled") scheduled++;
    cur += (holds(e.to_state) ? 1 : 0) - (holds(e.from_state) ? 1 : 0);
    max = Math.max(max, cur);
  }
  return { max, scheduled };
}

describe("quotas", () => {
  it("1,000 concurrent 1-GPU submissions never hold more than a 4-GPU quota, with 64 GPUs free", async () => {
    const t = await createTenant();
    const type = gpuTypeName("QC");
    await setQuota(t.id, { gpus: { [type]: { nominal: 4 } } });
    const pool = await createPool();
    const workers = await Promise.all(
      Array.from({ length: 16 }, () => registerWorker(pool.joinToken, 4, type)),
    );
    const subs = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => submit(t.memberKey, { name: `burst-${i}`, gpuType: type })),
    );
    expect(subs.every((s) => s.status === 201)).toBe(true);
    let done = 0;
    const end = Date.now() + 60_000;
    while (done < 120 && Date.now() < end) {
      for (const w of workers) {
        const hb = await heartbeat(w);
        for (const a of hb.assignments) {
          await complete(w, a);
          done++;
        }
      }
      const q = await api<QuotaStatus>("GET", "/v1/quota", { token: t.memberKey });
      expect(q.body.usage.gpus).toBeLessThanOrEqual(4);
    }
    expect(done).toBeGreaterThanOrEqual(120);
    await flushTenant(t.id);
    const h = await maxConcurrentFromHistory(t.id);
    expect(h.scheduled).toBeGreaterThanOrEqual(120);
    expect(h.max).toBe(4); // reached, never exceeded
  }, 120_000);

  it("jobs whose worker dies, that time out or are cancelled leave usage at exactly zero", async () => {
    const t = await createTenant();
    const pool = await createPool();
    const [ta, tb, tc] = [gpuTypeName("LA"), gpuTypeName("LB"), gpuTypeName("LC")];
    const wa = await registerWorker(pool.joinToken, 1, ta);
    const wb = await registerWorker(pool.joinToken, 2, tb);
    const wc = await registerWorker(pool.joinToken, 4, tc);
    const ja = await submit(t.memberKey, { name: "dies", gpuType: ta });
    const jb = await submit(t.memberKey, { name: "times-out", gpuType: tb, gpus: 2, maxRuntimeSeconds: 1 });
    const jc = await submit(t.memberKey, { name: "cancelled", gpuType: tc, gpus: 3 });
    const [aa] = await awaitAssignments(wa);
    const [ab] = await awaitAssignments(wb);
    const [ac] = await awaitAssignments(wc);
    for (const [w, a] of [
      [wa, aa],
      [wb, ab],
      [wc, ac],
    ] as const) {
      expect((await report(w, a!, "running")).status).toBe(200);
    }
    let q = await api<QuotaStatus>("GET", "/v1/quota", { token: t.memberKey });
    expect(q.body.usage).toMatchObject({ gpus: 6, jobs: 3 });

    // Timeout: the agent kills it and reports; the job fails and gives its GPUs back.
    expect(
      (await report(wb, ab!, "failed", { exitCode: null, reason: "Timeout", message: "exceeded 1 s" }))
        .status,
    ).toBe(200);
    expect(await getJob(t.memberKey, jb.body.id)).toMatchObject({ state: "failed", reason: "Timeout" });

    // Cancel a running job: the agent is told, kills it, reports; the job ends cancelled.
    const c = await api<{ state: string; cancelRequested: boolean }>(
      "POST",
      `/v1/jobs/${jc.body.id}/cancel`,
      {
        token: t.memberKey,
      },
    );
    expect(c.body).toMatchObject({ state: "running", cancelRequested: true });
    await until(async () =>
      (await heartbeat(wc, [{ jobId: ac!.jobId, lease: ac!.lease }])).cancel.includes(ac!.jobId),
    );
    expect((await report(wc, ac!, "failed", { exitCode: null, reason: "Cancelled" })).status).toBe(200);
    expect((await getJob(t.memberKey, jc.body.id)).state).toBe("cancelled");

    // Worker death: stop heartbeating wa; after the lease TTL its job goes back to the queue (attempt 2).
    await until(
      async () => {
        await heartbeat(wb);
        await heartbeat(wc);
        const j = await getJob(t.memberKey, ja.body.id);
        return j.state === "queued" && j.attempt === 2;
      },
      20_000,
      "worker declared dead and its job requeued",
    );
    q = await api<QuotaStatus>("GET", "/v1/quota", { token: t.memberKey });
    expect(q.body.usage).toEqual({ gpus: 0, byType: {}, jobs: 0 });
    // The dead worker's late report is refused.
    expectProblem(await report(wa, aa!, "succeeded", { exitCode: 0 }), 409);
  }, 60_000);

  it("an idle cohort member lends up to its lending limit and is served first when it submits", async () => {
    const cohort = `c${Date.now().toString(36)}`;
    const type = gpuTypeName("CO");
    const a = await createTenant();
    const b = await createTenant();
    await setQuota(a.id, { gpus: { [type]: { nominal: 4, lendingLimit: 2 } }, cohort });
    await setQuota(b.id, { gpus: { [type]: { nominal: 2, borrowingLimit: 8 } }, cohort });
    const pool = await createPool();
    const big = await registerWorker(pool.joinToken, 4, type);
    const small = await registerWorker(pool.joinToken, 2, type);
    const workers = [big, small];
    const held = new Map<string, { w: typeof big; a: Assignment }>();
    const collect = async () => {
      for (const w of workers) {
        const mine = [...held.values()]
          .filter((x) => x.w === w)
          .map((x) => ({ jobId: x.a.jobId, lease: x.a.lease }));
        for (const asg of (await heartbeat(w, mine)).assignments) held.set(asg.jobId, { w, a: asg });
      }
    };
    for (let i = 0; i < 8; i++) await submit(b.memberKey, { name: `b${i}`, gpuType: type });
    // B holds its 2 nominal GPUs plus the 2 that A lends — not the other 2 free GPUs.
    await until(async () => {
      await collect();
      return held.size >= 4;
    });
    await new Promise((r) => setTimeout(r, 300));
    await collect();
    expect(held.size).toBe(4);
    expect((await api<QuotaStatus>("GET", "/v1/quota", { token: b.memberKey })).body.usage.gpus).toBe(4);

    // A submits 4: two start at once on the idle GPUs (A is inside its nominal quota), two must wait.
    const aJobs = new Set<string>();
    for (let i = 0; i < 4; i++)
      aJobs.add((await submit(a.memberKey, { name: `a${i}`, gpuType: type })).body.id);
    await until(async () => {
      await collect();
      return held.size >= 6;
    });
    expect([...held.keys()].filter((id) => aJobs.has(id))).toHaveLength(2);
    // As B's jobs finish, the freed GPUs go to A's waiting jobs before B borrows again.
    const next: string[] = [];
    for (let step = 0; step < 2; step++) {
      const fin = [...held.values()].find((x) => !aJobs.has(x.a.jobId))!;
      await complete(fin.w, fin.a);
      held.delete(fin.a.jobId);
      const before = new Set(held.keys());
      await until(async () => {
        await collect();
        return held.size > before.size;
      });
      next.push(...[...held.keys()].filter((id) => !before.has(id)));
    }
    expect(next.filter((id) => aJobs.has(id))).toHaveLength(2);
  }, 60_000);

  it("manual allocations use the same ledger: at the limit it fits, one more does not", async () => {
    const t = await createTenant();
    const type = gpuTypeName("AL");
    await setQuota(t.id, { gpus: { [type]: { nominal: 4 } } });
    const check = await api<{ fits: boolean }>("POST", "/v1/quota/check", {
      token: t.memberKey,
      body: { gpus: 4, gpuType: type },
    });
    expect(check.body.fits).toBe(true);
    const a1 = await api<{ id: string }>("POST", "/v1/quota/allocations", {
      token: t.memberKey,
      body: { gpus: 3, gpuType: type, note: "interactive" },
    });
    expect(a1.status, a1.text).toBe(201);
    const a2 = await api<{ id: string }>("POST", "/v1/quota/allocations", {
      token: t.memberKey,
      body: { gpus: 1, gpuType: type },
    });
    expect(a2.status).toBe(201); // exactly at the limit
    expectProblem(
      await api("POST", "/v1/quota/allocations", { token: t.memberKey, body: { gpus: 1, gpuType: type } }),
      409,
      "QuotaExceeded",
    );
    const over = await api<{ fits: boolean; reason: string }>("POST", "/v1/quota/check", {
      token: t.memberKey,
      body: { gpus: 1, gpuType: type },
    });
    expect(over.body.fits).toBe(false);
    // The scheduler sees the same ledger: a job cannot start while the quota is allocated.
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 2, type);
    const j = await submit(t.memberKey, { gpuType: type });
    await new Promise((r) => setTimeout(r, 300));
    expect((await heartbeat(w)).assignments).toEqual([]);
    const why = await api<{ reason: { code: string } }>("GET", `/v1/jobs/${j.body.id}/explain`, {
      token: t.memberKey,
    });
    expect(why.body.reason.code).toBe("QuotaExceeded");
    expect((await api("DELETE", `/v1/quota/allocations/${a2.body.id}`, { token: t.memberKey })).status).toBe(
      204,
    );
    const [asg] = await awaitAssignments(w);
    expect(asg!.jobId).toBe(j.body.id);
    expectProblem(await api("DELETE", `/v1/quota/allocations/${a2.body.id}`, { token: t.memberKey }), 404);
  });

  it("reports GPU-seconds by user and GPU type", async () => {
    const t = await createTenant();
    const type = gpuTypeName("US");
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 2, type);
    await submit(t.memberKey, { gpuType: type, gpus: 2, user: "carol" });
    const [a] = await awaitAssignments(w);
    await report(w, a!, "running");
    await new Promise((r) => setTimeout(r, 400));
    await report(w, a!, "succeeded", { exitCode: 0 });
    await flushTenant(t.id);
    const u = await api<{ items: { user: string; gpuType: string; gpuSeconds: number }[] }>(
      "GET",
      "/v1/usage",
      {
        token: t.memberKey,
      },
    );
    expect(u.status, u.text).toBe(200);
    const row = u.body.items.find((r) => r.user === "carol");
    expect(row?.gpuType).toBe(type);
    expect(row!.gpuSeconds).toBeGreaterThan(0.7); // 2 GPUs × ≥ 0.4 s
    expect(row!.gpuSeconds).toBeLessThan(60);
  });

  it("with step, also per bucket: a finished job is split at the bucket edge, a running one fills its bucket", async () => {
    type Rows = { user: string; gpuSeconds: number; jobs: number }[];
    type Usage = {
      totalGpuSeconds: number;
      items: Rows;
      buckets?: { from: string; to: string; totalGpuSeconds: number; items: Rows }[];
    };
    const t = await createTenant();
    const type = gpuTypeName("UB");
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 2, type);
    await submit(t.memberKey, { gpuType: type, gpus: 1, user: "dana" });
    const [a] = await awaitAssignments(w);
    await report(w, a!, "running");
    await new Promise((r) => setTimeout(r, 300));
    const edge = Date.now(); // inside the run: the bucket boundary
    await new Promise((r) => setTimeout(r, 300));
    await report(w, a!, "succeeded", { exitCode: 0 });
    await submit(t.memberKey, { gpuType: type, gpus: 1, user: "eve" }); // left running
    const [b] = await awaitAssignments(w);
    await report(w, b!, "running");
    const iso = (ms: number) => new Date(ms).toISOString();
    const from = iso(edge - 60_000);
    const to = iso(edge + 60_000);
    const u = await api<Usage>("GET", `/v1/usage?from=${from}&to=${to}&step=60`, { token: t.memberKey });
    expect(u.status, u.text).toBe(200);
    const [before, after] = u.body.buckets!;
    expect(u.body.buckets!.map((x) => [x.from, x.to])).toEqual([
      [from, iso(edge)],
      [iso(edge), to],
    ]);
    const dana = (rows: Rows) => rows.find((r) => r.user === "dana");
    expect(dana(before!.items)!.gpuSeconds).toBeGreaterThan(0.25);
    expect(dana(after!.items)!.gpuSeconds).toBeGreaterThan(0.25);
    expect(dana(before!.items)!.gpuSeconds + dana(after!.items)!.gpuSeconds).toBeCloseTo(
      dana(u.body.items)!.gpuSeconds,
      2,
    );
    // The running job started after the edge: only the second bucket has it.
    expect(before!.items.find((r) => r.user === "eve")).toBeUndefined();
    expect(after!.items.find((r) => r.user === "eve")?.jobs).toBe(1);
    // Without step, the same window has no buckets.
    const plain = await api<Usage>("GET", `/v1/usage?from=${from}&to=${to}`, { token: t.memberKey });
    expect(plain.body.buckets).toBeUndefined();
    expect(dana(plain.body.items)?.jobs).toBe(1);
    // A step under a minute, or more than 500 buckets, is refused by name.
    for (const q of [
      `from=${from}&to=${to}&step=59`,
      `from=${from}&to=${to}&step=1.5`,
      "step=60&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
    ]) {
      const r = await api<{ errors: { path: string }[] }>("GET", `/v1/usage?${q}`, { token: t.memberKey });
      expectProblem(r, 400, "ValidationFailed");
      expect(r.body.errors.map((e) => e.path)).toContain("query.step");
    }
  });
});
