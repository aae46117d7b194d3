// Property-based fuzzing of query strings and the headers routes read as input (fast-check). The body and
// path fuzzing (gateway-fuzz.test.ts) never sent a query: a jobs-list cursor whose time Date cannot hold
// was a 500 until a session found it by hand. Every query parameter of every route in the OpenAPI
// registry gets ≥ RUNS hostile values (random and binary text, numbers at and past every limit, dates
// outside what Date and Postgres hold, cursors of every shape, repeated and empty parameters), alone and
// next to a valid value of the others. Properties: never a 5xx; every 4xx is problem+json with a code and
// the request id; a 2xx is JSON. These routes only read, so there is no state to compare.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import type { ZodObject, ZodType } from "zod";
import { app } from "../../functions/app.ts";
import {
  ADMIN,
  api,
  checkResponse,
  createPool,
  createTenant,
  flushTenant,
  gpuTypeName,
  registerWorker,
  submit,
} from "./helpers.ts";

const RUNS = 150;

interface QueryRoute {
  key: string;
  path: string;
  params: string[];
}

function queryRoutes(): QueryRoute[] {
  const out: QueryRoute[] = [];
  for (const d of app.openAPIRegistry.definitions) {
    if (d.type !== "route") continue;
    const r = d.route as { method: string; path: string; request?: { query?: ZodType } };
    const q = r.request?.query as ZodObject | undefined;
    if (!q) continue;
    out.push({ key: `${r.method.toUpperCase()} ${r.path}`, path: r.path, params: Object.keys(q.shape) });
  }
  return out;
}

let t: Awaited<ReturnType<typeof createTenant>>;
let jobId: string;

/** Who may call the route, and a valid value for each of its parameters (the others stay valid). */
const ROUTES: Record<string, { token: () => string; valid: () => Record<string, string> }> = {
  "GET /v1/jobs": {
    token: () => t.memberKey,
    valid: () => ({ state: "queued", priority: "normal", user: "bob", label: "team:a", limit: "10" }),
  },
  "GET /v1/audit": {
    token: () => ADMIN,
    valid: () => ({
      tenant: t.id,
      action: "key.create",
      from: "2026-01-01T00:00:00Z",
      to: "2030-01-01T00:00:00Z",
      limit: "5",
    }),
  },
  "GET /v1/events": { token: () => t.memberKey, valid: () => ({ after: "0", job: jobId, limit: "5" }) },
  "GET /v1/usage": {
    token: () => t.memberKey,
    valid: () => ({ from: "2026-01-01T00:00:00Z", to: "2030-01-01T00:00:00+02:00" }),
  },
};

// ---------------------------------------------------------------- hostile values (raw, before encoding)

const b64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
const b64url = (s: string) => b64(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

const NUMBERS = [
  "0",
  "-0",
  "-1",
  "1.5",
  "1e3",
  "1e308",
  "1e309",
  "-1e309",
  "9007199254740993",
  "9".repeat(400),
  "Infinity",
  "-Infinity",
  "NaN",
  "0x10",
  "0b1",
  " 5",
  "5 ",
  "",
  "null",
  "true",
  "[]",
  "latest",
];

const DATES = [
  "0000-01-01T00:00:00Z",
  "0001-01-01T00:00:00Z",
  "9999-12-31T23:59:59.999Z",
  "9999-12-31T23:59:59-23:59",
  "0000-01-01T00:00:00+23:59",
  "+275760-09-13T00:00:00.000Z",
  "-271821-04-20T00:00:00.000Z",
  "2026-02-31T00:00:00Z",
  "2026-01-01T00:00:60Z",
  "2026-01-01",
  "2026-01-01T00:00:00",
  "1970-01-01T00:00:00.0000000001Z",
];

/** Cursors of every shape: what the codec (functions/cursor.ts) must refuse, or decode to something sane. */
const cursorJson = fc.oneof(
  fc.tuple(fc.double(), fc.string()).map((v) => JSON.stringify(v)),
  fc
    .tuple(fc.constantFrom(1e20, -1e20, 8.64e15, 8.64e15 + 1, -8.64e15, 0, -1, 1.5), fc.string())
    .map((v) => JSON.stringify(v)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 60 }),
);
const cursors = fc.oneof(
  cursorJson.map(b64),
  cursorJson.map(b64url),
  fc.string({ unit: "binary", maxLength: 80 }).map(b64),
  fc.string({ maxLength: 80 }),
);

const anyText = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.integer({ min: 150, max: 5000 }).map((n) => "x".repeat(n)),
  fc.constantFrom("\u0000", "a\u0000b", "%", "%ZZ", "&", "=", "#", "+", ":", "::", "a:b:c", "\uD800"),
);

type QueryCase = { pairs: [string, string][]; label: string };

function caseFor(param: string, valid: Record<string, string>): fc.Arbitrary<QueryCase> {
  const others = Object.entries(valid).filter(([k]) => k !== param);
  const value = fc.oneof(
    { weight: 3, arbitrary: anyText },
    { weight: 2, arbitrary: fc.constantFrom(...NUMBERS) },
    { weight: 1, arbitrary: fc.integer().map(String) },
    { weight: 1, arbitrary: fc.double().map(String) },
    { weight: 2, arbitrary: fc.constantFrom(...DATES) },
    {
      weight: 1,
      arbitrary: fc
        .date({ noInvalidDate: false })
        .map((d) => (Number.isNaN(+d) ? "Invalid Date" : d.toISOString())),
    },
    { weight: 2, arbitrary: cursors },
  );
  return fc.tuple(value, fc.nat(5), fc.boolean(), value).map(([v, form, withOthers, second]): QueryCase => {
    const base: [string, string][] = withOthers ? others : [];
    // 0–2: the value alone; 3: the parameter twice; 4: empty; 5: named with no '='.
    if (form === 3) return { pairs: [...base, [param, v], [param, second]], label: "repeated" };
    if (form === 4) return { pairs: [...base, [param, ""]], label: "empty" };
    if (form === 5) return { pairs: [...base, [param, "\u0001bare"]], label: "bare" };
    return { pairs: [...base, [param, v]], label: withOthers ? "with valid others" : "alone" };
  });
}

