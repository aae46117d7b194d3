// Helpers for in-runtime tests: everything goes through the real Worker's fetch handler.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { expect } from "vitest";
import worker from "../../src/index.ts";

export const ADMIN = "test-admin-token-0123456789";
export { env };

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown; headers?: Record<string, string>; raw?: string } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let payload: string | undefined;
  if (opts.raw !== undefined) payload = opts.raw;
  else if (opts.body !== undefined) payload = JSON.stringify(opts.body);
  if (payload !== undefined && !headers["content-type"]) headers["content-type"] = "application/json";
  // The Worker's own fetch handler, called directly: the pool's SELF service binding adds per-request
  // overhead that grows with concurrency (1,000 concurrent submits: 100 s instead of 1.5 s).
  const ctx = createExecutionContext();
  const r = await worker.fetch(
    new Request(`https://gantry.test${path}`, { method, headers, body: payload }),
    env,
    ctx,
  );
  const text = await r.text();
  await waitOnExecutionContext(ctx);
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  return { status: r.status, headers: r.headers, body: body as T, text };
}

export function expectProblem(r: ApiResponse, status: number, code?: string): void {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get("content-type")).toContain("application/problem+json");
  const b = r.body as { code: string; status: number; requestId: string; title: string; detail: string };
  expect(b.status).toBe(status);
  expect(typeof b.requestId).toBe("string");
  expect(b.title).toBeTruthy();
  if (code) expect(b.code).toBe(code);
}

/**
 * What every answer to hostile input must be: never a 5xx; a 4xx is problem+json whose status, code and
 * request id match the response (the fuzz suites' property).
 */
export function checkResponse(r: ApiResponse<unknown>, what: string): void {
  expect(r.status, `${what} → ${r.status}: ${r.text.slice(0, 500)}`).toBeLessThan(500);
  if (r.status >= 400) {
    expect(r.headers.get("content-type"), `${what}: ${r.text.slice(0, 200)}`).toContain(
      "application/problem+json",
    );
    const p = JSON.parse(r.text) as { status: number; code: string; requestId: string; title: string };
    expect(p.status, what).toBe(r.status);
    expect(p.code, what).toMatch(/^[A-Z][A-Za-z]+$/);
    expect(p.requestId, what).toBe(r.headers.get("x-request-id"));
  }
}

let seq = 0;
export const uniq = (p: string) => `${p}-${Date.now().toString(36)}-${(seq++).toString(36)}`;

export async function createTenant(id = uniq("t"), weight = 1) {
  const t = await api("POST", "/v1/tenants", { token: ADMIN, body: { id, weight } });
  expect(t.status, t.text).toBe(201);
  const admin = await api<{ key: string; id: string }>("POST", `/v1/tenants/${id}/keys`, {
    token: ADMIN,
    body: { name: "alice", role: "admin" },
  });
  expect(admin.status, admin.text).toBe(201);
  const member = await api<{ key: string; id: string }>("POST", `/v1/tenants/${id}/keys`, {
    token: ADMIN,
    body: { name: "bob", role: "member" },
  });
  expect(member.status).toBe(201);
  return { id, adminKey: admin.body.key, memberKey: member.body.key, memberKeyId: member.body.id };
}

export async function createPool(id = uniq("p")) {
  const p = await api("POST", "/v1/pools", { token: ADMIN, body: { id } });
  expect(p.status, p.text).toBe(201);
  const jt = await api<{ token: string }>("POST", `/v1/pools/${id}/join-tokens`, { token: ADMIN, body: {} });
  expect(jt.status, jt.text).toBe(201);
  return { id, joinToken: jt.body.token };
}

export async function registerWorker(
  joinToken: string,
  gpus: number,
  type = "H100",
  hostname = uniq("host"),
) {
  const r = await api<{ workerId: string; token: string }>("POST", "/v1/workers/register", {
    token: joinToken,
    body: {
      hostname,
      gpus: Array.from({ length: gpus }, (_, i) => ({ index: i, model: `FAKE ${type}`, type })),
    },
  });
  expect(r.status, r.text).toBe(201);
  return r.body;
}

export interface Assignment {
  jobId: string;
  lease: number;
  gpuIndices: number[];
  spec: Record<string, unknown>;
}

export async function heartbeat(
  w: { workerId: string; token: string },
  running: { jobId: string; lease: number }[] = [],
  updates: Record<string, unknown>[] = [],
) {
  const r = await api<{ assignments: Assignment[]; cancel: string[]; drain: boolean; rejected: unknown[] }>(
    "POST",
    `/v1/workers/${w.workerId}/heartbeat`,
    { token: w.token, body: { running, updates } },
  );
  expect(r.status, r.text).toBe(200);
  return r.body;
}

/** Poll until `fn` returns a truthy value (scheduling runs on alarms, asynchronously to the request). */
export async function until<T>(
  fn: () => Promise<T | null | undefined | false>,
  ms = 10_000,
  what = "condition",
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Heartbeat until the worker is handed `n` assignments. */
export async function awaitAssignments(w: { workerId: string; token: string }, n = 1, ms = 10_000) {
  const got = new Map<string, Assignment>();
  await until(
    async () => {
      const hb = await heartbeat(w, []);
      for (const a of hb.assignments) got.set(a.jobId, a);
      return got.size >= n;
    },
    ms,
    `${n} assignment(s)`,
  );
  return [...got.values()];
}

export async function submit(
  key: string,
  job: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  return api<Record<string, unknown> & { id: string; state: string }>("POST", "/v1/jobs", {
    token: key,
    body: { name: "job", command: ["true"], gpus: 1, ...job },
    headers,
  });
}

export async function getJob(key: string, id: string) {
  const r = await api<Record<string, unknown> & { state: string }>("GET", `/v1/jobs/${id}`, { token: key });
  expect(r.status, r.text).toBe(200);
  return r.body;
}

export async function report(
  w: { workerId: string; token: string },
  a: { jobId: string; lease: number },
  state: "running" | "succeeded" | "failed",
  extra: Record<string, unknown> = {},
) {
  return api("POST", `/v1/workers/${w.workerId}/jobs/${a.jobId}/status`, {
    token: w.token,
    body: { lease: a.lease, state, ...extra },
  });
}

/** Run an assignment to completion the way an agent would: running, then a final state. */
export async function complete(
  w: { workerId: string; token: string },
  a: { jobId: string; lease: number },
  final: "succeeded" | "failed" = "succeeded",
  extra: Record<string, unknown> = {},
) {
  expect((await report(w, a, "running")).status).toBe(200);
  const r = await report(w, a, final, { exitCode: final === "succeeded" ? 0 : 1, ...extra });
  expect(r.status, r.text).toBe(200);
}

export const gpuTypeName = (p: string) =>
  uniq(p)
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, "");

/** Flush every tenant's outbox and wait for Postgres to have everything (outbox empty). */
export async function flushTenant(tenantId: string) {
  const stub = env.TENANT_QUEUE.getByName(tenantId) as unknown as {
    flushOutbox(): Promise<{ pending: number }>;
  };
  await until(async () => (await stub.flushOutbox()).pending === 0, 20_000, "outbox flushed");
}

export async function setQuota(tenantId: string, quota: Record<string, unknown>) {
  const r = await api("PUT", `/v1/tenants/${tenantId}/quota`, { token: ADMIN, body: quota });
  expect(r.status, r.text).toBe(200);
}
