// Property-based fuzzing of the gateway (fast-check): every JSON endpoint gets ≥ 200 hostile bodies (random
// JSON, deep nesting, sizes straddling the 64 KiB limit, wrong types, unknown fields, malformed text, wrong
// content types) and every path parameter ≥ 200 hostile values (unicode, encoded and raw slashes, broken
// percent-encoding, very long, other tenants' real ids). Properties: never a 5xx; every 4xx is
// problem+json with a code and the request id; and afterwards the observable state of both tenants (queue,
// jobs, quota and allocations, policies, keys, limits) equals the snapshot taken before.
//
// The list of endpoints comes from the app's OpenAPI registry, so a new JSON route or path parameter
// without fuzz settings here fails by name.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import type { ZodType } from "zod";
import { app } from "../../functions/app.ts";
import { SCRIPT_NAMES } from "../../functions/dashboard/assets.ts";
import worker from "../../src/index.ts";
import {
  ADMIN,
  type ApiResponse,
  api,
  checkResponse,
  createPool,
  createTenant,
  flushTenant,
  gpuTypeName,
  registerWorker,
  submit,
  uniq,
} from "./helpers.ts";

const RUNS = 200;
const BODY_LIMIT = 64 * 1024;
/** Agent reports carry output tails and have larger limits on purpose (functions/workers.ts). */
const LARGE_LIMIT = new Set(["POST /v1/workers/{id}/heartbeat", "POST /v1/workers/{id}/jobs/{jobId}/status"]);
/** POST routes that change nothing: valid bodies may be sent to them. */
const READ_ONLY = new Set(["POST /v1/policies/evaluate", "POST /v1/quota/check"]);

/**
 * A fuzzed id names nothing: 404. Except a worker reporting on a job it holds no lease of, which the fleet
 * protocol answers 409 StaleLease (the agent then stops that job), whatever the job id.
 */
const NOT_FOUND: Record<string, number[]> = {
  "POST /v1/workers/{id}/jobs/{jobId}/status jobId": [404, 409],
};

// ---------------------------------------------------------------- the app's routes

interface RouteDef {
  key: string; // "METHOD /path/{param}"
  method: string;
  path: string;
  params: string[];
  body: ZodType | null;
}

