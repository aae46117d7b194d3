// Per-tenant rate limits: token buckets in the tenant's Durable Object, set by the platform admin with
// PUT /v1/tenants/{id}/limits. Nothing is limited until limits are set; then 429 problem+json with
// Retry-After, for submissions and for reads, per tenant.
import { describe, expect, it } from "vitest";
import { ADMIN, type ApiResponse, api, createTenant, expectProblem, submit } from "./helpers.ts";

const NOWHERE = { gpuType: "NOWHERE" };

async function setLimits(tenantId: string, limits: Record<string, unknown>) {
  const r = await api("PUT", `/v1/tenants/${tenantId}/limits`, { token: ADMIN, body: limits });
  expect(r.status, r.text).toBe(200);
  return r.body;
}

function expectRateLimited(r: ApiResponse): number {
  expectProblem(r, 429, "RateLimited");
  const retry = r.headers.get("retry-after");
  expect(retry, "429 carries Retry-After").toMatch(/^\d+$/);
  expect(Number(retry)).toBeGreaterThanOrEqual(1);
  return Number(retry);
}

const reads = (key: string, jobId: string) => [
  () => api("GET", "/v1/queue", { token: key }),
  () => api("GET", `/v1/jobs/${jobId}`, { token: key }),
  () => api("GET", "/v1/jobs?limit=1", { token: key }), // served by Postgres, checked by the object
  () => api("GET", "/v1/quota", { token: key }),
  () => api("GET", "/v1/usage", { token: key }),
  () => api("GET", `/v1/jobs/${jobId}/explain`, { token: key }),
  () => api("GET", "/v1/events?limit=1", { token: key }),
  () => api("GET", "/v1/policies", { token: key }), // Postgres, checked by the gateway
];

