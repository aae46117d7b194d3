// The gateway's authorization matrix: every route the app serves × every kind of caller, with the status
// each one must get. The list of routes comes from the app itself, so a route added without a row here
// fails the first test by name. Each cell uses realistic ids and bodies (tenant A's job, a fresh key to
// revoke, …) so that the status means something: 404 for another tenant's object, 403 for a valid token
// of the wrong role, 401 for a missing or invalid token, and the success status for the right caller.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../../functions/app.ts";
import { SCRIPT_NAMES } from "../../functions/dashboard/assets.ts";
import worker from "../../src/index.ts";
import {
  ADMIN,
  type ApiResponse,
  api,
  awaitAssignments,
  createPool,
  createTenant,
  env,
  gpuTypeName,
  registerWorker,
  submit,
  uniq,
} from "./helpers.ts";

const WHO = ["anon", "badToken", "admin", "aAdmin", "aMember", "bMember", "worker", "join"] as const;
type Who = (typeof WHO)[number];
type Statuses = Record<Who, number>;

/** Public routes: the same answer whoever calls (a bad token is ignored, not refused). */
const open = (s = 200): Statuses => Object.fromEntries(WHO.map((w) => [w, s])) as Statuses;
/** Guarded routes: no token and a forged token are 401 everywhere; then one status per principal. */
const guarded = (
  admin: number,
  aAdmin: number,
  aMember: number,
  bMember: number,
  workerToken: number,
  join: number,
): Statuses => ({ anon: 401, badToken: 401, admin, aAdmin, aMember, bMember, worker: workerToken, join });
const adminOnly = (ok: number) => guarded(ok, 403, 403, 403, 403, 403);
/** Tenant routes about the caller's own tenant (no id in the path): every tenant key succeeds. */
const ownTenant = (ok: number) => guarded(403, ok, ok, ok, 403, 403);
/** Tenant routes naming tenant A's object: tenant B gets 404, never 403 (that would confirm it exists). */
const tenantAObject = (ok: number) => guarded(403, ok, ok, 404, 403, 403);
/** Platform admin or tenant A's own admin key; a member of A is 403, B does not see A at all. */
const adminOrAAdmin = (ok: number) => guarded(ok, ok, 403, 404, 403, 403);
const workerOnly = (ok: number) => guarded(403, 403, 403, 403, ok, 403);

interface Fixtures {
  a: Awaited<ReturnType<typeof createTenant>>;
  b: Awaited<ReturnType<typeof createTenant>>;
  pool: Awaited<ReturnType<typeof createPool>>;
  w: { workerId: string; token: string };
  jobA: string;
  policyA: string;
  pipelineA: string;
  runA: string;
  arrayA: string;
  badToken: string;
}

interface Call {
  path: string;
  body?: unknown;
  /** Overrides the principal's token (e.g. a fresh worker acting on itself). */
  token?: string;
  headers?: Record<string, string>;
}

interface Entry {
  expect: Statuses;
  call: (who: Who, fx: Fixtures) => Call | Promise<Call>;
  /** Custom transport (WebSocket upgrade). */
  send?: (c: Call, token: string | null) => Promise<{ status: number; headers: Headers; text: string }>;
  /** Undo global side effects of a successful call (e.g. a global policy) so other test files never see it. */
  cleanup?: (r: ApiResponse, who: Who) => Promise<void>;
}

const NOWHERE = gpuTypeName("nowhere");
const jobBody = { name: "matrix", command: ["true"], gpus: 1, gpuType: NOWHERE };

async function freshKey(fx: Fixtures): Promise<string> {
  const r = await api<{ id: string }>("POST", `/v1/tenants/${fx.a.id}/keys`, {
    token: ADMIN,
    body: { name: "spare", role: "member" },
  });
  expect(r.status, r.text).toBe(201);
  return r.body.id;
}

async function freshJob(fx: Fixtures): Promise<string> {
  const r = await submit(fx.a.memberKey, { gpuType: NOWHERE });
  expect(r.status, r.text).toBe(201);
  return r.body.id;
}

async function freshPolicy(fx: Fixtures): Promise<string> {
  const r = await api<{ id: string }>("POST", "/v1/policies", {
    token: fx.a.adminKey,
    body: { name: uniq("p"), expression: "false", effect: "warn" },
  });
  expect(r.status, r.text).toBe(201);
  return r.body.id;
}

