// Fleet shards in the real runtime: liveness states driven by alarms, a returning dead worker told to stop
// its old jobs, assignments pushed down the live channel without waiting for a heartbeat, tokens bound to
// their worker.
import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index.ts";
import {
  ADMIN,
  api,
  awaitAssignments,
  createPool,
  createTenant,
  expectProblem,
  getJob,
  gpuTypeName,
  heartbeat,
  registerWorker,
  report,
  submit,
  until,
} from "./helpers.ts";

interface WorkerView {
  id: string;
  state: string;
  leases: unknown[];
}

const stateOf = async (id: string) => {
  const r = await api<{ items: WorkerView[] }>("GET", "/v1/workers", { token: ADMIN });
  return r.body.items.find((w) => w.id === id);
};

describe("fleet", () => {
  it("submit, heartbeat and status answers carry the request id, the caller's when it sends one", async () => {
    const type = gpuTypeName("RID");
    const t = await createTenant();
    const w = await registerWorker((await createPool()).joinToken, 1, type);
    const s = await submit(t.memberKey, { gpuType: type }, { "x-request-id": "rid-submit-1" });
    expect(s.status).toBe(201);
    expect(s.headers.get("x-request-id")).toBe("rid-submit-1");
    expect(s.headers.get("location")).toBe(`/v1/jobs/${s.body.id}`);
    expect(s.headers.get("content-type")).toBe("application/json");
    const [a] = await awaitAssignments(w);
    const hb = await api("POST", `/v1/workers/${w.workerId}/heartbeat`, {
      token: w.token,
      body: { running: [] },
      headers: { "x-request-id": "rid-hb-1" },
    });
    expect(hb.headers.get("x-request-id")).toBe("rid-hb-1");
    const st = await api("POST", `/v1/workers/${w.workerId}/jobs/${a!.jobId}/status`, {
      token: w.token,
      body: { lease: a!.lease, state: "running" },
    });
    expect(st.status, st.text).toBe(200);
    expect(st.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("starting → alive → suspect (two missed heartbeats) → dead (lease TTL); a returning worker is told to stop", async () => {
    const type = gpuTypeName("LV");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    expect((await stateOf(w.workerId))?.state).toBe("starting");
    const s = await submit(t.memberKey, { gpuType: type });
    const [a] = await awaitAssignments(w);
    expect((await stateOf(w.workerId))?.state).toBe("alive");
    await report(w, a!, "running");
    const seen: string[] = [];
    await until(
      async () => {
        const st = (await stateOf(w.workerId))!.state;
        if (seen[seen.length - 1] !== st) seen.push(st);
        return st === "dead";
      },
      15_000,
      "dead",
    );
    expect(seen).toEqual(["alive", "suspect", "dead"]);
    const j = await getJob(t.memberKey, s.body.id);
    expect(j).toMatchObject({ state: "queued", attempt: 2, reason: "WorkerLost" });
    // It comes back: its heartbeat revives it but tells it to stop the job it still runs; its reports fail.
    const hb = await heartbeat(w, [{ jobId: a!.jobId, lease: a!.lease }]);
    expect(hb.cancel).toEqual([a!.jobId]);
    expect((await stateOf(w.workerId))?.state).toBe("alive");
    expectProblem(await report(w, a!, "succeeded", { exitCode: 0 }), 409, "StaleLease");
    // The requeued job is placed again — on the revived worker, with a larger lease.
    const [again] = await awaitAssignments(w);
    expect(again!.jobId).toBe(s.body.id);
    expect(again!.lease).toBeGreaterThan(a!.lease);
  }, 30_000);

  it("a job the agent killed for LeaseLost or Drained is requeued at once, not charged against maxRetries", async () => {
    const type = gpuTypeName("LL");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    const s = await submit(t.memberKey, { gpuType: type, maxRetries: 0 });
    const [a] = await awaitAssignments(w);
    expect((await report(w, a!, "running")).status).toBe(200);
    const r = await report(w, a!, "failed", {
      exitCode: 137,
      reason: "LeaseLost",
      message: "killed: the agent lost contact with the control plane",
    });
    expect(r.status, r.text).toBe(200);
    const j = await getJob(t.memberKey, s.body.id);
    expect(j).toMatchObject({ state: "queued", attempt: 2, reason: "LeaseLost" });
    expect(String(j.message)).toContain("lost contact");
    // Same for a drained host; and an ordinary failure of that maxRetries: 0 job still ends it.
    const [b] = await awaitAssignments(w);
    expect(b!.lease).toBeGreaterThan(a!.lease);
    expect((await report(w, b!, "failed", { exitCode: 143, reason: "Drained" })).status).toBe(200);
    expect(await getJob(t.memberKey, s.body.id)).toMatchObject({
      state: "queued",
      attempt: 3,
      reason: "Drained",
    });
    const [c] = await awaitAssignments(w);
    expect((await report(w, c!, "failed", { exitCode: 1 })).status).toBe(200);
    expect(await getJob(t.memberKey, s.body.id)).toMatchObject({ state: "failed", attempt: 3 });
  }, 30_000);

  it("pushes an assignment down the live channel without waiting for a heartbeat", async () => {
    const type = gpuTypeName("WS");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    const r = await worker.fetch(
      new Request(`https://gantry.test/v1/workers/${w.workerId}/connect`, {
        headers: { upgrade: "websocket", authorization: `Bearer ${w.token}` },
      }),
      env,
      createExecutionContext(),
    );
    expect(r.status).toBe(101);
    const ws = r.webSocket!;
    const msgs: { type: string; assignments?: { jobId: string }[] }[] = [];
    ws.addEventListener("message", (m) => {
      msgs.push(JSON.parse(m.data as string));
    });
    ws.accept();
    const s = await submit(t.memberKey, { gpuType: type });
    const got = await until(
      async () => msgs.find((m) => m.type === "assignments"),
      5_000,
      "pushed assignment",
    );
    expect(got.assignments?.map((x) => x.jobId)).toEqual([s.body.id]);
    ws.close();
  });

  it("a worker token acts only for its own worker id; tenants and join tokens cannot heartbeat", async () => {
    const pool = await createPool();
    const w1 = await registerWorker(pool.joinToken, 1, "XX");
    const w2 = await registerWorker(pool.joinToken, 1, "XX");
    const t = await createTenant();
    const body = { running: [] };
    expectProblem(await api("POST", `/v1/workers/${w2.workerId}/heartbeat`, { token: w1.token, body }), 404);
    expectProblem(
      await api("POST", `/v1/workers/${w1.workerId}/heartbeat`, { token: t.memberKey, body }),
      403,
    );
    expectProblem(
      await api("POST", `/v1/workers/${w1.workerId}/heartbeat`, { token: pool.joinToken, body }),
      403,
    );
    expectProblem(
      await api("POST", `/v1/workers/${w1.workerId}/heartbeat`, { token: "gwk_w-00-x_bad", body }),
      401,
    );
    const ok = await api("POST", `/v1/workers/${w1.workerId}/heartbeat`, { token: w1.token, body });
    expect(ok.status).toBe(200);
  });
});