function routeDefs(): RouteDef[] {
  const out: RouteDef[] = [];
  for (const d of app.openAPIRegistry.definitions) {
    if (d.type !== "route") continue;
    const r = d.route as {
      method: string;
      path: string;
      request?: { body?: { content?: Record<string, { schema?: unknown }> } };
    };
    const schema = r.request?.body?.content?.["application/json"]?.schema;
    out.push({
      key: `${r.method.toUpperCase()} ${r.path}`,
      method: r.method.toUpperCase(),
      path: r.path,
      params: [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
      body: schema && typeof (schema as ZodType).safeParse === "function" ? (schema as ZodType) : null,
    });
  }
  return out;
}

// ---------------------------------------------------------------- fixtures

interface Fx {
  a: Awaited<ReturnType<typeof createTenant>>;
  b: Awaited<ReturnType<typeof createTenant>>;
  pool: Awaited<ReturnType<typeof createPool>>;
  joinTokenId: string;
  w: { workerId: string; token: string };
  ids: Record<string, string>; // tenant A's real objects, by kind
  bIds: string[]; // tenant B's real ids: A must never reach them
}
let fx: Fx;

/** Which object a path parameter names, from the route's path. */
function paramKind(path: string, param: string): string {
  const before = path.slice(0, path.indexOf(`{${param}}`));
  const segment = before.split("/").filter(Boolean).pop() ?? "";
  return `${segment}:${param}`;
}

/** Real values for every parameter of a path: tenant A's own objects (so only the fuzzed one is wrong). */
function realParam(path: string, param: string): string {
  const kind = paramKind(path, param);
  const v = fx.ids[kind];
  if (!v)
    throw new Error(`gateway-fuzz: no fixture for path parameter ${kind} of ${path}; add one to fx.ids`);
  return v;
}

/** The principal that may call the route, so requests get past the guards into validation and handlers. */
function tokenFor(def: RouteDef): string {
  const p = def.path;
  if (p === "/v1/workers/register") return fx.pool.joinToken;
  if (p === "/v1/workers/{id}/drain") return ADMIN;
  if (p.startsWith("/v1/workers/{id}")) return fx.w.token;
  if (/^\/v1\/(tenants|pools|workers|scheduler|audit)\b/.test(p) || p === "/metrics") return ADMIN;
  return fx.a.adminKey;
}

const NOWHERE = gpuTypeName("fuzz");
const job = { name: "fuzz", command: ["true"], gpus: 1, gpuType: NOWHERE };
/** A valid body for every JSON route: the base that mutations start from. */
const VALID: Record<string, () => Record<string, unknown>> = {
  "POST /v1/tenants": () => ({ id: uniq("fz"), name: "Fuzz", weight: 1 }),
  "PATCH /v1/tenants/{id}": () => ({ name: "Fuzz A", weight: 1 }),
  "POST /v1/tenants/{id}/keys": () => ({ name: "fuzz", role: "member" }),
  "PUT /v1/tenants/{id}/limits": () => ({
    submitPerSecond: 10,
    submitBurst: 10,
    readPerSecond: 10,
    readBurst: 10,
  }),
  "PUT /v1/tenants/{id}/quota": () => ({
    gpus: { "*": { nominal: 4, borrowingLimit: 2, lendingLimit: 1 } },
    maxConcurrentJobs: 10,
    cohort: "fuzz",
  }),
  "POST /v1/quota/check": () => ({ gpus: 1, gpuType: "H100" }),
  "POST /v1/quota/allocations": () => ({ gpus: 1, gpuType: "H100", note: "fuzz" }),
  "POST /v1/policies": () => ({ name: "fuzz", expression: "job.gpus > 64", effect: "deny", message: "m" }),
  "POST /v1/policies/evaluate": () => ({ job }),
  "PUT /v1/policies/{id}": () => ({ name: "fuzz", expression: "job.gpus > 64", effect: "warn" }),
  "POST /v1/jobs": () => ({
    ...job,
    priority: "low",
    env: { K: "V" },
    labels: { team: "fuzz" },
    maxRuntimeSeconds: 60,
    maxRetries: 1,
    dependsOn: [{ job: fx.ids["jobs:id"]!, condition: "finished" }],
  }),
  "POST /v1/pools": () => ({ id: uniq("fzp"), name: "Fuzz" }),
  "POST /v1/pools/{id}/join-tokens": () => ({ ttlSeconds: 3600 }),
  "POST /v1/workers/register": () => ({
    hostname: "fuzz",
    gpus: [{ index: 0, model: "FAKE", type: NOWHERE, memoryMiB: 1024, uuid: "GPU-1" }],
    labels: { zone: "a" },
  }),
  "POST /v1/workers/{id}/heartbeat": () => ({
    running: [],
    updates: [{ jobId: fx.ids["jobs:jobId"]!, lease: 1, state: "running" }],
  }),
  "POST /v1/workers/{id}/jobs/{jobId}/status": () => ({
    lease: 1,
    state: "failed",
    exitCode: 1,
    logTail: "x",
  }),
  "POST /v1/pipelines": () => ({
    name: "fuzz",
    steps: [
      { name: "a", job },
      { name: "b", job, dependsOn: ["a"] },
    ],
  }),
  "PUT /v1/pipelines/{id}": () => ({ name: "fuzz", steps: [{ name: "a", job }] }),
};

// ---------------------------------------------------------------- state snapshot

/** What a tenant can observe of its own state, minus clocks (ages, updatedAt, decayed usage). */
async function tenantState(t: Fx["a"]) {
  await flushTenant(t.id);
  const get = async (path: string, token: string) => {
    const r = await api<Record<string, unknown>>("GET", path, { token });
    expect(r.status, `${path}: ${r.text}`).toBe(200);
    return r.body;
  };
  const queue = (await get("/v1/queue", t.adminKey)) as { counts: unknown; fairShare: { weight: number } };
  const jobs = (await get("/v1/jobs?limit=500", t.adminKey)) as { items: { id: string; state: string }[] };
  const quota = (await get("/v1/quota", t.adminKey)) as {
    quota: unknown;
    usage: unknown;
    allocations: unknown;
  };
  const policies = (await get("/v1/policies", t.adminKey)) as { items: Record<string, unknown>[] };
  const keys = (await get(`/v1/tenants/${t.id}/keys`, ADMIN)) as { items: Record<string, unknown>[] };
  const tenant = await get(`/v1/tenants/${t.id}`, ADMIN);
  const limits = await get(`/v1/tenants/${t.id}/limits`, ADMIN);
  return {
    queue: { counts: queue.counts, weight: queue.fairShare.weight },
    jobs: jobs.items.map((j) => `${j.id}:${j.state}`).sort(),
    quota,
    // The tenant's own policies: global ones belong to everyone (other test files may add some meanwhile).
    policies: policies.items.filter((p) => p.tenantId === t.id),
    keys: keys.items,
    tenant: { name: tenant.name, weight: tenant.weight, quota: tenant.quota, limits: tenant.limits },
    limits,
  };
}
const snapshot = async () => ({ a: await tenantState(fx.a), b: await tenantState(fx.b) });

// ---------------------------------------------------------------- sending

/**
 * Like the helpers' api(), but the body goes as bytes with exactly the content-type given (or none): a
 * string body would get text/plain from the Request constructor, and api() defaults to application/json.
 */
async function send(
  method: string,
  path: string,
  token: string,
  payload: string,
  contentType: string | null,
) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (contentType) headers["content-type"] = contentType;
  const ctx = createExecutionContext();
  const r = await worker.fetch(
    new Request(`https://gantry.test${path}`, { method, headers, body: new TextEncoder().encode(payload) }),
    env,
    ctx,
  );
  const text = await r.text();
  await waitOnExecutionContext(ctx);
  return { status: r.status, headers: r.headers, body: null, text } satisfies ApiResponse<null>;
}

