// Reads served from the Postgres history (the jobs list, usage) see the caller's own writes: the tenant
// object flushes its outbox through its newest row before the read. Before, a job submitted, cancelled or
// finished a moment ago was missing from the list (or listed in its old state) and its GPU-seconds were
// counted nowhere for up to OUTBOX_FLUSH_MS. No test here calls flushTenant: that is the point.
import { describe, expect, it } from "vitest";
import {
  api,
  awaitAssignments,
  complete,
  createPool,
  createTenant,
  gpuTypeName,
  registerWorker,
  report,
  submit,
} from "./helpers.ts";

type Listed = { items: { id: string; state: string }[] };

describe("history reads see your own writes", () => {
  it("GET /v1/jobs lists a job the moment its submit returned, and a cancel the moment it returned", async () => {
    const t = await createTenant();
    const type = gpuTypeName("RYW");
    for (let i = 0; i < 5; i++) {
      const s = await submit(t.memberKey, { gpuType: type, labels: { round: String(i) } });
      expect(s.status, s.text).toBe(201);
      const list = await api<Listed>("GET", `/v1/jobs?label=round:${i}`, { token: t.memberKey });
      expect(list.status, list.text).toBe(200);
      expect(list.body.items.map((j) => `${j.id}:${j.state}`)).toEqual([`${s.body.id}:queued`]);
      const cancel = await api("POST", `/v1/jobs/${s.body.id}/cancel`, { token: t.memberKey });
      expect(cancel.status, cancel.text).toBe(200);
      const after = await api<Listed>("GET", `/v1/jobs?label=round:${i}`, { token: t.memberKey });
      expect(after.body.items.map((j) => j.state)).toEqual(["cancelled"]);
    }
  });

  it("GET /v1/usage counts a job that finished a moment ago", async () => {
    const t = await createTenant();
    const type = gpuTypeName("RYWU");
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    for (const user of ["dave", "erin", "frank"]) {
      await submit(t.memberKey, { gpuType: type, user });
      const [a] = await awaitAssignments(w);
      await complete(w, a!);
      const u = await api<{ items: { user: string; jobs: number }[] }>("GET", "/v1/usage", {
        token: t.memberKey,
      });
      expect(u.status, u.text).toBe(200);
      // Finished: no longer a live holding, so only the history can count it.
      expect(u.body.items.find((r) => r.user === user)?.jobs, `${user}: ${u.text}`).toBe(1);
    }
  });

  it("a job is listed running the moment the agent's report was acknowledged", async () => {
    const t = await createTenant();
    const type = gpuTypeName("RYWR");
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    const s = await submit(t.memberKey, { gpuType: type });
    const [a] = await awaitAssignments(w);
    expect((await report(w, a!, "running")).status).toBe(200);
    const list = await api<Listed>("GET", "/v1/jobs", { token: t.memberKey });
    expect(list.body.items.find((j) => j.id === s.body.id)?.state).toBe("running");
  });
});
