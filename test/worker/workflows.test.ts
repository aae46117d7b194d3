// Workflows: a 10,000-task array in one request, run exactly once per index by simulated workers reporting
// in heartbeat batches; pipelines (DAG templates) whose runs respect order and dependency conditions.
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
  submit,
  until,
} from "./helpers.ts";

interface ArraySummary {
  id: string;
  size: number;
  state: string;
  counts: Record<string, number>;
}

interface Run {
  id: string;
  state: string;
  steps: { name: string; jobId: string; state: string; reason: string | null }[];
}

describe("workflows", () => {
  it("a 10,000-task array: one request, every task runs exactly once with its own index", async () => {
    const type = gpuTypeName("AR");
    const t = await createTenant();
    const pool = await createPool();
    const workers = await Promise.all(
      Array.from({ length: 40 }, () => registerWorker(pool.joinToken, 8, type)),
    );
    const s = await submit(t.memberKey, { name: "sweep", gpuType: type, array: { size: 10_000 } });
    expect(s.status, s.text).toBe(201);
    const arrayId = (s.body as unknown as { array: { id: string; size: number } }).array.id;
    expect((s.body as unknown as { array: { size: number } }).array.size).toBe(10_000);

    const seenJobs = new Set<string>();
    const seenIndex = new Map<number, number>();
    const pending = new Map<string, Assignment[]>(); // worker → assignments to report in its next heartbeat
    let done = 0;
    const end = Date.now() + 240_000;
    while (done < 10_000 && Date.now() < end) {
      let progressed = false;
      await Promise.all(
        workers.map(async (w) => {
          const mine = pending.get(w.workerId) ?? [];
          // The batch: every finished task of this worker reported in one heartbeat.
          const hb = await heartbeat(
            w,
            [],
            mine.flatMap((a) => [
              { jobId: a.jobId, lease: a.lease, state: "running" },
              { jobId: a.jobId, lease: a.lease, state: "succeeded", exitCode: 0 },
            ]),
          );
          expect(hb.rejected).toEqual([]);
          done += mine.length;
          const next: Assignment[] = [];
          for (const a of hb.assignments) {
            if (mine.some((m) => m.jobId === a.jobId)) continue;
            expect(seenJobs.has(a.jobId), `job ${a.jobId} assigned twice`).toBe(false);
            seenJobs.add(a.jobId);
            const idx = a.spec.arrayIndex as number;
            seenIndex.set(idx, (seenIndex.get(idx) ?? 0) + 1);
            next.push(a);
          }
          if (next.length || mine.length) progressed = true;
          pending.set(w.workerId, next);
        }),
      );
      if (!progressed) await new Promise((r) => setTimeout(r, 20));
    }
    expect(done).toBe(10_000);
    expect(seenIndex.size).toBe(10_000);
    expect([...seenIndex.values()].every((n) => n === 1)).toBe(true);
    expect(Math.min(...seenIndex.keys())).toBe(0);
    expect(Math.max(...seenIndex.keys())).toBe(9_999);
    const summary = await api<ArraySummary>("GET", `/v1/arrays/${arrayId}`, { token: t.memberKey });
    expect(summary.body).toMatchObject({ size: 10_000, state: "succeeded" });
    expect(summary.body.counts.succeeded).toBe(10_000);
  }, 300_000);

  it("cancelling an array cancels its unfinished tasks", async () => {
    const t = await createTenant();
    const s = await submit(t.memberKey, { gpuType: "NOWHERE", array: { size: 5 } });
    const arrayId = (s.body as unknown as { array: { id: string } }).array.id;
    const c = await api<ArraySummary & { cancelled: number }>("POST", `/v1/arrays/${arrayId}/cancel`, {
      token: t.memberKey,
    });
    expect(c.body).toMatchObject({ cancelled: 5, state: "cancelled" });
    const list = await until(async () => {
      const r = await api<{ items: { state: string }[] }>("GET", `/v1/jobs?array=${arrayId}`, {
        token: t.memberKey,
      });
      return r.body.items.length === 5 && r.body.items.every((j) => j.state === "cancelled")
        ? r.body.items
        : null;
    });
    expect(list).toHaveLength(5);
  });

  it("a three-step pipeline runs in order; a failing middle step cancels the last; an afterany step still runs", async () => {
    const type = gpuTypeName("PL");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 2, type);
    const job = (name: string) => ({ name, command: ["sh", "-c", `echo ${name}`], gpus: 1, gpuType: type });
    const p = await api<{ id: string; version: number }>("POST", "/v1/pipelines", {
      token: t.memberKey,
      body: {
        name: "train",
        steps: [
          { name: "evaluate", job: job("evaluate"), dependsOn: ["train"] },
          { name: "preprocess", job: job("preprocess") },
          { name: "train", job: job("train"), dependsOn: ["preprocess"] },
          { name: "report", job: job("report"), dependsOn: [{ step: "train", condition: "finished" }] },
        ],
      },
    });
    expect(p.status, p.text).toBe(201);

    // Run 1: everything succeeds, strictly in dependency order.
    const r1 = await api<Run>("POST", `/v1/pipelines/${p.body.id}/runs`, { token: t.memberKey });
    expect(r1.status, r1.text).toBe(201);
    const stepOf = (run: Run, jobId: string) => run.steps.find((x) => x.jobId === jobId)!.name;
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const [a] = await awaitAssignments(w);
      order.push(stepOf(r1.body, a!.jobId));
      await complete(w, a!);
    }
    expect(order[0]).toBe("preprocess");
    expect(order[1]).toBe("train");
    expect(order.slice(2).sort()).toEqual(["evaluate", "report"]);
    const done1 = await api<Run>("GET", `/v1/pipelines/${p.body.id}/runs/${r1.body.id}`, {
      token: t.memberKey,
    });
    expect(done1.body.state).toBe("succeeded");

    // Run 2: train fails → evaluate is cancelled (DependencyFailed), report (afterany) still runs.
    const r2 = await api<Run>("POST", `/v1/pipelines/${p.body.id}/runs`, { token: t.memberKey });
    const [pre] = await awaitAssignments(w);
    expect(stepOf(r2.body, pre!.jobId)).toBe("preprocess");
    await complete(w, pre!);
    const [train] = await awaitAssignments(w);
    expect(stepOf(r2.body, train!.jobId)).toBe("train");
    await report(w, train!, "running");
    await report(w, train!, "failed", { exitCode: 2 });
    const [rep] = await awaitAssignments(w);
    expect(stepOf(r2.body, rep!.jobId)).toBe("report");
    await complete(w, rep!);
    const done2 = await api<Run>("GET", `/v1/pipelines/${p.body.id}/runs/${r2.body.id}`, {
      token: t.memberKey,
    });
    const byName = Object.fromEntries(done2.body.steps.map((x) => [x.name, x]));
    expect(byName.train).toMatchObject({ state: "failed" });
    expect(byName.evaluate).toMatchObject({ state: "cancelled", reason: "DependencyFailed" });
    expect(byName.report).toMatchObject({ state: "succeeded" });
    expect(done2.body.state).toBe("failed");
    expect((await heartbeat(w)).assignments).toEqual([]);
  }, 60_000);

  it("a cycle or an unknown step is refused; cancelling a run cancels its jobs; a new version leaves runs alone", async () => {
    const t = await createTenant();
    const job = { name: "x", command: ["true"], gpus: 1, gpuType: "NOWHERE" };
    const cyc = await api("POST", "/v1/pipelines", {
      token: t.memberKey,
      body: {
        name: "loop",
        steps: [
          { name: "a", job, dependsOn: ["c"] },
          { name: "b", job, dependsOn: ["a"] },
          { name: "c", job, dependsOn: ["b"] },
        ],
      },
    });
    expectProblem(cyc, 400, "ValidationFailed");
    expect((cyc.body as unknown as { detail: string }).detail).toContain("cycle");
    expectProblem(
      await api("POST", "/v1/pipelines", {
        token: t.memberKey,
        body: { name: "bad", steps: [{ name: "a", job, dependsOn: ["nope"] }] },
      }),
      400,
    );
    const p = await api<{ id: string }>("POST", "/v1/pipelines", {
      token: t.memberKey,
      body: {
        name: "two",
        steps: [
          { name: "a", job },
          { name: "b", job, dependsOn: ["a"] },
        ],
      },
    });
    const run = await api<Run>("POST", `/v1/pipelines/${p.body.id}/runs`, { token: t.memberKey });
    const v2 = await api<{ version: number }>("PUT", `/v1/pipelines/${p.body.id}`, {
      token: t.memberKey,
      body: { name: "two", steps: [{ name: "only", job }] },
    });
    expect(v2.body.version).toBe(2);
    const c = await api<Run & { cancelled: number }>(
      "POST",
      `/v1/pipelines/${p.body.id}/runs/${run.body.id}/cancel`,
      {
        token: t.memberKey,
      },
    );
    expect(c.body.cancelled).toBe(2);
    expect(c.body.steps.map((x) => x.state)).toEqual(["cancelled", "cancelled"]);
    expect(c.body.state).toBe("cancelled");
    // Another tenant cannot see the pipeline or its run.
    const other = await createTenant();
    expectProblem(await api("GET", `/v1/pipelines/${p.body.id}`, { token: other.memberKey }), 404);
    expectProblem(
      await api("GET", `/v1/pipelines/${p.body.id}/runs/${run.body.id}`, { token: other.memberKey }),
      404,
    );
  });
});
