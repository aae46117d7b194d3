// "Why is my job pending?": each reason code, in precedence order, with the numbers behind it.
import { describe, expect, it } from "vitest";
import {
  type Assignment,
  api,
  awaitAssignments,
  complete,
  createPool,
  createTenant,
  expectProblem,
  gpuTypeName,
  heartbeat,
  registerWorker,
  report,
  setQuota,
  submit,
  until,
} from "./helpers.ts";

interface Explanation {
  state: string;
  reason: { code: string; message: string };
  position?: { tenant: number; priority: number };
  estimatedStart?: { at: string; basis: string };
}

const explain = async (key: string, id: string) => {
  const r = await api<Explanation>("GET", `/v1/jobs/${id}/explain`, { token: key });
  expect(r.status, r.text).toBe(200);
  return r.body;
};

describe("explain", () => {
  it("PolicyDenied: the job is never queued, and the 403 names the policy", async () => {
    const t = await createTenant();
    await api("POST", "/v1/policies", {
      token: t.adminKey,
      body: {
        name: "no-h200",
        expression: 'job.gpuType == "H200"',
        effect: "deny",
        message: "H200s are reserved",
      },
    });
    const r = await submit(t.memberKey, { gpuType: "H200" });
    expectProblem(r, 403, "PolicyDenied");
  });

  it("NoMatchingWorkers, InsufficientCapacity (with the numbers), then PriorityOrFairShare with a position", async () => {
    const type = gpuTypeName("EX");
    const t = await createTenant();
    const nowhere = await submit(t.memberKey, { gpus: 4, gpuType: gpuTypeName("NONE") });
    const e0 = await explain(t.memberKey, nowhere.body.id);
    expect(e0.reason.code).toBe("NoMatchingWorkers");
    const pool = await createPool();
    const w1 = await registerWorker(pool.joinToken, 2, type);
    const w2 = await registerWorker(pool.joinToken, 2, type);
    const tooBig = await submit(t.memberKey, { gpus: 4, gpuType: type });
    const e1 = await explain(t.memberKey, tooBig.body.id);
    expect(e1.reason.code).toBe("NoMatchingWorkers");
    expect(e1.reason.message).toContain("largest worker has 2");
    // Best fit packs 1-GPU jobs onto one worker and a 2-GPU job onto the other; finishing one 1-GPU job
    // leaves a single free GPU: capacity exists but no block of 2.
    await api("POST", `/v1/jobs/${tooBig.body.id}/cancel`, { token: t.memberKey });
    const running = new Map<string, { w: typeof w1; a: Assignment }>();
    const take = async (n: number) => {
      await until(async () => {
        for (const w of [w1, w2]) {
          const mine = [...running.values()].filter((x) => x.w === w);
          const hb = await heartbeat(
            w,
            mine.map((x) => ({ jobId: x.a.jobId, lease: x.a.lease })),
          );
          for (const a of hb.assignments) running.set(a.jobId, { w, a });
        }
        return running.size >= n;
      });
    };
    await submit(t.memberKey, { name: "f0", gpuType: type });
    await take(1);
    await submit(t.memberKey, { name: "f1", gpuType: type });
    await take(2);
    await submit(t.memberKey, { name: "g", gpus: 2, gpuType: type });
    await take(3);
    const one = [...running.values()].find((x) => x.a.gpuIndices.length === 1)!;
    await complete(one.w, one.a);
    running.delete(one.a.jobId);
    const two = await submit(t.memberKey, { name: "needs-two", gpus: 2, gpuType: type });
    const e2 = await explain(t.memberKey, two.body.id);
    expect(e2.reason.code).toBe("InsufficientCapacity");
    expect(e2.reason.message).toMatch(new RegExp(`needs 2 ${type}, largest free block is 1 \\(1 worker`));
    expect(e2.position).toEqual({ tenant: 0, priority: 0 });
    // Jobs queued behind it have positions; a higher priority one goes ahead of them.
    const q1 = await submit(t.memberKey, { name: "q1", gpus: 2, gpuType: type });
    const q2 = await submit(t.memberKey, { name: "q2", gpus: 2, gpuType: type, priority: "high" });
    const e3 = await explain(t.memberKey, q1.body.id);
    expect(e3.reason.code).toBe("PriorityOrFairShare");
    expect(e3.position).toEqual({ tenant: 2, priority: 1 });
    expect(e3.reason.message).toContain("2 job(s) of this tenant (1 at priority normal)");
    const e4 = await explain(t.memberKey, q2.body.id);
    expect(e4.reason.code).toBe("InsufficientCapacity"); // first in line: waits for capacity, not for others
    expect(e4.position).toEqual({ tenant: 0, priority: 0 });
    expect((await explain(t.memberKey, two.body.id)).reason.code).toBe("PriorityOrFairShare"); // q2 overtook it
  });

  it("QuotaExceeded outranks capacity reasons", async () => {
    const type = gpuTypeName("QE");
    const t = await createTenant();
    await setQuota(t.id, { gpus: { [type]: { nominal: 1 } } });
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 4, type);
    await submit(t.memberKey, { name: "fits", gpuType: type });
    await awaitAssignments(w);
    const waits = await submit(t.memberKey, { name: "waits", gpuType: type });
    const e = await explain(t.memberKey, waits.body.id);
    expect(e.reason.code).toBe("QuotaExceeded");
    expect(e.reason.message).toContain(`1 of quota 1 in use`);
    const big = await submit(t.memberKey, { name: "never", gpus: 2, gpuType: type });
    expect((await explain(t.memberKey, big.body.id)).reason.code).toBe("QuotaExceeded");
  });

  it("Backoff: a failed job waiting to retry shows the next attempt time", async () => {
    const type = gpuTypeName("BO");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    const s = await submit(t.memberKey, { gpuType: type, maxRetries: 2 });
    const [a] = await awaitAssignments(w);
    await report(w, a!, "running");
    await report(w, a!, "failed", { exitCode: 7 });
    const e = await explain(t.memberKey, s.body.id);
    expect(e.state).toBe("queued");
    expect(e.reason.code).toBe("Backoff");
    expect(e.reason.message).toContain("exit code 7");
    expect(e.reason.message).toContain("retry 1 of 2");
    const at = Date.parse(e.estimatedStart!.at);
    expect(at - Date.now()).toBeGreaterThan(8_000); // 10 s × 2^0
    expect(at - Date.now()).toBeLessThanOrEqual(10_000);
    const job = await api<{ attempt: number; nextAttemptAt: string }>("GET", `/v1/jobs/${s.body.id}`, {
      token: t.memberKey,
    });
    expect(job.body.attempt).toBe(2);
    expect(job.body.nextAttemptAt).toBe(e.estimatedStart!.at);
  });

  it("Dependency: waits for another job, and is cancelled when the condition can no longer hold", async () => {
    const type = gpuTypeName("DP");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    const parent = await submit(t.memberKey, { name: "parent", gpuType: type });
    const child = await submit(t.memberKey, {
      name: "child",
      gpuType: type,
      dependsOn: [{ job: parent.body.id, condition: "succeeded" }],
    });
    const any = await submit(t.memberKey, {
      name: "cleanup",
      gpuType: type,
      dependsOn: [{ job: parent.body.id, condition: "finished" }],
    });
    const e = await explain(t.memberKey, child.body.id);
    expect(e.reason.code).toBe("Dependency");
    expect(e.reason.message).toContain(parent.body.id);
    const [a] = await awaitAssignments(w);
    expect(a!.jobId).toBe(parent.body.id);
    await report(w, a!, "running");
    await report(w, a!, "failed", { exitCode: 1 });
    const c = await api<{ state: string; reason: string }>("GET", `/v1/jobs/${child.body.id}`, {
      token: t.memberKey,
    });
    expect(c.body).toMatchObject({ state: "cancelled", reason: "DependencyFailed" });
    // The afterany job still runs.
    const [b] = await awaitAssignments(w);
    expect(b!.jobId).toBe(any.body.id);
    await complete(w, b!);
    // Cross-tenant or unknown dependencies are refused at submit.
    const other = await createTenant();
    const refused = await submit(other.memberKey, {
      dependsOn: [{ job: parent.body.id, condition: "finished" }],
    });
    expectProblem(refused, 400, "ValidationFailed");
    await until(async () => (await heartbeat(w)).assignments.length === 0);
  });
});