// ---------------------------------------------------------------- body arbitraries

type BodyCase =
  | { kind: "json"; value: unknown; label: string }
  | { kind: "text"; text: string; contentType: string | null; label: string };

/** Every path to a value inside a JSON value (for replacing one deep field). */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(v)) return v.flatMap((x, i) => [[...prefix, i], ...paths(x, [...prefix, i])]);
  if (v && typeof v === "object")
    return Object.entries(v).flatMap(([k, x]) => [[...prefix, k], ...paths(x, [...prefix, k])]);
  return [];
}

function getAt(root: unknown, path: (string | number)[]): unknown {
  return path.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], root);
}

function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let cur = copy;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
  cur[path[path.length - 1]!] = value;
  return copy;
}

/** Whether any string (key or value) holds U+0000: the gateway refuses those (Postgres cannot store them). */
function hasNul(v: unknown): boolean {
  if (typeof v === "string") return v.includes("\u0000");
  if (Array.isArray(v)) return v.some(hasNul);
  if (v && typeof v === "object")
    return Object.entries(v).some(([k, x]) => k.includes("\u0000") || hasNul(x));
  return false;
}

/** Whether the gateway would admit this JSON body for the route: its schema accepts it and it has no NUL. */
function admitted(schema: ZodType, v: unknown): boolean {
  const r = schema.safeParse(v);
  return r.success && !hasNul(r.data);
}

