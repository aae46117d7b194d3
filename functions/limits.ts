// Per-tenant rate limits (token buckets kept in the tenant's Durable Object). The platform admin sets them;
// the tenant's own admin key may read them. Stored in Postgres (`tenants.limits`) and pushed into the
// tenant's object with the rest of its catalog, like the quota, so the hot paths never read Postgres.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { tenants } from "../db/schema.ts";
import type { RateLimits } from "../src/do/tenant/catalog.ts";
import { GantryError } from "../src/errors.ts";
import { pushCatalog } from "../src/lib/catalog-push.ts";
import { withDb } from "../src/lib/pg.ts";
import { allow, tenantReadLimit } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { body, errorsWith, IdParam, json } from "./schemas.ts";
import { audit, bumpCatalog, requireTenant } from "./tenants.ts";
import { validationHook } from "./validation.ts";

export const limitsApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });

// Bounds keep Retry-After a finite integer (burst / rate ≤ 10^7 s) and the bucket arithmetic exact enough:
// at least one request per 100 s, at most 100,000 per second.
const rate = z
  .number()
  .min(0.01)
  .max(100_000)
  .nullable()
  .optional()
  .openapi({ description: "Requests per second (refill rate); null or absent: unlimited" });
const burst = z
  .number()
  .int()
  .min(1)
  .max(100_000)
  .nullable()
  .optional()
  .openapi({ description: "Bucket size (requests saved up); default: the rate rounded up, at least 1" });

const LimitsIn = z
  .strictObject({
    submitPerSecond: rate,
    submitBurst: burst,
    readPerSecond: rate,
    readBurst: burst,
  })
  .openapi("RateLimitsInput", {
    example: { submitPerSecond: 10, submitBurst: 50, readPerSecond: 100 },
  });

const LimitsOut = z
  .object({
    tenantId: z.string(),
    submitPerSecond: z.number().nullable(),
    submitBurst: z.number().int().nullable(),
    readPerSecond: z.number().nullable(),
    readBurst: z.number().int().nullable(),
  })
  .openapi("RateLimits");

type Stored = Required<{ [K in keyof RateLimits]: number | null }>;

/** Every field present (null = unlimited), or null when nothing is limited at all. */
function normalize(input: z.infer<typeof LimitsIn>): Stored | null {
  const s: Stored = {
    submitPerSecond: input.submitPerSecond ?? null,
    submitBurst: input.submitBurst ?? null,
    readPerSecond: input.readPerSecond ?? null,
    readBurst: input.readBurst ?? null,
  };
  return Object.values(s).every((v) => v === null) ? null : s;
}

const view = (tenantId: string, stored: unknown): z.infer<typeof LimitsOut> => {
  const l = (stored ?? {}) as RateLimits;
  return {
    tenantId,
    submitPerSecond: l.submitPerSecond ?? null,
    submitBurst: l.submitBurst ?? null,
    readPerSecond: l.readPerSecond ?? null,
    readBurst: l.readBurst ?? null,
  };
};

/** The platform admin, or an admin key of this very tenant; another tenant's key gets 404, not 403. */
function assertReader(c: Context<HonoEnv>, tenantId: string): void {
  const p = c.get("principal")!;
  if (p.kind === "admin") return;
  if (p.kind === "tenant" && p.tenantId === tenantId) {
    if (p.role !== "admin")
      throw new GantryError("Forbidden", "reading limits needs a tenant key with role admin");
    return;
  }
  throw new GantryError("NotFound", `no tenant ${tenantId}`);
}

limitsApp.openapi(
  createRoute({
    method: "put",
    path: "/v1/tenants/{id}/limits",
    tags: ["tenancy"],
    summary: "Set a tenant's rate limits (replaces the previous ones; absent or null fields are unlimited)",
    middleware: [allow("admin")] as const,
    request: { params: IdParam("id", "vision"), body: body(LimitsIn) },
    responses: { 200: json(LimitsOut, "The limits as stored"), ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const input = c.req.valid("json");
    // A burst without a rate would be silently ignored by the bucket: refuse it rather than mislead.
    const orphan = (["submit", "read"] as const).filter(
      (k) => input[`${k}Burst`] != null && input[`${k}PerSecond`] == null,
    );
    if (orphan.length) {
      throw new GantryError(
        "ValidationFailed",
        orphan.map((k) => `${k}Burst needs ${k}PerSecond`).join("; "),
        orphan.map((k) => ({ path: `${k}Burst`, message: `needs ${k}PerSecond` })),
      );
    }
    const stored = normalize(input);
    await withDb(c.env, async (db) => {
      await db.transaction(async (tx) => {
        await requireTenant(tx, id);
        await tx.update(tenants).set({ limits: stored }).where(eq(tenants.id, id));
        await bumpCatalog(tx, id);
        await audit(tx, c, "limits.set", id, id, stored);
      });
      // After the commit, like every catalog change; a failed push is retried by the cron tick.
      await pushCatalog(c.env, id, db);
    });
    return c.json(view(id, stored), 200);
  },
);

limitsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/tenants/{id}/limits",
    tags: ["tenancy"],
    summary: "A tenant's rate limits (platform admin, or the tenant's own admin key)",
    middleware: [allow("admin", "tenant"), tenantReadLimit] as const,
    request: { params: IdParam("id", "vision") },
    responses: { 200: json(LimitsOut, "The limits (null fields: unlimited)"), ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    assertReader(c, id);
    const t = await withDb(c.env, (db) => requireTenant(db, id));
    return c.json(view(id, t.limits), 200);
  },
);