describe("rate limits", () => {
  it("without limits nothing is throttled", async () => {
    const t = await createTenant();
    const limits = await api("GET", `/v1/tenants/${t.id}/limits`, { token: ADMIN });
    expect(limits.body).toEqual({
      tenantId: t.id,
      submitPerSecond: null,
      submitBurst: null,
      readPerSecond: null,
      readBurst: null,
    });
    const subs = await Promise.all(Array.from({ length: 25 }, () => submit(t.memberKey, NOWHERE)));
    expect(subs.map((s) => s.status)).toEqual(subs.map(() => 201));
    const rs = await Promise.all(
      Array.from({ length: 40 }, (_, i) => reads(t.memberKey, subs[0]!.body.id)[i % 8]!()),
    );
    expect(rs.filter((r) => r.status !== 200).map((r) => r.text)).toEqual([]);
  });

  it("submissions beyond the burst get 429 with Retry-After; other tenants are unaffected", async () => {
    const a = await createTenant();
    const b = await createTenant();
    // One token per 20 s: the refill cannot hide the limit however slow the machine is.
    const stored = await setLimits(a.id, { submitPerSecond: 0.05, submitBurst: 3 });
    expect(stored).toEqual({
      tenantId: a.id,
      submitPerSecond: 0.05,
      submitBurst: 3,
      readPerSecond: null,
      readBurst: null,
    });
    for (let i = 0; i < 3; i++) expect((await submit(a.memberKey, NOWHERE)).status).toBe(201);
    const limited = await submit(a.memberKey, NOWHERE);
    const retry = expectRateLimited(limited);
    expect(retry).toBeGreaterThan(10); // ~20 s for the next token
    expect(retry).toBeLessThanOrEqual(20);
    // The admin key of the same tenant shares the tenant's bucket.
    expectRateLimited(await submit(a.adminKey, NOWHERE));
    // Reads are a separate bucket, and unlimited here.
    expect((await api("GET", "/v1/queue", { token: a.memberKey })).status).toBe(200);
    // Tenant B has no limits at all.
    for (let i = 0; i < 5; i++) expect((await submit(b.memberKey, NOWHERE)).status).toBe(201);
    // Refused submissions created nothing.
    const q = await api<{ counts: { byState: { queued: number } } }>("GET", "/v1/queue", {
      token: a.memberKey,
    });
    expect(q.body.counts.byState.queued).toBe(3);
  });

  it("an array costs one token per task", async () => {
    const t = await createTenant();
    await setLimits(t.id, { submitPerSecond: 0.05, submitBurst: 4 });
    const arr = await submit(t.memberKey, { ...NOWHERE, array: { size: 3 } });
    expect(arr.status, arr.text).toBe(201);
    expectRateLimited(await submit(t.memberKey, { ...NOWHERE, array: { size: 2 } }));
    expect((await submit(t.memberKey, NOWHERE)).status).toBe(201);
    expectRateLimited(await submit(t.memberKey, NOWHERE));
  });

  it("reads beyond the burst get 429 on every read route, and Retry-After is honest", async () => {
    const t = await createTenant();
    const job = await submit(t.memberKey, NOWHERE);
    expect(job.status).toBe(201);
    // 0.5/s: two reads may come back to back, the third needs to wait ~2 s.
    await setLimits(t.id, { readPerSecond: 0.5, readBurst: 2 });
    const routes = reads(t.memberKey, job.body.id);
    expect((await routes[0]!()).status).toBe(200);
    expect((await routes[1]!()).status).toBe(200);
    let retry = 0;
    for (const read of routes) retry = Math.max(retry, expectRateLimited(await read()));
    expect(retry).toBeLessThanOrEqual(2);
    // Submissions have their own bucket (unlimited here).
    expect((await submit(t.memberKey, NOWHERE)).status).toBe(201);
    // Waiting what Retry-After says is enough.
    await new Promise((r) => setTimeout(r, retry * 1000 + 100));
    const again = await routes[0]!();
    expect(again.status, again.text).toBe(200);
  });

  it("limits are replaced by the next PUT, and {} removes them", async () => {
    const t = await createTenant();
    await setLimits(t.id, { submitPerSecond: 0.05, submitBurst: 1 });
    expect((await submit(t.memberKey, NOWHERE)).status).toBe(201);
    expectRateLimited(await submit(t.memberKey, NOWHERE));
    const own = await api("GET", `/v1/tenants/${t.id}/limits`, { token: t.adminKey });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ submitPerSecond: 0.05, submitBurst: 1 });
    expect(await setLimits(t.id, {})).toMatchObject({ submitPerSecond: null, submitBurst: null });
    for (let i = 0; i < 5; i++) expect((await submit(t.memberKey, NOWHERE)).status).toBe(201);
    const tenant = await api<{ limits: unknown }>("GET", `/v1/tenants/${t.id}`, { token: ADMIN });
    expect(tenant.body.limits).toBeNull();
  });

  it("refuses limits that are not sane, and changes nothing", async () => {
    const t = await createTenant();
    await setLimits(t.id, { readPerSecond: 100 });
    for (const [body, field] of [
      [{ submitPerSecond: 0 }, "submitPerSecond"],
      [{ submitPerSecond: -1 }, "submitPerSecond"],
      [{ readPerSecond: 1e9 }, "readPerSecond"],
      [{ submitPerSecond: "10" }, "submitPerSecond"],
      [{ submitPerSecond: 1, submitBurst: 1.5 }, "submitBurst"],
      [{ submitPerSecond: 1, submitBurst: 0 }, "submitBurst"],
      [{ submitBurst: 5 }, "submitBurst"], // a burst with no rate would silently do nothing
      [{ readPerSecond: 1, perSecond: 1 }, ""],
    ] as const) {
      const r = await api("PUT", `/v1/tenants/${t.id}/limits`, { token: ADMIN, body });
      expectProblem(r, 400, "ValidationFailed");
      const errors = (r.body as { errors?: { path: string }[] }).errors ?? [];
      if (field) expect(errors.map((e) => e.path)).toContain(field);
    }
    const after = await api("GET", `/v1/tenants/${t.id}/limits`, { token: ADMIN });
    expect(after.body).toMatchObject({ readPerSecond: 100, submitPerSecond: null });
    expectProblem(
      await api("PUT", "/v1/tenants/no-such-tenant/limits", { token: ADMIN, body: {} }),
      404,
      "NotFound",
    );
  });
});