function queryString(pairs: [string, string][]): string {
  return pairs
    .map(([k, v]) => {
      if (v === "\u0001bare") return encodeURIComponent(k);
      // Lone surrogates cannot be percent-encoded: send what a client's URL encoder would (U+FFFD).
      return `${encodeURIComponent(k)}=${encodeURIComponent(v.replace(/[\uD800-\uDFFF]/g, "\uFFFD"))}`;
    })
    .join("&");
}

beforeAll(async () => {
  t = await createTenant();
  // Something for every list to walk: a job with its events, usage from a finished run, audit rows.
  const pool = await createPool();
  const type = gpuTypeName("qf");
  await registerWorker(pool.joinToken, 1, type);
  const s = await submit(t.memberKey, { gpuType: type, labels: { team: "a" } });
  expect(s.status, s.text).toBe(201);
  jobId = (s.body as { id: string }).id;
  await flushTenant(t.id);
});

const QUERY_ROUTES = queryRoutes();

describe("query fuzzing", () => {
  it("has fuzz settings for every route with query parameters, and its valid values are valid", async () => {
    expect(QUERY_ROUTES.length).toBeGreaterThanOrEqual(4);
    const missing = QUERY_ROUTES.filter((r) => !ROUTES[r.key]).map((r) => r.key);
    expect(missing, `routes with a query schema but no settings in query-fuzz.test.ts`).toEqual([]);
    for (const r of QUERY_ROUTES) {
      const s = ROUTES[r.key]!;
      const res = await api("GET", `${r.path}?${queryString(Object.entries(s.valid()))}`, {
        token: s.token(),
      });
      expect(res.status, `${r.key} with its valid query: ${res.text}`).toBe(200);
    }
  });

  for (const r of QUERY_ROUTES) {
    for (const param of r.params) {
      it(`${r.key}: ${RUNS} hostile ?${param}=`, { timeout: 180_000 }, async () => {
        const s = ROUTES[r.key]!;
        await fc.assert(
          fc.asyncProperty(caseFor(param, s.valid()), async (c) => {
            const url = `${r.path}?${queryString(c.pairs)}`;
            const res = await api("GET", url, { token: s.token() });
            checkResponse(res, `GET ${url.slice(0, 300)} [${c.label}]`);
            if (res.status < 300) expect(res.headers.get("content-type")).toContain("application/json");
          }),
          { numRuns: RUNS },
        );
      });
    }
  }

  // Found by the properties above (each was a 500: Postgres has no year 0 and does not read "+275760-…").
  it("a time outside years 0001–9999 is a 400 naming the parameter, in a query or inside a cursor", async () => {
    const edge = (ms: number) => b64url(JSON.stringify([ms, "x"]));
    const cases: [string, string, string][] = [
      ["/v1/usage?from=0000-01-01T00:00:00Z", t.memberKey, "from"],
      ["/v1/usage?to=0000-12-31T23:59:59Z", t.memberKey, "to"],
      ["/v1/usage?to=0001-01-01T00:00:00%2B00:01", t.memberKey, "to"],
      ["/v1/audit?from=0000-01-01T00:00:00Z", ADMIN, "from"],
      ["/v1/audit?to=9999-12-31T23:59:59-00:01", ADMIN, "to"],
      [`/v1/audit?cursor=${edge(8.64e15)}`, ADMIN, "cursor"],
      [`/v1/jobs?cursor=${edge(-8.64e15)}`, t.memberKey, "cursor"],
      [`/v1/jobs?cursor=${edge(Date.parse("0000-06-01T00:00:00Z"))}`, t.memberKey, "cursor"],
    ];
    for (const [url, token, path] of cases) {
      const r = await api<{ code: string; errors: { path: string }[] }>("GET", url, { token });
      checkResponse(r, url);
      expect(r.status, `${url}: ${r.text}`).toBe(400);
      expect(r.body.code).toBe("ValidationFailed");
      // Named as the validator names query fields, whichever check refused it.
      expect(r.body.errors.map((e) => e.path)).toContain(`query.${path}`);
    }
    // The range's own ends are fine, and the usage window's default start never reaches before year 1.
    for (const url of [
      "/v1/usage?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z",
      "/v1/usage?to=0001-01-01T12:00:00Z",
    ]) {
      const r = await api("GET", url, { token: t.memberKey });
      expect(r.status, `${url}: ${r.text}`).toBe(200);
    }
    const audit = await api("GET", `/v1/audit?cursor=${edge(Date.parse("9999-12-31T23:59:59.999Z"))}`, {
      token: ADMIN,
    });
    expect(audit.status, audit.text).toBe(200);
  });

  it(`GET /v1/events: ${RUNS} hostile Last-Event-ID headers`, { timeout: 180_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyText, fc.constantFrom(...NUMBERS)), async (v) => {
        // What a header can carry: printable ASCII.
        const value = [...v].filter((ch) => ch >= " " && ch <= "~").join("");
        const res = await api("GET", "/v1/events?limit=5", {
          token: t.memberKey,
          headers: { "last-event-id": value },
        });
        checkResponse(res, `Last-Event-ID ${JSON.stringify(value.slice(0, 100))}`);
      }),
      { numRuns: RUNS },
    );
  });
});