const pipelineBody = {
  name: "matrix",
  steps: [
    { name: "a", job: jobBody },
    { name: "b", job: jobBody, dependsOn: ["a"] },
  ],
};

async function freshPipeline(fx: Fixtures): Promise<string> {
  const r = await api<{ id: string }>("POST", "/v1/pipelines", { token: fx.a.memberKey, body: pipelineBody });
  expect(r.status, r.text).toBe(201);
  return r.body.id;
}

async function freshRun(fx: Fixtures): Promise<string> {
  const r = await api<{ id: string }>("POST", `/v1/pipelines/${fx.pipelineA}/runs`, {
    token: fx.a.memberKey,
  });
  expect(r.status, r.text).toBe(201);
  return r.body.id;
}

async function freshArray(fx: Fixtures): Promise<string> {
  const r = await submit(fx.a.memberKey, { gpuType: NOWHERE, array: { size: 2 } });
  expect(r.status, r.text).toBe(201);
  return (r.body.array as { id: string }).id;
}

async function freshWorker(fx: Fixtures) {
  return registerWorker(fx.pool.joinToken, 1, gpuTypeName("mxw"));
}

async function websocket(c: Call, token: string | null) {
  const headers: Record<string, string> = { upgrade: "websocket", ...c.headers };
  if (token) headers.authorization = `Bearer ${token}`;
  const ctx = createExecutionContext();
  const r = await worker.fetch(new Request(`https://gantry.test${c.path}`, { headers }), env, ctx);
  const ws = r.webSocket;
  const text = ws ? "" : await r.text();
  if (ws) {
    ws.accept();
    ws.close(1000, "matrix");
  }
  await waitOnExecutionContext(ctx);
  return { status: r.status, headers: r.headers, text };
}

