// /openapi.json as the Worker serves it: a valid OpenAPI 3.1 document (checked by a validator made for
// OpenAPI, against the official 3.1 JSON Schema, including that every $ref resolves), covering every route
// the app serves; and /docs, an interactive reference whose scripts and styles come from the Worker itself.
import { Validator } from "@seriousme/openapi-schema-validator";
import schema31 from "@seriousme/openapi-schema-validator/schemas/v3.1/schema.json";
import { describe, expect, it, vi } from "vitest";
import { app } from "../../functions/app.ts";
import { api } from "./helpers.ts";

// The validator reads its bundled JSON Schema with fs.readFileSync next to its own module; workerd has no
// host filesystem, so that one file is served from the same package (imported as a JSON module). Every
// other read goes to the real implementation, and the validation itself is the library's own code.
vi.mock("node:fs", async (importOriginal) => {
  type Fs = { readFileSync: (...args: unknown[]) => unknown };
  const fs = await importOriginal<Fs>();
  const readFileSync = (path: unknown, ...rest: unknown[]) =>
    String(path).endsWith("/schemas/v3.1/schema.json")
      ? JSON.stringify(schema31)
      : fs.readFileSync(path, ...rest);
  return { ...fs, readFileSync, default: { ...fs, readFileSync } };
});

interface Operation {
  parameters?: { name: string; in: string; required?: boolean }[];
  requestBody?: { content: Record<string, unknown> };
  responses: Record<string, { content?: Record<string, unknown> }>;
  security?: unknown[];
}
type Doc = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  security?: unknown[];
  components?: { securitySchemes?: Record<string, unknown> };
};

/** Routes that are not API operations: the document itself and the reference page's static assets. */
const NOT_OPERATIONS = new Set([
  "GET /openapi.json",
  "GET /docs/swagger-ui.css",
  "GET /docs/swagger-ui-bundle.js",
]);
/** The only operations that may be declared public (security: []): health, the reference, the dashboard. */
const MAY_BE_PUBLIC = new Set([
  "GET /healthz",
  "GET /docs",
  "GET /",
  "GET /ui/dashboard.css",
  "GET /ui/js/{file}",
]);
const isPublic = (op: Operation) => Array.isArray(op.security) && op.security.length === 0;