function bodyCases(valid: () => Record<string, unknown>): fc.Arbitrary<BodyCase> {
  const base = valid();
  const known = new Set(paths(base).map((p) => String(p[p.length - 1])));
  const anyJson = fc.jsonValue({ maxDepth: 4 });
  return fc.oneof(
    // Random JSON of every shape (objects with random keys, arrays, scalars, null, __proto__ keys).
    {
      weight: 3,
      arbitrary: anyJson.map((value) => ({ kind: "json" as const, value, label: "random JSON" })),
    },
    // A valid body with one field anywhere in it replaced by something random (wrong type, out of range).
    {
      weight: 3,
      arbitrary: fc.tuple(fc.nat(), anyJson).map(([i, value]) => {
        const all = paths(base);
        const at = all[i % all.length]!;
        return {
          kind: "json" as const,
          value: setAt(base, at, value),
          label: `field ${at.join(".")} replaced`,
        };
      }),
    },
    // A valid body plus one unknown field (strict objects must refuse it), at the top or nested.
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !known.has(k)),
          anyJson,
          fc.boolean(),
        )
        .map(([k, v, top]) => {
          const value = structuredClone(base) as Record<string, unknown>;
          const nested = Object.values(value).find((x) => x && typeof x === "object" && !Array.isArray(x));
          (top || !nested ? value : (nested as Record<string, unknown>))[k] = v;
          return { kind: "json" as const, value, label: `unknown field ${JSON.stringify(k)}` };
        }),
    },
    // A valid body with a NUL character slipped into one of its strings (keys included).
    {
      weight: 2,
      arbitrary: fc.tuple(fc.nat(), fc.nat(), fc.nat(3)).map(([i, at, where]) => {
        const inKey = where === 0;
        const strings = paths(base).filter((p) => typeof getAt(base, p) === "string");
        if (inKey || strings.length === 0) {
          const value = { ...structuredClone(base), [`k\u0000${at % 10}`]: "v" };
          return { kind: "json" as const, value, label: "NUL in a key" };
        }
        const p = strings[i % strings.length]!;
        const old = String(getAt(base, p));
        const cut = at % (old.length + 1);
        const value = setAt(base, p, `${old.slice(0, cut)}\u0000${old.slice(cut)}`);
        return { kind: "json" as const, value, label: `NUL in ${p.join(".")}` };
      }),
    },
    // Deep nesting: arrays or objects thousands of levels deep.
    {
      weight: 1,
      arbitrary: fc.tuple(fc.integer({ min: 50, max: 20_000 }), fc.boolean()).map(([n, arr]) => ({
        kind: "text" as const,
        text: arr ? `${"[".repeat(n)}${"]".repeat(n)}` : `${'{"a":'.repeat(n)}1${"}".repeat(n)}`,
        contentType: "application/json",
        label: `nesting ${n}`,
      })),
    },
    // A body whose size straddles 64 KiB: one string field padded to an exact total size.
    {
      weight: 2,
      arbitrary: fc.integer({ min: BODY_LIMIT - 64, max: BODY_LIMIT + 64 }).map((size) => {
        const probe = JSON.stringify({ ...base, zz: "" });
        const text = JSON.stringify({ ...base, zz: "x".repeat(Math.max(0, size - probe.length)) });
        return {
          kind: "text" as const,
          text,
          contentType: "application/json",
          label: `${text.length} bytes`,
        };
      }),
    },
    // Malformed JSON: random text, or a valid body cut short.
    {
      weight: 2,
      arbitrary: fc
        .oneof(
          fc.string({ maxLength: 200 }),
          fc.nat().map((n) => {
            const s = JSON.stringify(base);
            return s.slice(0, n % s.length);
          }),
          fc.constantFrom("", " ", "{", "[", '{"a":', "NaN", "undefined", "{'a':1}", '{"a":1,}', "\u0000"),
        )
        .map((text) => ({
          kind: "text" as const,
          text,
          contentType: "application/json",
          label: "malformed",
        })),
    },
    // A valid body sent as something other than JSON: must be 415, never read as an empty object.
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(
          null,
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "application/xml",
          "application/jsonx",
          "json",
          "application/octet-stream",
        )
        .map((contentType) => ({
          kind: "text" as const,
          text: JSON.stringify(base),
          contentType,
          label: `content-type ${contentType}`,
        })),
    },
  );
}

// ---------------------------------------------------------------- path parameter arbitraries