// Keys are "METHOD /path" with OpenAPI-style {params}, exactly as the app declares them.
const MATRIX: Record<string, Entry> = {
  // ---------------------------------------------------------------- public
  "GET /healthz": { expect: open(), call: () => ({ path: "/healthz" }) },
  "GET /openapi.json": { expect: open(), call: () => ({ path: "/openapi.json" }) },
  "GET /docs": { expect: open(), call: () => ({ path: "/docs" }) },
  "GET /docs/swagger-ui.css": { expect: open(), call: () => ({ path: "/docs/swagger-ui.css" }) },
  "GET /docs/swagger-ui-bundle.js": { expect: open(), call: () => ({ path: "/docs/swagger-ui-bundle.js" }) },
  // The dashboard page and assets: public, the page asks for a key itself.
  "GET /": { expect: open(), call: () => ({ path: "/" }) },
  "GET /ui/dashboard.css": { expect: open(), call: () => ({ path: "/ui/dashboard.css" }) },
  "GET /ui/js/{file}": { expect: open(), call: () => ({ path: `/ui/js/${SCRIPT_NAMES[0]}` }) },

  // ---------------------------------------------------------------- ops (admin)
  "GET /metrics": { expect: adminOnly(200), call: () => ({ path: "/metrics" }) },
  "GET /v1/audit": { expect: adminOnly(200), call: () => ({ path: "/v1/audit?limit=5" }) },
  "GET /v1/workers": { expect: adminOnly(200), call: () => ({ path: "/v1/workers" }) },
  "GET /v1/scheduler": { expect: adminOnly(200), call: () => ({ path: "/v1/scheduler" }) },

  // ---------------------------------------------------------------- tenancy
  "POST /v1/tenants": {
    expect: adminOnly(201),
    call: () => ({ path: "/v1/tenants", body: { id: uniq("mx") } }),
  },
  "GET /v1/tenants": { expect: adminOnly(200), call: () => ({ path: "/v1/tenants" }) },
  "GET /v1/tenants/{id}": {
    expect: adminOrAAdmin(200),
    call: (_, fx) => ({ path: `/v1/tenants/${fx.a.id}` }),
  },
  "PATCH /v1/tenants/{id}": {
    expect: adminOnly(200),
    call: (_, fx) => ({ path: `/v1/tenants/${fx.a.id}`, body: { name: "Tenant A" } }),
  },
  "POST /v1/tenants/{id}/keys": {
    expect: adminOrAAdmin(201),
    call: (_, fx) => ({ path: `/v1/tenants/${fx.a.id}/keys`, body: { name: "matrix", role: "member" } }),
  },
  "GET /v1/tenants/{id}/keys": {
    expect: adminOrAAdmin(200),
    call: (_, fx) => ({ path: `/v1/tenants/${fx.a.id}/keys` }),
  },
  "DELETE /v1/tenants/{id}/keys/{keyId}": {
    expect: adminOrAAdmin(204),
    call: async (_, fx) => ({ path: `/v1/tenants/${fx.a.id}/keys/${await freshKey(fx)}` }),
  },
  "PUT /v1/tenants/{id}/limits": {
    expect: adminOnly(200),
    // {} = unlimited: the call is real but leaves tenant A unthrottled for the rest of the matrix.
    call: (_, fx) => ({ path: `/v1/tenants/${fx.a.id}/limits`, body: {} }),
  },
  "GET /v1/tenants/{id}/limits": {
    expect: adminOrAAdmin(200),
    call: (_, fx) => ({ path: `/v1/tenants/${fx.a.id}/limits` }),
  },

  // ---------------------------------------------------------------- quotas
  "PUT /v1/tenants/{id}/quota": {
    expect: adminOnly(200),
    call: (_, fx) => ({ path: `/v1/tenants/${fx.a.id}/quota`, body: { gpus: { "*": { nominal: 1000 } } } }),
  },
  "DELETE /v1/tenants/{id}/quota": {
    expect: adminOnly(204),
    call: (_, fx) => ({ path: `/v1/tenants/${fx.a.id}/quota` }),
  },
  "GET /v1/quota": { expect: ownTenant(200), call: () => ({ path: "/v1/quota" }) },
  "POST /v1/quota/check": {
    expect: ownTenant(200),
    call: () => ({ path: "/v1/quota/check", body: { gpus: 1 } }),
  },
  "POST /v1/quota/allocations": {
    expect: ownTenant(201),
    call: () => ({ path: "/v1/quota/allocations", body: { gpus: 1, note: "matrix" } }),
  },
  "DELETE /v1/quota/allocations/{id}": {
    expect: tenantAObject(204),
    call: async (_, fx) => {
      const r = await api<{ id: string }>("POST", "/v1/quota/allocations", {
        token: fx.a.memberKey,
        body: { gpus: 1 },
      });
      expect(r.status, r.text).toBe(201);
      return { path: `/v1/quota/allocations/${r.body.id}` };
    },
  },
  "GET /v1/usage": { expect: ownTenant(200), call: () => ({ path: "/v1/usage" }) },

  // ---------------------------------------------------------------- policies
  "POST /v1/policies": {
    // Platform admin: a global policy; tenant admin: a tenant policy; members may not write.
    expect: guarded(201, 201, 403, 403, 403, 403),
    // Disabled, so that while it exists it cannot change any other test's decisions.
    call: () => ({
      path: "/v1/policies",
      body: { name: uniq("mx"), expression: "false", effect: "warn", enabled: false },
    }),
    cleanup: async (r, who) => {
      if (r.status !== 201) return;
      const token = who === "admin" ? ADMIN : undefined;
      if (!token) return; // tenant-scoped: harmless to others, left in place
      const d = await api("DELETE", `/v1/policies/${(r.body as { id: string }).id}`, { token });
      expect(d.status, d.text).toBe(204);
    },
  },
  "GET /v1/policies": {
    expect: guarded(200, 200, 200, 200, 403, 403),
    call: () => ({ path: "/v1/policies" }),
  },
  "POST /v1/policies/evaluate": {
    expect: guarded(200, 200, 200, 200, 403, 403),
    call: () => ({ path: "/v1/policies/evaluate", body: { job: jobBody } }),
  },
  // Tenant A's policy: the platform admin sees global policies only, so A's is not found for it either.
  "GET /v1/policies/{id}": {
    expect: guarded(404, 200, 200, 404, 403, 403),
    call: (_, fx) => ({ path: `/v1/policies/${fx.policyA}` }),
  },
  "GET /v1/policies/{id}/versions": {
    expect: guarded(404, 200, 200, 404, 403, 403),
    call: (_, fx) => ({ path: `/v1/policies/${fx.policyA}/versions` }),
  },
  "PUT /v1/policies/{id}": {
    expect: guarded(404, 200, 403, 404, 403, 403),
    call: (_, fx) => ({
      path: `/v1/policies/${fx.policyA}`,
      body: { name: "a-policy", expression: "false", effect: "warn" },
    }),
  },
  "DELETE /v1/policies/{id}": {
    expect: guarded(404, 204, 403, 404, 403, 403),
    call: async (_, fx) => ({ path: `/v1/policies/${await freshPolicy(fx)}` }),
  },

  // ---------------------------------------------------------------- jobs
  "POST /v1/jobs": { expect: ownTenant(201), call: () => ({ path: "/v1/jobs", body: jobBody }) },
  "GET /v1/jobs": { expect: ownTenant(200), call: () => ({ path: "/v1/jobs?limit=5" }) },
  "GET /v1/jobs/{id}": { expect: tenantAObject(200), call: (_, fx) => ({ path: `/v1/jobs/${fx.jobA}` }) },
  "POST /v1/jobs/{id}/cancel": {
    expect: tenantAObject(200),
    call: async (_, fx) => ({ path: `/v1/jobs/${await freshJob(fx)}/cancel` }),
  },
  "GET /v1/jobs/{id}/events": {
    expect: tenantAObject(200),
    call: (_, fx) => ({ path: `/v1/jobs/${fx.jobA}/events` }),
  },
  "GET /v1/jobs/{id}/logs": {
    expect: tenantAObject(200),
    call: (_, fx) => ({ path: `/v1/jobs/${fx.jobA}/logs` }),
  },
  "GET /v1/jobs/{id}/explain": {
    expect: tenantAObject(200),
    call: (_, fx) => ({ path: `/v1/jobs/${fx.jobA}/explain` }),
  },
  "GET /v1/queue": { expect: ownTenant(200), call: () => ({ path: "/v1/queue" }) },
  "GET /v1/whoami": { expect: guarded(200, 200, 200, 200, 200, 200), call: () => ({ path: "/v1/whoami" }) },
  "GET /v1/events": { expect: ownTenant(200), call: () => ({ path: "/v1/events?limit=5" }) },

  // ---------------------------------------------------------------- workflows (members may write them)
  "POST /v1/pipelines": {
    expect: ownTenant(201),
    call: () => ({ path: "/v1/pipelines", body: pipelineBody }),
  },
  "GET /v1/pipelines": { expect: ownTenant(200), call: () => ({ path: "/v1/pipelines" }) },
  "GET /v1/pipelines/{id}": {
    expect: tenantAObject(200),
    call: (_, fx) => ({ path: `/v1/pipelines/${fx.pipelineA}` }),
  },
  "PUT /v1/pipelines/{id}": {
    expect: tenantAObject(200),
    call: (_, fx) => ({ path: `/v1/pipelines/${fx.pipelineA}`, body: pipelineBody }),
  },
  "DELETE /v1/pipelines/{id}": {
    expect: tenantAObject(204),
    call: async (_, fx) => ({ path: `/v1/pipelines/${await freshPipeline(fx)}` }),
  },
  "POST /v1/pipelines/{id}/runs": {
    expect: tenantAObject(201),
    call: (_, fx) => ({ path: `/v1/pipelines/${fx.pipelineA}/runs` }),
  },
  "GET /v1/pipelines/{id}/runs": {
    expect: tenantAObject(200),
    call: (_, fx) => ({ path: `/v1/pipelines/${fx.pipelineA}/runs` }),
  },
  "GET /v1/pipelines/{id}/runs/{runId}": {
    expect: tenantAObject(200),
    call: (_, fx) => ({ path: `/v1/pipelines/${fx.pipelineA}/runs/${fx.runA}` }),
  },
  "POST /v1/pipelines/{id}/runs/{runId}/cancel": {
    expect: tenantAObject(200),
    call: async (_, fx) => ({
      path: `/v1/pipelines/${fx.pipelineA}/runs/${await freshRun(fx)}/cancel`,
    }),
  },
  "GET /v1/arrays/{id}": {
    expect: tenantAObject(200),
    call: (_, fx) => ({ path: `/v1/arrays/${fx.arrayA}` }),
  },
  "POST /v1/arrays/{id}/cancel": {
    expect: tenantAObject(200),
    call: async (_, fx) => ({ path: `/v1/arrays/${await freshArray(fx)}/cancel` }),
  },

  // ---------------------------------------------------------------- fleet
  "POST /v1/pools": {
    expect: adminOnly(201),
    call: () => ({ path: "/v1/pools", body: { id: uniq("mxp") } }),
  },
  "GET /v1/pools": { expect: adminOnly(200), call: () => ({ path: "/v1/pools" }) },
  "POST /v1/pools/{id}/join-tokens": {
    expect: adminOnly(201),
    call: (_, fx) => ({ path: `/v1/pools/${fx.pool.id}/join-tokens`, body: { ttlSeconds: 600 } }),
  },
  "DELETE /v1/pools/{id}/join-tokens/{tokenId}": {
    expect: adminOnly(204),
    call: async (_, fx) => {
      const t = await api<{ id: string }>("POST", `/v1/pools/${fx.pool.id}/join-tokens`, {
        token: ADMIN,
        body: {},
      });
      expect(t.status, t.text).toBe(201);
      return { path: `/v1/pools/${fx.pool.id}/join-tokens/${t.body.id}` };
    },
  },
  "POST /v1/workers/register": {
    expect: guarded(403, 403, 403, 403, 403, 201),
    call: () => ({
      path: "/v1/workers/register",
      body: { hostname: uniq("mxh"), gpus: [{ index: 0, model: "FAKE", type: gpuTypeName("mxr") }] },
    }),
  },
  "POST /v1/workers/{id}/heartbeat": {
    expect: workerOnly(200),
    call: (_, fx) => ({ path: `/v1/workers/${fx.w.workerId}/heartbeat`, body: { running: [] } }),
  },
  "POST /v1/workers/{id}/jobs/{jobId}/status": {
    expect: workerOnly(200),
    call: async (who, fx) => {
      if (who !== "worker") {
        return {
          path: `/v1/workers/${fx.w.workerId}/jobs/${fx.jobA}/status`,
          body: { lease: 1, state: "running" },
        };
      }
      // A real lease: a fresh worker with its own GPU type, and a job of tenant A that only it can run.
      const type = gpuTypeName("mxs");
      const w = await registerWorker(fx.pool.joinToken, 1, type);
      const s = await submit(fx.a.memberKey, { gpuType: type });
      expect(s.status, s.text).toBe(201);
      const [a] = await awaitAssignments(w);
      return {
        path: `/v1/workers/${w.workerId}/jobs/${a!.jobId}/status`,
        token: w.token,
        body: { lease: a!.lease, state: "running" },
      };
    },
  },
  "GET /v1/workers/{id}/connect": {
    expect: workerOnly(101),
    call: (_, fx) => ({ path: `/v1/workers/${fx.w.workerId}/connect` }),
    send: websocket,
  },
  "POST /v1/workers/{id}/drain": {
    expect: guarded(200, 403, 403, 403, 200, 403),
    call: async (who, fx) => {
      if (who !== "admin" && who !== "worker") return { path: `/v1/workers/${fx.w.workerId}/drain` };
      const w = await freshWorker(fx); // drained for good: never the shared worker
      return { path: `/v1/workers/${w.workerId}/drain`, ...(who === "worker" ? { token: w.token } : {}) };
    },
  },
  "POST /v1/workers/{id}/deregister": {
    expect: workerOnly(200),
    call: async (who, fx) => {
      if (who !== "worker") return { path: `/v1/workers/${fx.w.workerId}/deregister` };
      const w = await freshWorker(fx);
      return { path: `/v1/workers/${w.workerId}/deregister`, token: w.token };
    },
  },
};