function appRoutes(): string[] {
  const seen = new Set<string>();
  for (const r of app.routes) {
    if (r.method !== "ALL") seen.add(`${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
  }
  return [...seen];
}

async function document(): Promise<Doc> {
  const r = await api<Doc>("GET", "/openapi.json");
  expect(r.status, r.text).toBe(200);
  expect(r.headers.get("content-type")).toContain("application/json");
  return r.body;
}

function operations(doc: Doc): [string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op] as [string, Operation]),
  );
}

describe("OpenAPI document", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const doc = await document();
    expect(doc.openapi).toBe("3.1.0");
    const result = await new Validator().validate(doc as never);
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)?.slice(0, 4000)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("the validator is not a rubber stamp: a broken document is refused", async () => {
    const doc = structuredClone(await document());
    (doc.paths["/healthz"]!.get as unknown as { responses: unknown }).responses = "none";
    expect((await new Validator().validate(doc as never)).valid).toBe(false);
    const dangling = structuredClone(await document());
    dangling.paths["/healthz"]!.get!.responses["200"] = { $ref: "#/components/responses/Missing" } as never;
    expect((await new Validator().validate(dangling as never)).valid).toBe(false);
  });

  it("covers every route the app serves, and documents nothing it does not serve", async () => {
    const doc = await document();
    const documented = new Set(operations(doc).map(([k]) => k));
    const served = appRoutes().filter((r) => !NOT_OPERATIONS.has(r));
    const undocumented = served.filter((r) => !documented.has(r));
    expect(undocumented, `routes missing from /openapi.json: ${undocumented.join(", ")}`).toEqual([]);
    const phantom = [...documented].filter((r) => !served.includes(r));
    expect(phantom, `documented but not served: ${phantom.join(", ")}`).toEqual([]);
  });

  it("declares every path parameter, and the error responses each kind of route can give", async () => {
    const doc = await document();
    expect(doc.components?.securitySchemes?.bearer).toBeTruthy();
    expect(doc.security).toEqual([{ bearer: [] }]);
    const issues: string[] = [];
    for (const [key, op] of operations(doc)) {
      const path = key.slice(key.indexOf(" ") + 1);
      for (const name of [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!)) {
        const p = op.parameters?.find((x) => x.in === "path" && x.name === name);
        if (!p?.required) issues.push(`${key}: path parameter ${name} not declared as required`);
      }
      if (isPublic(op)) {
        if (!MAY_BE_PUBLIC.has(key))
          issues.push(`${key}: declared public (security: []) but must need a token`);
        continue;
      }
      if (op.security !== undefined) issues.push(`${key}: guarded routes use the document's bearer security`);
      for (const status of ["401", "403", "404", "429"]) {
        const content = op.responses[status]?.content;
        if (!content?.["application/problem+json"])
          issues.push(`${key}: no ${status} application/problem+json response`);
      }
      if (op.requestBody) {
        if (!op.requestBody.content["application/json"]) issues.push(`${key}: body is not application/json`);
        for (const status of ["400", "413"]) {
          if (!op.responses[status]) issues.push(`${key}: has a body but no ${status} response`);
        }
      }
    }
    expect(issues).toEqual([]);
  });

  it("documents the submit route's optional Idempotency-Key header with its rules", async () => {
    type Ref = { $ref: string };
    const doc = (await document()) as Doc & {
      components: { parameters: Record<string, unknown>; schemas: Record<string, unknown> };
    };
    const deref = (x: unknown, where: Record<string, unknown>) =>
      where[(x as Ref).$ref.slice((x as Ref).$ref.lastIndexOf("/") + 1)];
    const ref = (doc.paths["/v1/jobs"]!.post!.parameters as unknown as Ref[])[0];
    const p = deref(ref, doc.components.parameters) as { schema: Ref };
    expect(p).toMatchObject({ name: "Idempotency-Key", in: "header", required: false });
    expect(deref(p.schema, doc.components.schemas)).toMatchObject({
      type: "string",
      minLength: 1,
      maxLength: 255,
    });
  });
});

describe("the document and the Worker agree", () => {
  it("on authentication: public operations answer without a token, every other one is 401", async () => {
    const doc = await document();
    const wrong: string[] = [];
    for (const [key, op] of operations(doc)) {
      const method = key.slice(0, key.indexOf(" "));
      const path = key.slice(key.indexOf(" ") + 1).replace(/\{\w+\}/g, "x");
      const r = await api(method, path, method === "GET" ? {} : { body: {} });
      if (isPublic(op) ? r.status === 401 : r.status !== 401) wrong.push(`${key}: ${r.status}`);
    }
    expect(wrong, "documented security differs from the Worker's").toEqual([]);
  });
});

describe("/docs", () => {
  it("serves an HTML reference whose scripts and styles all load from the Worker (no CDN)", async () => {
    const page = await api("GET", "/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = page.text;
    const refs = [...html.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']/gi)].map(
      (m) => m[1]!,
    );
    expect(refs.length).toBeGreaterThanOrEqual(2);
    // Nothing absolute or protocol-relative anywhere in the page: every asset is one of ours.
    expect(html).not.toMatch(/(?:src|href)\s*=\s*["'](?:[a-z]+:)?\/\//i);
    expect(html).not.toMatch(/\b(?:unpkg|jsdelivr|cdnjs|googleapis)\b/i);
    let sawScript = false;
    let sawCss = false;
    for (const ref of refs) {
      expect(ref.startsWith("/"), ref).toBe(true);
      const asset = await api("GET", ref);
      expect(asset.status, ref).toBe(200);
      const type = asset.headers.get("content-type") ?? "";
      if (type.includes("javascript")) sawScript = asset.text.includes("SwaggerUIBundle");
      if (type.includes("text/css")) sawCss = asset.text.length > 1000;
    }
    expect(sawScript, "the Swagger UI bundle is served by the Worker").toBe(true);
    expect(sawCss, "the Swagger UI stylesheet is served by the Worker").toBe(true);
    // The page reads the document from the same Worker, and does not ask swagger.io to validate it.
    expect(html).toContain('url: "/openapi.json"');
    expect(html).toContain("validatorUrl: null");
  });
});
