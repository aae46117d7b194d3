// Quotas (Kueue model): the platform admin sets them per tenant; tenants read their limits and live usage,
// check a request, and make manual allocations on the same ledger the scheduler uses.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { tenants } from "../db/schema.ts";
import { normalizeQuota, validateQuota } from "../src/domain/quota.ts";
import { GantryError, unwrap } from "../src/errors.ts";
import { pushCatalog } from "../src/lib/catalog-push.ts";
import { withDb } from "../src/lib/pg.ts";
import { tenantStub } from "../src/stubs.ts";
import { actorOf, allow, tenantOf, tenantRole } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { body, errorsWith, IdParam, json, Loose } from "./schemas.ts";
import { audit, bumpCatalog, requireTenant } from "./tenants.ts";
import { validationHook } from "./validation.ts";

export const quotasApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });
const member = tenantRole("member");

const QuotaEntry = z.strictObject({
  nominal: z.number().int().min(0).max(1_000_000),
  borrowingLimit: z.number().int().min(0).max(1_000_000).nullable().optional(),
  lendingLimit: z.number().int().min(0).max(1_000_000).nullable().optional(),
});
export const QuotaSpecSchema = z
  .strictObject({
    gpus: z
      .record(z.string().regex(/^(\*|[A-Za-z0-9][A-Za-z0-9._ -]{0,63})$/, "a GPU type or *"), QuotaEntry)
      .openapi({ example: { H100: { nominal: 8, borrowingLimit: 4 }, "*": { nominal: 2 } } }),
    maxConcurrentJobs: z.number().int().min(1).max(1_000_000).nullable().optional(),
    cohort: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/)
      .nullable()
      .optional(),
  })
  .openapi("Quota");

quotasApp.openapi(
  createRoute({
    method: "put",
    path: "/v1/tenants/{id}/quota",
    tags: ["quotas"],
    summary: "Set a tenant's quota (replaces the previous one; effective on the next scheduling decision)",
    middleware: [allow("admin")] as const,
    request: { params: IdParam("id", "vision"), body: body(QuotaSpecSchema) },
    responses: { 200: json(QuotaSpecSchema, "The quota as stored"), ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const q = c.req.valid("json");
    const errs = validateQuota({ ...q, gpus: q.gpus });
    if (errs.length) {
      throw new GantryError(
        "ValidationFailed",
        errs.join("; "),
        errs.map((m) => ({ path: "gpus", message: m })),
      );
    }
    const stored = normalizeQuota(q);
    await withDb(c.env, async (db) => {
      await db.transaction(async (tx) => {
        await requireTenant(tx, id);
        await tx.update(tenants).set({ quota: stored }).where(eq(tenants.id, id));
        await bumpCatalog(tx, id);
        await audit(tx, c, "quota.set", id, id, stored);
      });
      await pushCatalog(c.env, id, db);
    });
    return c.json(stored as z.infer<typeof QuotaSpecSchema>, 200);
  },
);

quotasApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/tenants/{id}/quota",
    tags: ["quotas"],
    summary: "Remove a tenant's quota (unlimited)",
    middleware: [allow("admin")] as const,
    request: { params: IdParam("id", "vision") },
    responses: { 204: { description: "Removed" }, ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    await withDb(c.env, async (db) => {
      await db.transaction(async (tx) => {
        await requireTenant(tx, id);
        await tx.update(tenants).set({ quota: null }).where(eq(tenants.id, id));
        await bumpCatalog(tx, id);
        await audit(tx, c, "quota.remove", id, id);
      });
      await pushCatalog(c.env, id, db);
    });
    return c.body(null, 204);
  },
);

quotasApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/quota",
    tags: ["quotas"],
    summary: "The tenant's quota and live usage (scheduled + running jobs and manual allocations)",
    middleware: [member] as const,
    responses: { 200: json(Loose.openapi("QuotaStatus"), "Quota and usage"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    return c.json(
      unwrap(await tenantStub(c.env, who.tenantId).quota()).value as Record<string, unknown>,
      200,
    );
  },
);

const GpuRequest = z.strictObject({
  gpus: z.number().int().min(1).max(1_000_000),
  gpuType: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/)
    .optional(),
});

quotasApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/quota/check",
    tags: ["quotas"],
    summary: "Would this many GPUs fit the tenant's quota now? (at exactly the limit: yes)",
    middleware: [member] as const,
    request: { body: body(GpuRequest) },
    responses: {
      200: json(z.object({ fits: z.boolean(), reason: z.string().optional() }), "Verdict"),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const who = tenantOf(c);
    const q = c.req.valid("json");
    return c.json(
      unwrap(await tenantStub(c.env, who.tenantId).quotaCheck(q.gpus, q.gpuType ?? null)).value,
      200,
    );
  },
);

quotasApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/quota/allocations",
    tags: ["quotas"],
    summary: "Reserve GPUs of the tenant's quota by hand (same ledger as scheduled jobs)",
    middleware: [member] as const,
    request: { body: body(GpuRequest.extend({ note: z.string().max(500).optional() })) },
    responses: {
      201: json(z.object({ id: z.string() }), "Allocated"),
      ...errorsWith([409, "Does not fit the quota"]),
    },
  }),
  async (c) => {
    const who = tenantOf(c);
    const q = c.req.valid("json");
    const r = unwrap(
      await tenantStub(c.env, who.tenantId).allocate(
        q.gpus,
        q.gpuType ?? null,
        q.note ?? null,
        actorOf(c),
        c.get("requestId"),
      ),
    );
    return c.json({ id: r.id }, 201);
  },
);

quotasApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/quota/allocations/{id}",
    tags: ["quotas"],
    summary: "Release a manual allocation",
    middleware: [member] as const,
    request: { params: IdParam("id", "alloc_01jd9r2v6m3x4c5b6n7p8q9r0s") },
    responses: { 204: { description: "Released" }, ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    unwrap(await tenantStub(c.env, who.tenantId).deallocate(id, actorOf(c), c.get("requestId")));
    return c.body(null, 204);
  },
);