/** Every route the app serves, as "METHOD /path/{param}" (middleware-only entries are skipped). */
function appRoutes(): string[] {
  const seen = new Set<string>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue;
    seen.add(`${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
  }
  return [...seen];
}

const METHOD_OF = (key: string) => key.slice(0, key.indexOf(" "));

let fx: Fixtures;

beforeAll(async () => {
  const [a, b, pool] = await Promise.all([createTenant(), createTenant(), createPool()]);
  const w = await registerWorker(pool.joinToken, 1, gpuTypeName("mxw"));
  const job = await submit(a.memberKey, { gpuType: NOWHERE });
  expect(job.status, job.text).toBe(201);
  const policy = await api<{ id: string }>("POST", "/v1/policies", {
    token: a.adminKey,
    body: { name: "a-policy", expression: "false", effect: "warn" },
  });
  expect(policy.status, policy.text).toBe(201);
  fx = {
    a,
    b,
    pool,
    w,
    jobA: job.body.id,
    policyA: policy.body.id,
    pipelineA: "",
    runA: "",
    arrayA: "",
    // Well formed and routed to tenant A's object, but no such key: the strongest kind of bad token.
    badToken: `gtk_${a.id}_${"0".repeat(32)}`,
  };
  fx.pipelineA = await freshPipeline(fx);
  fx.runA = await freshRun(fx);
  fx.arrayA = await freshArray(fx);
});

function tokenOf(who: Who): string | null {
  switch (who) {
    case "anon":
      return null;
    case "badToken":
      return fx.badToken;
    case "admin":
      return ADMIN;
    case "aAdmin":
      return fx.a.adminKey;
    case "aMember":
      return fx.a.memberKey;
    case "bMember":
      return fx.b.memberKey;
    case "worker":
      return fx.w.token;
    case "join":
      return fx.pool.joinToken;
  }
}

describe("gateway authorization matrix", () => {
  it("has an entry for every route the app serves, and no entry for a route it does not", () => {
    const routes = appRoutes();
    const missing = routes.filter((r) => !(r in MATRIX));
    const stale = Object.keys(MATRIX).filter((k) => !routes.includes(k));
    expect(
      missing,
      `routes without an entry in test/worker/gateway-matrix.test.ts MATRIX (add one with the expected status for each principal): ${missing.join(", ")}`,
    ).toEqual([]);
    expect(stale, `MATRIX entries for routes the app no longer serves: ${stale.join(", ")}`).toEqual([]);
  });

  for (const [key, entry] of Object.entries(MATRIX)) {
    it(key, async () => {
      const method = METHOD_OF(key);
      const got: Partial<Statuses> = {};
      const problems: string[] = [];
      for (const who of WHO) {
        const c = await entry.call(who, fx);
        const token = c.token ?? tokenOf(who);
        const r = entry.send
          ? await entry.send(c, token)
          : await api(method, c.path, {
              token,
              ...(c.body !== undefined ? { body: c.body } : {}),
              ...(c.headers ? { headers: c.headers } : {}),
            });
        got[who] = r.status;
        if (r.status >= 400 && r.status < 500) {
          const type = r.headers.get("content-type") ?? "";
          if (!type.includes("application/problem+json"))
            problems.push(`${who}: ${r.status} with content-type ${type}`);
          else {
            const p = JSON.parse(r.text) as { status: number; code: string; requestId: string };
            if (p.status !== r.status || !p.code || !p.requestId)
              problems.push(`${who}: problem body incomplete: ${r.text}`);
          }
          if (r.status === 401 && !r.headers.get("www-authenticate"))
            problems.push(`${who}: 401 without WWW-Authenticate`);
        }
        if (r.status !== entry.expect[who])
          problems.push(`${who}: expected ${entry.expect[who]}, got ${r.status}: ${r.text.slice(0, 300)}`);
        if (entry.cleanup && "body" in r) await entry.cleanup(r as ApiResponse, who);
      }
      expect(problems, `${key}\n${problems.join("\n")}`).toEqual([]);
      expect(got).toEqual(entry.expect);
    });
  }

  it("a worker token on another worker's id is 404, like another tenant's object", async () => {
    const other = await freshWorker(fx);
    for (const [method, path, body] of [
      ["POST", `/v1/workers/${other.workerId}/heartbeat`, { running: [] }],
      ["POST", `/v1/workers/${other.workerId}/drain`, undefined],
      ["POST", `/v1/workers/${other.workerId}/deregister`, undefined],
      ["POST", `/v1/workers/${other.workerId}/jobs/${fx.jobA}/status`, { lease: 1, state: "running" }],
    ] as const) {
      const r = await api(method, path, { token: fx.w.token, ...(body ? { body } : {}) });
      expect(r.status, `${method} ${path}: ${r.text}`).toBe(404);
      expect(r.headers.get("content-type")).toContain("application/problem+json");
    }
  });

  it("tenant B's admin key does not reach tenant A's keys, limits or tenant record", async () => {
    for (const [method, path] of [
      ["GET", `/v1/tenants/${fx.a.id}`],
      ["GET", `/v1/tenants/${fx.a.id}/keys`],
      ["GET", `/v1/tenants/${fx.a.id}/limits`],
      ["DELETE", `/v1/tenants/${fx.a.id}/keys/${fx.a.memberKeyId}`],
    ] as const) {
      const r = await api(method, path, { token: fx.b.adminKey });
      expect(r.status, `${method} ${path}: ${r.text}`).toBe(404);
    }
    // A's member key still works: B's DELETE above changed nothing.
    expect((await api("GET", "/v1/queue", { token: fx.a.memberKey })).status).toBe(200);
  });
});