/** A fuzzed path segment, already in the form it goes into the URL. */
function segmentCases(token: string): fc.Arbitrary<{ segment: string; label: string }> {
  // The platform admin may rightly reach tenant B itself; for it, B's id is no foreign object.
  const foreign = token === ADMIN ? fx.bIds.filter((id) => id !== fx.b.id) : fx.bIds;
  const wellFormed = (s: string) => s.replace(/[\uD800-\uDFFF]/g, "\uFFFD");
  const encoded = (s: string) => encodeURIComponent(wellFormed(s));
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .string({ unit: "grapheme", minLength: 1, maxLength: 40 })
        .map((s) => ({ segment: encoded(s), label: "unicode" })),
    },
    {
      weight: 2,
      arbitrary: fc
        .string({ unit: "binary", minLength: 1, maxLength: 40 })
        .map((s) => ({ segment: encoded(s), label: "binary" })),
    },
    {
      weight: 2,
      arbitrary: fc
        .array(
          fc.constantFrom(
            "/",
            "%2F",
            "%2f",
            "..",
            ".",
            "%2e%2e",
            "%",
            "%ZZ",
            "%E0%A4%A",
            "%00",
            "%C0%AF",
            "a",
            "é",
            ";",
            "=",
            "\\",
            "~",
            "*",
          ),
          {
            minLength: 1,
            maxLength: 8,
          },
        )
        .map((parts) => ({ segment: parts.join(""), label: "raw" })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.integer({ min: 150, max: 6000 }), fc.constantFrom("a", "é", "%2F", "0"))
        .map(([n, ch]) => ({
          segment: ch.length > 1 ? ch.repeat(Math.ceil(n / 3)) : encoded(ch.repeat(n)),
          label: `long ${n}`,
        })),
    },
    // Real ids that belong to tenant B (or look like ids): A's key must find nothing.
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(
          ...foreign,
          "job_00000000000000000000000000",
          "pol_x",
          "w-00-x",
          "w-99-x",
          "0",
          "-1",
          "null",
        )
        .map((s) => ({ segment: encodeURIComponent(s), label: `id ${s}` })),
    },
  );
}

// ---------------------------------------------------------------- the tests

beforeAll(async () => {
  const [a, b, pool] = await Promise.all([createTenant(), createTenant(), createPool()]);
  // Its own GPU type: no fixture job (all NOWHERE) may ever be placed, so nothing moves during a property.
  const w = await registerWorker(pool.joinToken, 1, gpuTypeName("fzw"));
  const jt = await api<{ id: string }>("POST", `/v1/pools/${pool.id}/join-tokens`, {
    token: ADMIN,
    body: {},
  });
  const setup = async (t: typeof a) => {
    const j = await submit(t.memberKey, { gpuType: NOWHERE });
    const arr = await submit(t.memberKey, { gpuType: NOWHERE, array: { size: 2 } });
    const p = await api<{ id: string }>("POST", "/v1/policies", {
      token: t.adminKey,
      body: { name: "fz", expression: "false", effect: "warn" },
    });
    const al = await api<{ id: string }>("POST", "/v1/quota/allocations", {
      token: t.memberKey,
      body: { gpus: 1 },
    });
    const pl = await api<{ id: string }>("POST", "/v1/pipelines", {
      token: t.memberKey,
      body: { name: "fz", steps: [{ name: "a", job }] },
    });
    const run =
      pl.status === 201
        ? await api<{ id: string }>("POST", `/v1/pipelines/${pl.body.id}/runs`, { token: t.memberKey })
        : null;
    for (const r of [j, arr, p, al]) expect(r.status, r.text).toBe(201);
    return {
      job: j.body.id,
      array: String((arr.body as { array?: { id: string } }).array?.id),
      policy: p.body.id,
      alloc: al.body.id,
      pipeline: pl.status === 201 ? pl.body.id : "pipe_none",
      run: run?.status === 201 ? run.body.id : "run_none",
    };
  };
  const [oa, ob] = [await setup(a), await setup(b)];
  fx = {
    a,
    b,
    pool,
    joinTokenId: jt.body.id,
    w,
    ids: {
      "tenants:id": a.id,
      "keys:keyId": a.memberKeyId,
      "limits:id": a.id,
      "allocations:id": oa.alloc,
      "policies:id": oa.policy,
      "jobs:id": oa.job,
      "pools:id": pool.id,
      "join-tokens:tokenId": jt.body.id,
      "workers:id": w.workerId,
      "jobs:jobId": oa.job,
      "pipelines:id": oa.pipeline,
      "runs:runId": oa.run,
      "arrays:id": oa.array,
      "js:file": SCRIPT_NAMES[0],
    },
    bIds: [b.id, b.memberKeyId, ob.job, ob.policy, ob.alloc, ob.array, ob.pipeline, ob.run],
  };
});

const DEFS = routeDefs();
const JSON_ROUTES = DEFS.filter((d) => d.body);
const PARAM_CASES = DEFS.flatMap((d) => d.params.map((p) => ({ def: d, param: p })));

/** Build the URL of a route with real values, except `fuzzed` (already URL-ready). */
function urlOf(def: RouteDef, fuzzed?: { param: string; segment: string }): string {
  return def.path.replace(/\{(\w+)\}/g, (_, p: string) =>
    fuzzed?.param === p ? fuzzed.segment : encodeURIComponent(realParam(def.path, p)),
  );
}

