// The dashboard: one HTML page at `/` with its stylesheet and ES modules under /ui/. All public (the page
// asks for a key and keeps it in sessionStorage; every API call it makes carries it), declared like every
// other route so they appear in /openapi.json.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { etag } from "hono/etag";
import { PAGE_HTML, SCRIPT_NAMES, SCRIPTS, STYLESHEET } from "./dashboard/assets.ts";
import { ASSET_HEADERS, PAGE_HEADERS } from "./dashboard/security.ts";
import type { HonoEnv } from "./hono-env.ts";
import { Problem } from "./schemas.ts";
import { validationHook } from "./validation.ts";

export const dashboardApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });

const text = (type: string, description: string) => ({
  description,
  content: { [type]: { schema: z.string() } },
});

dashboardApp.openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["dashboard"],
    summary: "The dashboard (sign in with a tenant API key or the platform admin token)",
    security: [],
    responses: { 200: text("text/html", "HTML page") },
  }),
  (c) => c.body(PAGE_HTML, 200, { "content-type": "text/html; charset=utf-8", ...PAGE_HEADERS }),
);

dashboardApp.openapi(
  createRoute({
    method: "get",
    path: "/ui/dashboard.css",
    tags: ["dashboard"],
    summary: "The dashboard's stylesheet",
    security: [],
    middleware: [etag()] as const,
    responses: { 200: text("text/css", "Stylesheet") },
  }),
  (c) => c.body(STYLESHEET, 200, { "content-type": "text/css; charset=utf-8", ...ASSET_HEADERS }),
);

dashboardApp.openapi(
  createRoute({
    method: "get",
    path: "/ui/js/{file}",
    tags: ["dashboard"],
    summary: "One of the dashboard's ES modules",
    security: [],
    middleware: [etag()] as const,
    request: {
      // An enum: an unknown name fails validation, which answers 404 for path parameters.
      params: z.object({ file: z.enum(SCRIPT_NAMES).openapi({ param: { name: "file", in: "path" } }) }),
    },
    responses: {
      200: text("text/javascript", "ES module"),
      404: { description: "No such module", content: { "application/problem+json": { schema: Problem } } },
    },
  }),
  (c) =>
    c.body(SCRIPTS[c.req.valid("param").file], 200, {
      "content-type": "text/javascript; charset=utf-8",
      ...ASSET_HEADERS,
    }),
);
