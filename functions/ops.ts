// Operations: health, the OpenAPI document and its interactive reference (served from the npm package, no
// CDN), and Prometheus metrics for the platform admin.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { config } from "../src/env.ts";
import { allow } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { collectMetrics } from "./metrics.ts";
import { errorsWith, json } from "./schemas.ts";
import { validationHook } from "./validation.ts";
import swaggerCss from "./vendor/swagger-ui.css.txt";
import swaggerJs from "./vendor/swagger-ui-bundle.js.txt";

export const VERSION = "0.1.0";
export const opsApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });

opsApp.openapi(
  createRoute({
    method: "get",
    path: "/healthz",
    tags: ["ops"],
    summary: "Liveness and configuration check (no token)",
    security: [], // public: overrides the document-wide bearer requirement
    responses: {
      200: json(z.object({ status: z.literal("ok"), version: z.string(), time: z.string() }), "Healthy"),
      503: json(
        z.object({ status: z.literal("misconfigured"), detail: z.string() }),
        "Configuration refused",
      ),
    },
  }),
  (c) => {
    try {
      config(c.env);
    } catch (e) {
      return c.json({ status: "misconfigured" as const, detail: String((e as Error).message) }, 503);
    }
    return c.json({ status: "ok" as const, version: VERSION, time: new Date().toISOString() }, 200);
  },
);

opsApp.openapi(
  createRoute({
    method: "get",
    path: "/metrics",
    tags: ["ops"],
    summary: "Prometheus metrics (platform admin)",
    middleware: [allow("admin")] as const,
    responses: {
      200: { description: "Prometheus text format", content: { "text/plain": { schema: z.string() } } },
      ...errorsWith(),
    },
  }),
  async (c) => c.text(await collectMetrics(c.env), 200, { "content-type": "text/plain; version=0.0.4" }),
);

// validatorUrl: null — Swagger UI otherwise sends the document's URL to validator.swagger.io for a badge,
// an outside call that fails offline and leaks where the API lives.
opsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/whoami",
    tags: ["ops"],
    summary: "Who the presented token is: its kind, and its tenant and role or its worker",
    middleware: [allow("admin", "tenant", "worker", "join")] as const,
    responses: {
      200: json(
        z.object({
          kind: z.enum(["admin", "tenant", "worker", "join"]),
          tenantId: z.string().optional(),
          role: z.enum(["admin", "member"]).optional(),
          name: z.string().optional(),
          keyId: z.string().optional(),
          workerId: z.string().optional(),
          poolId: z.string().optional(),
        }),
        "The caller",
      ),
      ...errorsWith(),
    },
  }),
  (c) => {
    const p = c.get("principal")!;
    switch (p.kind) {
      case "admin":
        return c.json({ kind: p.kind }, 200);
      case "tenant":
        return c.json(
          { kind: p.kind, tenantId: p.tenantId, role: p.role, name: p.name, keyId: p.keyId },
          200,
        );
      case "worker":
        return c.json({ kind: p.kind, workerId: p.workerId }, 200);
      case "join":
        return c.json({ kind: p.kind, poolId: p.poolId }, 200);
    }
  },
);

const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gantry API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  persistAuthorization: true, tryItOutEnabled: true, validatorUrl: null });</script>
</body></html>`;

opsApp.openapi(
  createRoute({
    method: "get",
    path: "/docs",
    tags: ["ops"],
    summary: "Interactive API reference (works offline)",
    security: [],
    responses: { 200: { description: "HTML page", content: { "text/html": { schema: z.string() } } } },
  }),
  (c) => c.html(DOCS_HTML, 200),
);

const ASSET_CACHE = "public, max-age=86400";
opsApp.get("/docs/swagger-ui.css", (c) =>
  c.body(swaggerCss, 200, { "content-type": "text/css", "cache-control": ASSET_CACHE }),
);
opsApp.get("/docs/swagger-ui-bundle.js", (c) =>
  c.body(swaggerJs, 200, { "content-type": "text/javascript", "cache-control": ASSET_CACHE }),
);
