// The Worker's HTTP surface: gateway middleware, then one sub-app per service. Every route is declared
// with @hono/zod-openapi, so /openapi.json is generated from the same schemas that validate requests.
import { OpenAPIHono } from "@hono/zod-openapi";
import { auditApp } from "./audit.ts";
import { dashboardApp } from "./dashboard.ts";
import { eventsApp } from "./events.ts";
import { authenticate, corsFromEnv, limitBody, requestId } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { jobsApp } from "./jobs.ts";
import { limitsApp } from "./limits.ts";
import { opsApp, VERSION } from "./ops.ts";
import { pipelinesApp } from "./pipelines.ts";
import { policiesApp } from "./policies.ts";
import { poolsApp } from "./pools.ts";
import { onError, problem } from "./problem.ts";
import { quotasApp } from "./quotas.ts";
import { MemoRouter } from "./router.ts";
import { tenantsApp } from "./tenants.ts";
import { usageApp } from "./usage.ts";
import { validationHook } from "./validation.ts";
import { workersApp } from "./workers.ts";

export const app = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook, router: new MemoRouter() });

/** Agent reports carry output tails and get their own larger limits (functions/workers.ts). */
const REPORT_PATH = /^\/v1\/workers\/[^/]+\/(heartbeat|jobs\/[^/]+\/status)$/;

app.use("*", requestId);
app.use("*", corsFromEnv);
app.use("*", async (c, next) => (REPORT_PATH.test(c.req.path) ? next() : limitBody(c, next)));
app.use("*", authenticate);

app.route("/", opsApp);
app.route("/", dashboardApp);
app.route("/", tenantsApp);
app.route("/", quotasApp);
app.route("/", usageApp);
app.route("/", limitsApp);
app.route("/", policiesApp);
app.route("/", jobsApp);
app.route("/", poolsApp);
app.route("/", workersApp);
app.route("/", eventsApp);
app.route("/", pipelinesApp);
app.route("/", auditApp);

app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
  type: "http",
  scheme: "bearer",
  description: "Platform admin token, tenant API key (gtk_…), worker token (gwk_…) or join token (gjt_…)",
});

export const OPENAPI_CONFIG = {
  openapi: "3.1.0",
  info: {
    title: "Gantry API",
    version: VERSION,
    description:
      "Multi-tenant GPU job control plane. Errors are RFC 9457 application/problem+json with a stable `code`.",
  },
  security: [{ bearer: [] }],
};

app.doc31("/openapi.json", OPENAPI_CONFIG);

app.notFound((c) => problem(c, "NotFound", `no route ${c.req.method} ${c.req.path}`));
app.onError(onError);
