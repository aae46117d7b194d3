// The audit log: every mutating call leaves a row (actor, tenant, action, target, request id, time) in
// Postgres — admin routes in the same transaction as the change, tenant objects through their outbox — and
// the platform admin reads it with GET /v1/audit (filters, newest first, cursor pagination).
import { describe, expect, it } from "vitest";
import { app } from "../../functions/app.ts";
import {
  ADMIN,
  type ApiResponse,
  api,
  awaitAssignments,
  createPool,
  createTenant,
  expectProblem,
  flushTenant,
  gpuTypeName,
  registerWorker,
  submit,
  uniq,
} from "./helpers.ts";

interface AuditRow {
  id: string;
  at: string;
  actor: string;
  tenantId: string | null;
  action: string;
  target: string | null;
  requestId: string;
  detail: unknown;
}
type Page = { items: AuditRow[]; nextCursor: string | null };

async function audit(query: string): Promise<Page> {
  const r = await api<Page>("GET", `/v1/audit?${query}`, { token: ADMIN });
  expect(r.status, r.text).toBe(200);
  return r.body;
}

/** Every page of a query, following nextCursor. */
async function allPages(query: string, limit: number): Promise<{ rows: AuditRow[]; pages: number }> {
  const rows: AuditRow[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const p = await audit(`${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    expect(p.items.length).toBeLessThanOrEqual(limit);
    rows.push(...p.items);
    cursor = p.nextCursor;
    pages++;
    expect(pages).toBeLessThan(100);
  } while (cursor);
  return { rows, pages };
}

/**
 * Calls that change nothing, or whose changes are recorded elsewhere: agent reports are the job's own
 * history (job_events: every transition with worker, lease and time), and at one heartbeat per worker every
 * 10 s they would drown the audit log.
 */
const NOT_AUDITED: Record<string, string> = {
  "POST /v1/policies/evaluate": "dry run, stores nothing",
  "POST /v1/quota/check": "a question, stores nothing",
  "POST /v1/workers/{id}/heartbeat": "agent report: recorded as job events",
  "POST /v1/workers/{id}/jobs/{jobId}/status": "agent report: recorded as job events",
};

interface Expected {
  route: string;
  action: string;
  actor: string;
  tenantId: string | null;
  target: string;
  requestId: string;
}

describe("audit log", () => {
  it("every mutating route leaves a row with actor, tenant, action, target and request id", async () => {
    const expected: Expected[] = [];
    /** Make the call with our own request id and note the row it must leave. */
    async function step(
      route: string,
      action: string,
      token: string,
      actor: string,
      tenantId: string | null,
      path: string,
      body?: unknown,
      target?: (r: ApiResponse) => string,
    ): Promise<ApiResponse> {
      const method = route.slice(0, route.indexOf(" "));
      const requestId = uniq("audit-req");
      const r = await api(method, path, {
        token,
        headers: { "x-request-id": requestId },
        ...(body !== undefined ? { body } : {}),
      });
      expect(r.status, `${route}: ${r.text}`).toBeLessThan(300);
      expect(r.headers.get("x-request-id")).toBe(requestId);
      expected.push({ route, action, actor, tenantId, requestId, target: target ? target(r) : "" });
      return r;
    }
    const id = (r: ApiResponse) => (r.body as { id: string }).id;

    // ---- tenancy (platform admin, then the tenant's own admin key)
    const tid = uniq("aud");
    await step(
      "POST /v1/tenants",
      "tenant.create",
      ADMIN,
      "admin:admin",
      tid,
      "/v1/tenants",
      { id: tid },
      () => tid,
    );
    const adminKey = await step(
      "POST /v1/tenants/{id}/keys",
      "key.create",
      ADMIN,
      "admin:admin",
      tid,
      `/v1/tenants/${tid}/keys`,
      { name: "alice", role: "admin" },
      id,
    );
    const ak = adminKey.body as { id: string; key: string };
    const member = await step(
      "POST /v1/tenants/{id}/keys",
      "key.create",
      ak.key,
      `key:${ak.id}`,
      tid,
      `/v1/tenants/${tid}/keys`,
      { name: "bob", role: "member" },
      id,
    );
    const mk = member.body as { id: string; key: string };
    await step(
      "PATCH /v1/tenants/{id}",
      "tenant.update",
      ADMIN,
      "admin:admin",
      tid,
      `/v1/tenants/${tid}`,
      {
        weight: 2,
      },
      () => tid,
    );
    await step(
      "PUT /v1/tenants/{id}/quota",
      "quota.set",
      ADMIN,
      "admin:admin",
      tid,
      `/v1/tenants/${tid}/quota`,
      {
        gpus: { "*": { nominal: 8 } },
      },
      () => tid,
    );
    await step(
      "DELETE /v1/tenants/{id}/quota",
      "quota.remove",
      ADMIN,
      "admin:admin",
      tid,
      `/v1/tenants/${tid}/quota`,
      undefined,
      () => tid,
    );
    await step(
      "PUT /v1/tenants/{id}/limits",
      "limits.set",
      ADMIN,
      "admin:admin",
      tid,
      `/v1/tenants/${tid}/limits`,
      {
        submitPerSecond: 1000,
      },
      () => tid,
    );

    // ---- policies (tenant admin)
    const pol = await step(
      "POST /v1/policies",
      "policy.create",
      ak.key,
      `key:${ak.id}`,
      tid,
      "/v1/policies",
      { name: "audited", expression: "false", effect: "warn" },
      id,
    );
    const polId = id(pol);
    await step(
      "PUT /v1/policies/{id}",
      "policy.update",
      ak.key,
      `key:${ak.id}`,
      tid,
      `/v1/policies/${polId}`,
      {
        name: "audited",
        expression: "job.gpus > 100",
        effect: "warn",
      },
      () => polId,
    );
    await step(
      "DELETE /v1/policies/{id}",
      "policy.delete",
      ak.key,
      `key:${ak.id}`,
      tid,
      `/v1/policies/${polId}`,
      undefined,
      () => polId,
    );

    // ---- jobs and allocations (member; written by the tenant's object through its outbox)
    const job = await step(
      "POST /v1/jobs",
      "job.submit",
      mk.key,
      `key:${mk.id}`,
      tid,
      "/v1/jobs",
      { name: "a", command: ["true"], gpus: 1, gpuType: "NOWHERE" },
      id,
    );
    const jobId = id(job);
    await step(
      "POST /v1/jobs/{id}/cancel",
      "job.cancel",
      mk.key,
      `key:${mk.id}`,
      tid,
      `/v1/jobs/${jobId}/cancel`,
      undefined,
      () => jobId,
    );
    const alloc = await step(
      "POST /v1/quota/allocations",
      "quota.allocate",
      mk.key,
      `key:${mk.id}`,
      tid,
      "/v1/quota/allocations",
      { gpus: 1 },
      id,
    );
    const allocId = id(alloc);
    await step(
      "DELETE /v1/quota/allocations/{id}",
      "quota.release",
      mk.key,
      `key:${mk.id}`,
      tid,
      `/v1/quota/allocations/${allocId}`,
      undefined,
      () => allocId,
    );
    // ---- workflows (member): pipelines in Postgres, runs started by the tenant's object
    const pipelineBody = {
      name: "audited",
      steps: [{ name: "a", job: { name: "a", command: ["true"], gpus: 1, gpuType: "NOWHERE" } }],
    };
    const pipe = await step(
      "POST /v1/pipelines",
      "pipeline.create",
      mk.key,
      `key:${mk.id}`,
      tid,
      "/v1/pipelines",
      pipelineBody,
      id,
    );
    const pipeId = id(pipe);
    await step(
      "PUT /v1/pipelines/{id}",
      "pipeline.update",
      mk.key,
      `key:${mk.id}`,
      tid,
      `/v1/pipelines/${pipeId}`,
      pipelineBody,
      () => pipeId,
    );
    const run = await step(
      "POST /v1/pipelines/{id}/runs",
      "pipeline.run",
      mk.key,
      `key:${mk.id}`,
      tid,
      `/v1/pipelines/${pipeId}/runs`,
      undefined,
      id,
    );
    await step(
      "POST /v1/pipelines/{id}/runs/{runId}/cancel",
      "pipeline.run.cancel",
      mk.key,
      `key:${mk.id}`,
      tid,
      `/v1/pipelines/${pipeId}/runs/${id(run)}/cancel`,
      undefined,
      () => id(run),
    );
    const arrayOf = (r: ApiResponse) => (r.body as { array: { id: string } }).array.id;
    const arr = await step(
      "POST /v1/jobs",
      "job.submit",
      mk.key,
      `key:${mk.id}`,
      tid,
      "/v1/jobs",
      { name: "arr", command: ["true"], gpus: 1, gpuType: "NOWHERE", array: { size: 2 } },
      arrayOf,
    );
    const arrayId = arrayOf(arr);
    await step(
      "POST /v1/arrays/{id}/cancel",
      "array.cancel",
      mk.key,
      `key:${mk.id}`,
      tid,
      `/v1/arrays/${arrayId}/cancel`,
      undefined,
      () => arrayId,
    );
    await step(
      "DELETE /v1/pipelines/{id}",
      "pipeline.delete",
      mk.key,
      `key:${mk.id}`,
      tid,
      `/v1/pipelines/${pipeId}`,
      undefined,
      () => pipeId,
    );

    // Revoked last: the member key was needed above.
    await step(
      "DELETE /v1/tenants/{id}/keys/{keyId}",
      "key.revoke",
      ak.key,
      `key:${ak.id}`,
      tid,
      `/v1/tenants/${tid}/keys/${mk.id}`,
      undefined,
      () => mk.id,
    );

    // ---- fleet (no tenant)
    const poolId = uniq("audp");
    await step(
      "POST /v1/pools",
      "pool.create",
      ADMIN,
      "admin:admin",
      null,
      "/v1/pools",
      { id: poolId },
      () => poolId,
    );
    const jt = await step(
      "POST /v1/pools/{id}/join-tokens",
      "join-token.create",
      ADMIN,
      "admin:admin",
      null,
      `/v1/pools/${poolId}/join-tokens`,
      {},
      id,
    );
    const join = jt.body as { id: string; token: string };
    const reg = await step(
      "POST /v1/workers/register",
      "worker.register",
      join.token,
      `join:${join.id}`,
      null,
      "/v1/workers/register",
      { hostname: "audited", gpus: [{ index: 0, model: "FAKE", type: gpuTypeName("aud") }] },
      (r) => (r.body as { workerId: string }).workerId,
    );
    const w = reg.body as { workerId: string; token: string };
    await step(
      "POST /v1/workers/{id}/drain",
      "worker.drain",
      ADMIN,
      "admin:admin",
      null,
      `/v1/workers/${w.workerId}/drain`,
      undefined,
      () => w.workerId,
    );
    await step(
      "POST /v1/workers/{id}/deregister",
      "worker.deregister",
      w.token,
      `worker:${w.workerId}`,
      null,
      `/v1/workers/${w.workerId}/deregister`,
      undefined,
      () => w.workerId,
    );
    await step(
      "DELETE /v1/pools/{id}/join-tokens/{tokenId}",
      "join-token.revoke",
      ADMIN,
      "admin:admin",
      null,
      `/v1/pools/${poolId}/join-tokens/${join.id}`,
      undefined,
      () => join.id,
    );

    // Every mutating route the app serves was exercised above (or is exempt, with the reason).
    const mutating = [
      ...new Set(
        app.routes
          .filter((r) => r.method !== "ALL" && r.method !== "GET")
          .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`),
      ),
    ];
    const covered = new Set(expected.map((e) => e.route));
    const unchecked = mutating.filter((r) => !covered.has(r) && !(r in NOT_AUDITED));
    expect.soft(unchecked, `mutating routes with no audit check here: ${unchecked.join(", ")}`).toEqual([]);

    // The tenant object's rows arrive through its outbox.
    await flushTenant(tid);
    const missing: string[] = [];
    for (const e of expected) {
      const { items } = await audit(`requestId=${encodeURIComponent(e.requestId)}`);
      const row = items.find((x) => x.action === e.action);
      if (!row) {
        missing.push(
          `${e.route}: no ${e.action} row for request ${e.requestId} (got ${JSON.stringify(items)})`,
        );
        continue;
      }
      expect(row, e.route).toMatchObject({
        actor: e.actor,
        tenantId: e.tenantId,
        action: e.action,
        target: e.target,
        requestId: e.requestId,
      });
      expect(Date.now() - Date.parse(row.at), `${e.route}: time`).toBeLessThan(120_000);
    }
    expect(missing).toEqual([]);

    // The tenant filter returns this tenant's rows and nothing else; no key ever appears in an audit row.
    const mine = await allPages(`tenant=${tid}`, 500);
    expect(mine.rows.every((r) => r.tenantId === tid)).toBe(true);
    expect(mine.rows.length).toBe(expected.filter((e) => e.tenantId === tid).length);
    const all = JSON.stringify(mine.rows);
    for (const secret of [ak.key, mk.key, join.token, w.token]) expect(all).not.toContain(secret.slice(-32));
  });

  it("pages newest first without gaps or repeats, and filters by action, actor and time", async () => {
    const t = await createTenant();
    const from = new Date(Date.now() - 1000).toISOString();
    for (let i = 0; i < 5; i++) {
      const r = await api("PATCH", `/v1/tenants/${t.id}`, { token: ADMIN, body: { name: `n${i}` } });
      expect(r.status).toBe(200);
    }
    for (let i = 0; i < 3; i++) expect((await submit(t.memberKey, { gpuType: "NOWHERE" })).status).toBe(201);
    await flushTenant(t.id);
    const whole = await audit(`tenant=${t.id}&limit=500`);
    // tenant.create, 2 × key.create (createTenant), 5 × tenant.update, 3 × job.submit
    expect(whole.items.map((r) => r.action).sort()).toEqual(
      [
        "tenant.create",
        "key.create",
        "key.create",
        ...Array(5).fill("tenant.update"),
        ...Array(3).fill("job.submit"),
      ].sort(),
    );
    expect(whole.nextCursor).toBeNull();
    for (let i = 1; i < whole.items.length; i++) {
      expect(Date.parse(whole.items[i - 1]!.at)).toBeGreaterThanOrEqual(Date.parse(whole.items[i]!.at));
    }
    for (const limit of [1, 2, 3, 4]) {
      const { rows, pages } = await allPages(`tenant=${t.id}`, limit);
      expect(rows.map((r) => r.id)).toEqual(whole.items.map((r) => r.id));
      expect(pages).toBe(Math.ceil(whole.items.length / limit)); // the last page says so: no empty page
    }
    const updates = await audit(`tenant=${t.id}&action=tenant.update&limit=500`);
    expect(updates.items).toHaveLength(5);
    const byMember = await audit(`tenant=${t.id}&actor=${encodeURIComponent(`key:${t.memberKeyId}`)}`);
    expect(byMember.items.map((r) => r.action)).toEqual(["job.submit", "job.submit", "job.submit"]);
    const windowed = await audit(`tenant=${t.id}&from=${encodeURIComponent(from)}&limit=500`);
    expect(windowed.items).toHaveLength(whole.items.length);
    const before = await audit(`tenant=${t.id}&to=${encodeURIComponent(from)}`);
    expect(before.items).toEqual([]);
  });

  it("two admin calls that reuse one X-Request-Id both stay in the log", async () => {
    const t = await createTenant();
    const requestId = uniq("reused");
    for (const name of ["first", "second"]) {
      const r = await api("PATCH", `/v1/tenants/${t.id}`, {
        token: ADMIN,
        body: { name },
        headers: { "x-request-id": requestId },
      });
      expect(r.status).toBe(200);
    }
    const rows = await audit(`requestId=${requestId}`);
    expect(rows.items.map((r) => (r.detail as { name: string }).name).sort()).toEqual(["first", "second"]);
  });

  // Outbox rows (submit, cancel, allocations) once used `${requestId}:submit` as their id with ON CONFLICT DO
  // NOTHING: a second call reusing a client-chosen X-Request-Id, from any tenant, lost its audit row.
  it("two submissions (of two tenants) that reuse one X-Request-Id both stay in the log", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const requestId = uniq("reused-submit");
    for (const t of [a, b]) {
      const r = await submit(t.memberKey, { gpuType: "NOWHERE" }, { "x-request-id": requestId });
      expect(r.status).toBe(201);
      await flushTenant(t.id);
    }
    const rows = await audit(`requestId=${requestId}`);
    expect(rows.items.map((r) => r.tenantId).sort()).toEqual([a.id, b.id].sort());
  });

  it("refuses bad queries with problem+json", async () => {
    for (const q of [
      "limit=0",
      "limit=501",
      "limit=abc",
      "cursor=not-a-cursor",
      `cursor=${btoa("[1,2]")}`,
      "from=yesterday",
      `from=${encodeURIComponent("2026-01-02T00:00:00Z")}&to=${encodeURIComponent("2026-01-01T00:00:00Z")}`,
      `tenant=${"x".repeat(300)}`,
    ]) {
      const r = await api("GET", `/v1/audit?${q}`, { token: ADMIN });
      expectProblem(r, 400, "ValidationFailed");
    }
  });

  it("agent reports write no audit rows: they are the job's events", async () => {
    const t = await createTenant();
    const pool = await createPool();
    const type = gpuTypeName("audr");
    const w = await registerWorker(pool.joinToken, 1, type);
    const s = await submit(t.memberKey, { gpuType: type });
    expect(s.status).toBe(201);
    const [a] = await awaitAssignments(w);
    const requestId = uniq("report");
    const r = await api("POST", `/v1/workers/${w.workerId}/jobs/${a!.jobId}/status`, {
      token: w.token,
      body: { lease: a!.lease, state: "running" },
      headers: { "x-request-id": requestId },
    });
    expect(r.status, r.text).toBe(200);
    await flushTenant(t.id);
    expect((await audit(`requestId=${requestId}`)).items).toEqual([]);
    const events = await api<{ items: { to: string; workerId: string | null }[] }>(
      "GET",
      `/v1/jobs/${a!.jobId}/events`,
      { token: t.memberKey },
    );
    expect(events.body.items.find((e) => e.to === "running")?.workerId).toBe(w.workerId);
  });

  it("?tenant= shows what that tenant did a moment ago (its object flushes first)", async () => {
    const t = await createTenant();
    for (let i = 0; i < 3; i++) {
      const s = await submit(t.memberKey, { gpuType: "NOWHERE" });
      expect((await api("POST", `/v1/jobs/${s.body.id}/cancel`, { token: t.memberKey })).status).toBe(200);
      // No flushTenant: the cancel's row travels through the tenant's outbox.
      const page = await audit(`tenant=${t.id}&action=job.cancel&limit=10`);
      expect(page.items.map((r) => r.target)).toContain(s.body.id);
      expect(page.items).toHaveLength(i + 1);
    }
    // A tenant that does not exist: an empty page (and no object is made for it).
    expect((await audit("tenant=no-such-tenant-xyz")).items).toEqual([]);
  });
});
