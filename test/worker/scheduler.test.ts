// The scheduler through the real objects: starvation-freedom, weighted shares, priority, per-user fairness,
// best fit, and idempotent submission under concurrent retries.
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { withDb } from "../../src/lib/pg.ts";
import {
  type Assignment,
  api,
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
  submit,
  until,
} from "./helpers.ts";

type W = { workerId: string; token: string };

/** Heartbeat until the worker is handed exactly one new assignment; returns it. */
async function nextAssignment(w: W, running: Assignment[] = []): Promise<Assignment> {
  return until(
    async () => {
      const hb = await heartbeat(
        w,
        running.map((a) => ({ jobId: a.jobId, lease: a.lease })),
      );
      return hb.assignments.find((a) => !running.some((r) => r.jobId === a.jobId)) ?? null;
    },
    10_000,
    "an assignment",
  );
}

describe("scheduler", () => {
  it("starvation: a tenant with one job goes next, behind another tenant's 1,000-job backlog", async () => {
    const type = gpuTypeName("ST");
    const a = await createTenant();
    const b = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) => submit(a.memberKey, { name: `a${i}`, gpuType: type })),
    );
    const first = await nextAssignment(w);
    expect((await getJob(a.memberKey, first.jobId)).name).toMatch(/^a/);
    const bJob = await submit(b.memberKey, { name: "b-only", gpuType: type });
    await report(w, first, "running");
    await new Promise((r) => setTimeout(r, 200)); // A has now used the GPU for a while
    await report(w, first, "succeeded", { exitCode: 0 });
    const next = await nextAssignment(w);
    expect(next.jobId).toBe(bJob.body.id);
  }, 60_000);

  it("weighted share: weights 1 and 3 with deep queues get GPU-time within ±10% of 1:3", async () => {
    const type = gpuTypeName("WS");
    const light = await createTenant(undefined, 1);
    const heavy = await createTenant(undefined, 3);
    const pool = await createPool();
    // Both queues are deep before there is a GPU: with the workers first, light's jobs (submitted first)
    // could take every GPU while heavy had nothing queued yet, which is right, but then the first round
    // is 4:0, not what this measures. That happened when the machine was busy (177 vs 63 jobs).
    for (const t of [light, heavy]) {
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => submit(t.memberKey, { name: `j${i}`, gpuType: type })),
      );
    }
    const workers: W[] = [];
    for (let i = 0; i < 4; i++) workers.push(await registerWorker(pool.joinToken, 1, type));
    // Every job holds its GPU for the same time: each round runs what is assigned, then ends it.
    const held = new Map<string, Assignment>();
    let placements = 0;
    while (placements < 240) {
      for (const w of workers) {
        const cur = held.get(w.workerId);
        if (cur) {
          await complete(w, cur);
          held.delete(w.workerId);
        }
      }
      for (const w of workers) {
        const a = await nextAssignment(w);
        await report(w, a, "running");
        held.set(w.workerId, a);
        placements++;
      }
      // Each job's hold time is this pause plus a few sequential calls: a longer pause keeps the calls'
      // jitter (large when the machine is busy) a small part of the GPU-time being compared.
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const [wid, a] of held) await complete(workers.find((w) => w.workerId === wid)!, a);
    await flushTenant(light.id);
    await flushTenant(heavy.id);
    const gpuSeconds = async (tenantId: string) =>
      withDb(env, async (db) => {
        const r = await db.execute(
          sql`SELECT coalesce(sum(gpus * extract(epoch from (ended_at - started_at))), 0)::float8 AS s, count(*)::int AS n FROM usage_records WHERE tenant_id = ${tenantId}`,
        );
        return r.rows[0] as { s: number; n: number };
      });
    const l = await gpuSeconds(light.id);
    const h = await gpuSeconds(heavy.id);
    expect(l.n + h.n).toBeGreaterThanOrEqual(240);
    const ratio = h.s / l.s;
    expect(ratio, `heavy/light GPU-time ratio ${ratio.toFixed(3)} (${h.n} vs ${l.n} jobs)`).toBeGreaterThan(
      3 * 0.9,
    );
    expect(ratio).toBeLessThan(3 * 1.1);
  }, 120_000);

  it("priority: high before normal before low inside a tenant, whatever the submit order", async () => {
    const type = gpuTypeName("PR");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    const blocker = await submit(t.memberKey, { name: "blocker", gpuType: type });
    const first = await nextAssignment(w);
    expect(first.jobId).toBe(blocker.body.id);
    const low = await submit(t.memberKey, { name: "low", priority: "low", gpuType: type });
    const normal = await submit(t.memberKey, { name: "normal", gpuType: type });
    const high = await submit(t.memberKey, { name: "high", priority: "high", gpuType: type });
    const order: string[] = [];
    let cur = first;
    for (let i = 0; i < 3; i++) {
      await complete(w, cur);
      cur = await nextAssignment(w);
      order.push(cur.jobId);
    }
    expect(order).toEqual([high.body.id, normal.body.id, low.body.id]);
  });

  it("inside a tenant, the user with less decayed usage goes first", async () => {
    const type = gpuTypeName("PU");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    const alice = [];
    for (let i = 0; i < 5; i++)
      alice.push((await submit(t.memberKey, { name: `alice-${i}`, user: "alice", gpuType: type })).body.id);
    const first = await nextAssignment(w);
    expect(first.jobId).toBe(alice[0]);
    const bob = await submit(t.memberKey, { name: "bob-0", user: "bob", gpuType: type });
    await report(w, first, "running");
    await new Promise((r) => setTimeout(r, 200));
    await report(w, first, "succeeded", { exitCode: 0 });
    expect((await nextAssignment(w)).jobId).toBe(bob.body.id);
  });

  it("best fit: a 2-GPU job goes to the 2-GPU worker, not the 4-GPU one, with concrete indices", async () => {
    const type = gpuTypeName("BF");
    const t = await createTenant();
    const pool = await createPool();
    const big = await registerWorker(pool.joinToken, 4, type);
    const small = await registerWorker(pool.joinToken, 2, type);
    const two = await submit(t.memberKey, { name: "two", gpus: 2, gpuType: type });
    const a = await nextAssignment(small);
    expect(a.jobId).toBe(two.body.id);
    expect(a.gpuIndices).toEqual([0, 1]);
    expect((await heartbeat(big)).assignments).toEqual([]);
    const three = await submit(t.memberKey, { name: "three", gpus: 3, gpuType: type });
    const b = await nextAssignment(big);
    expect(b.jobId).toBe(three.body.id);
    expect(b.gpuIndices).toEqual([0, 1, 2]);
    // Then a 1-GPU job takes the last GPU of the big worker (the only free one).
    const one = await submit(t.memberKey, { name: "one", gpus: 1, gpuType: type });
    const c = await nextAssignment(big, [b]);
    expect(c.jobId).toBe(one.body.id);
    expect(c.gpuIndices).toEqual([3]);
  });

  it("20 concurrent identical submissions with one Idempotency-Key create one job", async () => {
    const t = await createTenant();
    const body = { name: "once", command: ["true"], gpus: 1, gpuType: "NOWHERE" };
    const rs = await Promise.all(
      Array.from({ length: 20 }, () => submit(t.memberKey, body, { "idempotency-key": "retry-me-1" })),
    );
    const ids = new Set(rs.map((r) => r.body.id));
    expect(ids.size).toBe(1);
    expect(rs.filter((r) => r.status === 201)).toHaveLength(1);
    expect(rs.filter((r) => r.status === 200)).toHaveLength(19);
    const q = await api<{ counts: { byState: { queued: number } } }>("GET", "/v1/queue", {
      token: t.memberKey,
    });
    expect(q.body.counts.byState.queued).toBe(1);
    // The same key with a different body is refused rather than silently answered with the old job.
    const other = await submit(t.memberKey, { ...body, name: "other" }, { "idempotency-key": "retry-me-1" });
    expect(other.status).toBe(409);
  });

  it("an Idempotency-Key replay matches the submission's meaning, by the hand check or by the schema", async () => {
    // The route checks plainly valid bodies by hand (functions/submit-fast.ts) and leaves the rest to zod;
    // both must give the same validated value, since the fingerprint is a hash of it.
    const t = await createTenant();
    const key = { "idempotency-key": "same-meaning-1" };
    const first = await submit(t.memberKey, { name: "m", gpuType: "NOWHERE", env: { A: "1" } }, key);
    expect(first.status, first.text).toBe(201);
    const variants: Record<string, unknown>[] = [
      // other key order, defaults spelled out
      { env: { A: "1" }, priority: "normal", maxRetries: 0, labels: {}, gpuType: "NOWHERE", name: "m" },
      // a __proto__ env key goes to the schema, which drops it
      { name: "m", gpuType: "NOWHERE", env: JSON.parse('{"__proto__":"x","A":"1"}') },
    ];
    for (const v of variants) {
      const r = await submit(t.memberKey, v, key);
      expect(r.status, r.text).toBe(200);
      expect(r.body.id).toBe(first.body.id);
    }
    const changed = await submit(t.memberKey, { name: "m", gpuType: "NOWHERE", env: { A: "2" } }, key);
    expect(changed.status).toBe(409);
    // The route's hook still sees every accepted body: a NUL in a command is refused, and creates nothing.
    const nul = await submit(t.memberKey, { name: "nul", gpuType: "NOWHERE", command: ["a\u0000b"] });
    expect(nul.status).toBe(400);
    expect((nul.body as unknown as { errors: { path: string }[] }).errors[0]?.path).toBe("command.0");
    const q = await api<{ counts: { byState: { queued: number } } }>("GET", "/v1/queue", {
      token: t.memberKey,
    });
    expect(q.body.counts.byState.queued).toBe(1);
  });

  it("a malformed Idempotency-Key is a 400 naming the header, and creates nothing", async () => {
    const t = await createTenant();
    const body = { name: "bad-key", command: ["true"], gpus: 1, gpuType: "NOWHERE" };
    for (const key of ["has space", "x".repeat(256), "tab\there", ""]) {
      const r = await api<{ code: string; errors: { path: string }[] }>("POST", "/v1/jobs", {
        token: t.memberKey,
        body,
        headers: { "idempotency-key": key },
      });
      expect(r.status, key).toBe(400);
      expect(r.body.code).toBe("ValidationFailed");
      expect([...new Set(r.body.errors.map((e) => e.path))]).toEqual(["header.idempotency-key"]);
    }
    const q = await api<{ counts: { byState: { queued: number } } }>("GET", "/v1/queue", {
      token: t.memberKey,
    });
    expect(q.body.counts.byState.queued).toBe(0);
  });

  it("cancel racing an assignment never leaves the job running or the GPU held", async () => {
    const type = gpuTypeName("CR");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    for (let round = 0; round < 10; round++) {
      const s = await submit(t.memberKey, { name: `race-${round}`, gpuType: type });
      // Let placement happen (or not) while the cancel and the agent's heartbeat race.
      await new Promise((r) => setTimeout(r, round * 5));
      const [c, hb] = await Promise.all([
        api<{ state: string }>("POST", `/v1/jobs/${s.body.id}/cancel`, { token: t.memberKey }),
        heartbeat(w),
      ]);
      expect(c.status).toBe(200);
      const got = hb.assignments.find((a) => a.jobId === s.body.id);
      if (got) {
        // The agent started it before hearing of the cancel: either its report is refused, or the
        // next heartbeat tells it to stop; either way the job ends cancelled.
        const r = await report(w, got, "running");
        if (r.status === 200) {
          await until(async () =>
            (await heartbeat(w, [{ jobId: got.jobId, lease: got.lease }])).cancel.includes(got.jobId),
          );
          expect((await report(w, got, "failed", { exitCode: null, reason: "Cancelled" })).status).toBe(200);
        } else {
          expect(r.status).toBe(409);
        }
      }
      await until(
        async () => (await getJob(t.memberKey, s.body.id)).state === "cancelled",
        10_000,
        "cancelled",
      );
    }
    const q = await api<{ usage: { gpus: number; jobs: number } }>("GET", "/v1/quota", {
      token: t.memberKey,
    });
    expect(q.body.usage).toMatchObject({ gpus: 0, jobs: 0 });
    // The GPU is free: a new job is placed on it.
    const last = await submit(t.memberKey, { name: "after", gpuType: type });
    expect((await nextAssignment(w)).jobId).toBe(last.body.id);
  }, 60_000);

  it("lists from history within a second, filtered and paginated newest first", async () => {
    const t = await createTenant();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const s = await submit(t.memberKey, {
        name: `l${i}`,
        gpuType: "NOWHERE",
        priority: i % 2 ? "high" : "low",
        user: i < 3 ? "carol" : "dave",
        labels: { team: i < 5 ? "vision" : "nlp" },
      });
      ids.push(s.body.id);
    }
    const started = Date.now();
    const page1 = await until(
      async () => {
        const r = await api<{ items: { id: string }[]; nextCursor: string | null }>(
          "GET",
          "/v1/jobs?limit=3",
          {
            token: t.memberKey,
          },
        );
        return r.body.items.length === 3 && r.body.items[0]!.id === ids[6] ? r.body : null;
      },
      5_000,
      "jobs listed",
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(page1.items.map((j) => j.id)).toEqual([ids[6], ids[5], ids[4]]);
    const page2 = await api<{ items: { id: string }[]; nextCursor: string | null }>(
      "GET",
      `/v1/jobs?limit=3&cursor=${page1.nextCursor}`,
      { token: t.memberKey },
    );
    expect(page2.body.items.map((j) => j.id)).toEqual([ids[3], ids[2], ids[1]]);
    // A cursor that is not one of ours is the client's error, including one whose time Date cannot hold
    // (an Invalid Date would make the query throw: a 500).
    for (const bad of ["not-a-cursor", btoa("[1,2]"), btoa('[1e20,"x"]'), btoa('[-9e15,"x"]'), "%FF"]) {
      const r = await api("GET", `/v1/jobs?limit=3&cursor=${encodeURIComponent(bad)}`, {
        token: t.memberKey,
      });
      expectProblem(r, 400, "ValidationFailed");
    }
    const byUser = await api<{ items: { id: string }[] }>("GET", "/v1/jobs?user=carol", {
      token: t.memberKey,
    });
    expect(byUser.body.items.map((j) => j.id)).toEqual([ids[2], ids[1], ids[0]]);
    const byLabel = await api<{ items: { id: string }[] }>("GET", "/v1/jobs?label=team:nlp", {
      token: t.memberKey,
    });
    expect(byLabel.body.items.map((j) => j.id)).toEqual([ids[6], ids[5]]);
    const byPrio = await api<{ items: { id: string }[] }>("GET", "/v1/jobs?priority=high&state=queued", {
      token: t.memberKey,
    });
    expect(byPrio.body.items.map((j) => j.id)).toEqual([ids[5], ids[3], ids[1]]);
    const q = await api<{
      counts: { byState: { queued: number }; queuedByPriority: Record<string, number> };
    }>("GET", "/v1/queue", { token: t.memberKey });
    expect(q.body.counts.byState.queued).toBe(7);
    expect(q.body.counts.queuedByPriority).toMatchObject({ high: 3, low: 4, normal: 0 });
  });
});