describe("gateway fuzzing", () => {
  it("has fuzz settings for every JSON route and every path parameter", () => {
    expect(JSON_ROUTES.length).toBeGreaterThan(10);
    const noBody = JSON_ROUTES.filter((d) => !VALID[d.key]).map((d) => d.key);
    expect(noBody, `JSON routes without a VALID body in gateway-fuzz.test.ts: ${noBody.join(", ")}`).toEqual(
      [],
    );
    for (const d of JSON_ROUTES) {
      const v = VALID[d.key]!;
      // The base bodies must themselves be valid, or the mutations would prove nothing.
      const parsed = d.body!.safeParse(v());
      expect(
        parsed.success,
        `${d.key}: VALID body does not validate: ${JSON.stringify(parsed.error?.issues)}`,
      ).toBe(true);
    }
    const noParam = PARAM_CASES.map(({ def, param }) => paramKind(def.path, param)).filter((k) => !fx.ids[k]);
    expect([...new Set(noParam)], "path parameters without a fixture in fx.ids").toEqual([]);
  });

  for (const def of JSON_ROUTES) {
    it(`${def.key}: ${RUNS} hostile bodies`, { timeout: 180_000 }, async () => {
      const valid = VALID[def.key];
      expect(valid, `no VALID body for ${def.key}`).toBeTruthy();
      const before = await snapshot();
      const token = tokenFor(def);
      const url = urlOf(def);
      const mutating = !READ_ONLY.has(def.key);
      let sent = 0;
      await fc.assert(
        fc.asyncProperty(bodyCases(valid!), async (c) => {
          let payload: string;
          let contentType: string | null = "application/json";
          if (c.kind === "json") payload = JSON.stringify(c.value) ?? "null";
          else {
            payload = c.text;
            contentType = c.contentType;
          }
          // Only invalid requests go to routes that change state: a valid one would rightly change it.
          if (mutating && contentType === "application/json") {
            let parsed: unknown;
            let isJson = true;
            try {
              parsed = JSON.parse(payload);
            } catch {
              isJson = false;
            }
            fc.pre(!(isJson && payload.length <= BODY_LIMIT && admitted(def.body!, parsed)));
          }
          const r = await send(def.method, url, token, payload, contentType);
          sent++;
          const what = `${def.key} [${c.label}]`;
          checkResponse(r, what);
          const bytes = new TextEncoder().encode(payload).length;
          if (bytes > BODY_LIMIT && !LARGE_LIMIT.has(def.key)) expect(r.status, what).toBe(413);
          if (c.kind === "text" && c.contentType !== "application/json") expect(r.status, what).toBe(415);
          if (c.label === "malformed") expect(r.status, what).toBe(400);
          if (mutating) expect(r.status, what).toBeGreaterThanOrEqual(400);
        }),
        { numRuns: RUNS, maxSkipsPerRun: 10 },
      );
      expect(sent).toBeGreaterThanOrEqual(RUNS);
      expect(await snapshot()).toEqual(before);
    });
  }

  for (const { def, param } of PARAM_CASES) {
    it(`${def.key}: ${RUNS} hostile {${param}}`, { timeout: 180_000 }, async () => {
      const before = await snapshot();
      const token = tokenFor(def);
      const body = VALID[def.key]?.();
      let sent = 0;
      await fc.assert(
        fc.asyncProperty(segmentCases(token), async ({ segment, label }) => {
          const url = urlOf(def, { param, segment });
          // A fuzzed value that happens to name the real object would be a legitimate call: not a case.
          fc.pre(url !== urlOf(def));
          const r = await api(def.method, url, { token, ...(body ? { body } : {}) });
          sent++;
          const what = `${def.method} ${url.slice(0, 200)} [${label}]`;
          checkResponse(r, what);
          // Nothing that is not the real object exists: every answer is a refusal. Except where the value has
          // dot segments ("..", "%2e"): the URL parser resolves those before the request is sent, so the
          // request may rightly reach another route (GET /v1/jobs/../events is GET /v1/events).
          const dotSegment = /(^|[/\\])(\.|%2e){1,2}([/\\]|$)/i.test(segment);
          if (!dotSegment)
            expect(NOT_FOUND[`${def.key} ${param}`] ?? [404], `${what}: ${r.text.slice(0, 300)}`).toContain(
              r.status,
            );
        }),
        { numRuns: RUNS, maxSkipsPerRun: 10 },
      );
      expect(sent).toBeGreaterThanOrEqual(RUNS);
      expect(await snapshot()).toEqual(before);
    });
  }
});

