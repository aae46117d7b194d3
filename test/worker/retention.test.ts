// Retention: finished jobs leave the tenant's object after JOB_RETENTION_HOURS, in bounded batches, once
// Postgres has them; reads of a pruned job come from the history database, and depending on one
// is refused with a reason that names the retention.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { PRUNE_BATCH } from "../../src/do/tenant/upkeep.ts";
import type { TenantQueue } from "../../src/do/tenant-queue.ts";
import { api, createTenant, env, expectProblem, flushTenant, getJob, submit } from "./helpers.ts";

type Inner = { tc: { meta: { set(k: string, v: number): void; num(k: string, d?: number): number } } };

/** Backdates `where` jobs' finish, makes the prune due and runs the object's alarm once. */
async function pruneNow(tenantId: string, backdate?: { arrayId: string; hours: number }) {
  const stub = env.TENANT_QUEUE.getByName(tenantId);
  await runInDurableObject(stub, async (inst: TenantQueue, state) => {
    if (backdate) {
      state.storage.sql.exec(
        "UPDATE jobs SET finished_at = ? WHERE array_id = ?",
        Date.now() - backdate.hours * 3600 * 1000,
        backdate.arrayId,
      );
    }
    (inst as unknown as Inner).tc.meta.set("prune_at", 0);
    // Far enough out that it does not fire by itself (replacing whatever was due): run it below, once.
    await state.storage.setAlarm(Date.now() + 3600 * 1000);
  });
  expect(await runDurableObjectAlarm(stub)).toBe(true);
  return runInDurableObject(stub, (inst: TenantQueue, state) => {
    const count = (q: string, ...b: unknown[]) => state.storage.sql.exec(q, ...b).one().n as number;
    return {
      tasksLeft: count("SELECT count(*) AS n FROM jobs WHERE array_id IS NOT NULL"),
      jobs: count("SELECT count(*) AS n FROM jobs"),
      orphanEvents: count("SELECT count(*) AS n FROM events WHERE job_id NOT IN (SELECT id FROM jobs)"),
      pruneInMs: (inst as unknown as Inner).tc.meta.num("prune_at", 0) - Date.now(),
    };
  });
}

describe("retention of finished jobs", () => {
  it("prunes jobs finished before the retention in batches, keeps newer ones, reads fall back to Postgres", async () => {
    const t = await createTenant();
    const size = PRUNE_BATCH + 1;
    const arr = await submit(t.memberKey, { gpuType: "NOWHERE", array: { size } });
    expect(arr.status, arr.text).toBe(201);
    const arrayId = (arr.body as unknown as { array: { id: string } }).array.id;
    const firstTask = arr.body.id;
    const cancel = await api("POST", `/v1/arrays/${arrayId}/cancel`, { token: t.memberKey });
    expect(cancel.status, cancel.text).toBe(200);
    const recent = await submit(t.memberKey, { gpuType: "NOWHERE" });
    expect((await api("POST", `/v1/jobs/${recent.body.id}/cancel`, { token: t.memberKey })).status).toBe(200);
    const queued = await submit(t.memberKey, { gpuType: "NOWHERE" });
    await flushTenant(t.id); // pruning waits for Postgres to hold everything

    // Finished 200 h ago with the default retention of 168 h: two batches, a second apart.
    const first = await pruneNow(t.id, { arrayId, hours: 200 });
    expect(first.tasksLeft).toBe(1);
    expect(first.pruneInMs).toBeGreaterThan(0);
    expect(first.pruneInMs).toBeLessThanOrEqual(1000);
    const second = await pruneNow(t.id);
    expect(second).toMatchObject({ tasksLeft: 0, jobs: 2, orphanEvents: 0 });
    expect(second.pruneInMs).toBeGreaterThan(30 * 60 * 1000); // nothing left: back to the hourly round

    // The recently finished and the queued job stay in the object.
    expect((await getJob(t.memberKey, recent.body.id)).state).toBe("cancelled");
    expect((await getJob(t.memberKey, queued.body.id)).state).toBe("queued");
    // A pruned job is still readable, from the history database.
    const pruned = await getJob(t.memberKey, firstTask);
    expect(pruned).toMatchObject({ id: firstTask, state: "cancelled" });
    // It can still be depended on: its final state (cancelled) comes from the history.
    const afterIt = await submit(t.memberKey, {
      gpuType: "NOWHERE",
      dependsOn: [{ job: firstTask, condition: "finished" }],
    });
    expect(afterIt.status, afterIt.text).toBe(201);
    expect(afterIt.body.state).toBe("queued");
    const explained = await api<{ reason: { code: string } }>("GET", `/v1/jobs/${afterIt.body.id}/explain`, {
      token: t.memberKey,
    });
    expect(explained.body.reason.code).not.toBe("Dependency"); // nothing left to wait for
    const needsSuccess = await submit(t.memberKey, {
      gpuType: "NOWHERE",
      dependsOn: [{ job: firstTask, condition: "succeeded" }, { job: queued.body.id }],
    });
    expect(needsSuccess.status, needsSuccess.text).toBe(201);
    expect(needsSuccess.body).toMatchObject({ state: "cancelled", reason: "DependencyFailed" });
    // An id that is nobody's job, and one that is another tenant's pruned job, are refused by name.
    const other = await createTenant();
    const ghost = "job_01jd9r2v6m3x4c5b6n7p8q9r0s";
    for (const [key, deps] of [
      [t.memberKey, [{ job: ghost }, { job: firstTask }]],
      [other.memberKey, [{ job: firstTask }]],
    ] as const) {
      const refused = await submit(key, { gpuType: "NOWHERE", dependsOn: [...deps] });
      expectProblem(refused, 400, "ValidationFailed");
      const b = refused.body as unknown as { detail: string; unknownDependencies: string[] };
      expect(b.unknownDependencies).toEqual([deps[0]!.job]);
      expect(b.detail).toContain(deps[0]!.job);
    }
  });

  it("pruning events does not move the newest event id back: a stream resumes where it was", async () => {
    const t = await createTenant();
    const arr = await submit(t.memberKey, { gpuType: "NOWHERE", array: { size: 3 } });
    const arrayId = (arr.body as unknown as { array: { id: string } }).array.id;
    expect((await api("POST", `/v1/arrays/${arrayId}/cancel`, { token: t.memberKey })).status).toBe(200);
    await flushTenant(t.id);
    const newest = async () =>
      (await api<{ lastEventId: number }>("GET", "/v1/events?after=latest", { token: t.memberKey })).body
        .lastEventId;
    const before = await newest();
    expect(before).toBeGreaterThanOrEqual(6); // 3 × queued, 3 × cancelled
    expect((await pruneNow(t.id, { arrayId, hours: 200 })).jobs).toBe(0); // every event is gone
    expect(await newest()).toBe(before);
    // A client that saw the last event resumes from it (not "past the newest id"), and the next event
    // gets a new id.
    const resume = await api<{ items: unknown[] }>("GET", `/v1/events?after=${before}`, {
      token: t.memberKey,
    });
    expect(resume.status, resume.text).toBe(200);
    await submit(t.memberKey, { gpuType: "NOWHERE" });
    const next = await api<{ items: { seq: number }[] }>("GET", `/v1/events?after=${before}`, {
      token: t.memberKey,
    });
    expect(next.body.items.map((e) => e.seq)).toEqual([before + 1]);
  });
});