// Found by the fuzzing above: NUL characters reached Postgres, which stores none (text and jsonb alike).
describe("NUL characters (U+0000) never reach Postgres", () => {
  it("are refused in bodies, queries and ids, before anything is stored", async () => {
    const nulName = await api("POST", "/v1/tenants", {
      token: ADMIN,
      body: { id: uniq("nul"), name: "a\u0000b" },
    });
    expect(nulName.status, nulName.text).toBe(400);
    expect((nulName.body as { errors: { path: string }[] }).errors[0]!.path).toBe("name");
    checkResponse(await api("GET", "/v1/jobs?user=%00", { token: fx.a.memberKey }), "query");
    expect((await api("GET", "/v1/jobs?user=%00", { token: fx.a.memberKey })).status).toBe(400);
    expect((await api("GET", "/v1/jobs/%00", { token: fx.a.memberKey })).status).toBe(404);
    expect((await api("GET", `/v1/tenants/a%00b`, { token: ADMIN })).status).toBe(404);
    const policy = await api("POST", "/v1/policies", {
      token: fx.a.adminKey,
      body: { name: "n", expression: "false", effect: "warn", message: "\u0000" },
    });
    expect(policy.status, policy.text).toBe(400);
    // Before: 201, and the job's outbox row could never be written to Postgres, which stopped every later
    // row of the tenant's history (jobs list, usage, audit) for good.
    for (const body of [{ command: ["a\u0000b"] }, { env: { K: "\u0000" } }]) {
      const r = await submit(fx.a.memberKey, { gpuType: NOWHERE, ...body });
      expect(r.status, r.text).toBe(400);
    }
    const alloc = await api("POST", "/v1/quota/allocations", {
      token: fx.a.memberKey,
      body: { gpus: 1, note: "\u0000" },
    });
    expect(alloc.status, alloc.text).toBe(400);
    await flushTenant(fx.a.id); // nothing stuck
  });

  it("in an agent's output tail are replaced, so the report (and the tenant's history) still goes through", async () => {
    const t = await createTenant();
    const pool = await createPool();
    const type = gpuTypeName("nul");
    const w = await registerWorker(pool.joinToken, 1, type);
    const s = await submit(t.memberKey, { gpuType: type });
    expect(s.status).toBe(201);
    let assignment: { jobId: string; lease: number } | undefined;
    for (let i = 0; i < 200 && !assignment; i++) {
      const hb = await api<{ assignments: { jobId: string; lease: number }[] }>(
        "POST",
        `/v1/workers/${w.workerId}/heartbeat`,
        { token: w.token, body: { running: [] } },
      );
      assignment = hb.body.assignments[0];
      if (!assignment) await new Promise((r) => setTimeout(r, 25));
    }
    expect(assignment).toBeTruthy();
    const report = (state: string, extra: Record<string, unknown> = {}) =>
      api("POST", `/v1/workers/${w.workerId}/jobs/${assignment!.jobId}/status`, {
        token: w.token,
        body: { lease: assignment!.lease, state, ...extra },
      });
    expect((await report("running")).status).toBe(200);
    const done = await report("failed", { exitCode: 1, message: "bad\u0000exit", logTail: "bin\u0000ary\n" });
    expect(done.status, done.text).toBe(200);
    const logs = await api<{ tail: string }>("GET", `/v1/jobs/${assignment!.jobId}/logs`, {
      token: t.memberKey,
    });
    expect(logs.body.tail).toBe("bin\uFFFDary\n");
    await flushTenant(t.id);
    const listed = await api<{ items: { id: string; state: string }[] }>("GET", "/v1/jobs", {
      token: t.memberKey,
    });
    expect(listed.body.items.find((j) => j.id === assignment!.jobId)?.state).toBe("failed");
  });
});
