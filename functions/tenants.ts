// Tenancy (platform admin): tenants and their API keys. Tenant admins may manage their own tenant's keys.
// Catalog changes commit in Postgres (with their audit row) and are then pushed to the tenant's object.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import type { Context } from "hono";
import { apiKeys, auditLog, tenants } from "../db/schema.ts";
import { makeToken, newId, sha256Hex } from "../src/domain/ids.ts";
import { GantryError } from "../src/errors.ts";
import { pushCatalog } from "../src/lib/catalog-push.ts";
import { type Q, withDb } from "../src/lib/pg.ts";
import { actorOf, allow, knownTenants } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { body, errorsWith, IdParam, json, TenantId } from "./schemas.ts";
import { validationHook } from "./validation.ts";

export const tenantsApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });
const admin = allow("admin");
/** The platform admin, or a tenant admin acting on its own tenant (another tenant's id is a 404). */
const adminOrOwnTenantAdmin = allow("admin", "tenant");

function assertOwnTenant(c: Context<HonoEnv>, tenantId: string): void {
  const p = c.get("principal")!;
  if (p.kind === "admin") return;
  if (p.kind === "tenant" && p.tenantId === tenantId) {
    if (p.role !== "admin")
      throw new GantryError("Forbidden", "managing keys needs a tenant key with role admin");
    return;
  }
  throw new GantryError("NotFound", `no tenant ${tenantId}`);
}

export const Tenant = z
  .object({
    id: z.string(),
    name: z.string(),
    weight: z.number(),
    quota: z.unknown(),
    limits: z.unknown(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Tenant");

const tenantView = (t: typeof tenants.$inferSelect) => ({
  id: t.id,
  name: t.name,
  weight: t.weight,
  quota: t.quota ?? null,
  limits: t.limits ?? null,
  createdAt: t.createdAt.toISOString(),
  updatedAt: t.updatedAt.toISOString(),
});

export async function audit(
  db: Q,
  c: Context<HonoEnv>,
  action: string,
  tenantId: string | null,
  target: string | null,
  detail: unknown = null,
): Promise<void> {
  await db.insert(auditLog).values({
    // Never derived from the request id: clients may send (and reuse) their own X-Request-Id, and two
    // calls sharing one must still leave two rows.
    id: newId("aud"),
    at: new Date(),
    actor: actorOf(c),
    tenantId,
    action,
    target,
    requestId: c.get("requestId"),
    detail,
  });
}

/** Bump the catalog revision the tenant's object must apply (inside the caller's transaction). */
export async function bumpCatalog(db: Q, tenantId: string): Promise<void> {
  await db
    .update(tenants)
    .set({ catalogRev: sql`${tenants.catalogRev} + 1`, updatedAt: new Date() })
    .where(eq(tenants.id, tenantId));
}

export async function requireTenant(db: Q, id: string) {
  const [t] = await db.select().from(tenants).where(eq(tenants.id, id));
  if (!t) throw new GantryError("NotFound", `no tenant ${id}`);
  return t;
}

tenantsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/tenants",
    tags: ["tenancy"],
    summary: "Create a tenant",
    middleware: [admin] as const,
    request: {
      body: body(
        z.strictObject({
          id: TenantId,
          name: z.string().min(1).max(200).optional(),
          weight: z.number().gt(0).max(10_000).default(1).openapi({ description: "Fair-share weight" }),
        }),
      ),
    },
    responses: { 201: json(Tenant, "Created"), ...errorsWith([409, "A tenant with this id exists"]) },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const row = await withDb(c.env, async (db) => {
      const created = await db.transaction(async (tx) => {
        const [t] = await tx
          .insert(tenants)
          .values({ id: input.id, name: input.name ?? input.id, weight: input.weight })
          .onConflictDoNothing()
          .returning();
        if (!t) throw new GantryError("AlreadyExists", `tenant ${input.id} already exists`);
        await audit(tx, c, "tenant.create", t.id, t.id, { weight: t.weight });
        return t;
      });
      await pushCatalog(c.env, created.id, db);
      return created;
    });
    knownTenants.add(row.id);
    c.header("location", `/v1/tenants/${row.id}`);
    return c.json(tenantView(row), 201);
  },
);

tenantsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/tenants",
    tags: ["tenancy"],
    summary: "List tenants",
    middleware: [admin] as const,
    responses: { 200: json(z.object({ items: z.array(Tenant) }), "All tenants"), ...errorsWith() },
  }),
  async (c) => {
    const rows = await withDb(c.env, (db) => db.select().from(tenants).orderBy(asc(tenants.id)));
    return c.json({ items: rows.map(tenantView) }, 200);
  },
);

tenantsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/tenants/{id}",
    tags: ["tenancy"],
    summary: "Show a tenant",
    middleware: [adminOrOwnTenantAdmin] as const,
    request: { params: IdParam("id", "vision") },
    responses: { 200: json(Tenant, "The tenant"), ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    assertOwnTenant(c, id);
    const t = await withDb(c.env, (db) => requireTenant(db, id));
    return c.json(tenantView(t), 200);
  },
);

tenantsApp.openapi(
  createRoute({
    method: "patch",
    path: "/v1/tenants/{id}",
    tags: ["tenancy"],
    summary: "Change a tenant's name or fair-share weight",
    middleware: [admin] as const,
    request: {
      params: IdParam("id", "vision"),
      body: body(
        z.strictObject({
          name: z.string().min(1).max(200).optional(),
          weight: z.number().gt(0).max(10_000).optional(),
        }),
      ),
    },
    responses: { 200: json(Tenant, "Updated"), ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const input = c.req.valid("json");
    const t = await withDb(c.env, async (db) => {
      const updated = await db.transaction(async (tx) => {
        await requireTenant(tx, id);
        const [u] = await tx
          .update(tenants)
          .set({ ...input, catalogRev: sql`${tenants.catalogRev} + 1`, updatedAt: new Date() })
          .where(eq(tenants.id, id))
          .returning();
        await audit(tx, c, "tenant.update", id, id, input);
        return u!;
      });
      await pushCatalog(c.env, id, db);
      return updated;
    });
    return c.json(tenantView(t), 200);
  },
);

const KeyInfo = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    role: z.enum(["admin", "member"]),
    prefix: z.string(),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi("ApiKey");

const keyView = (k: typeof apiKeys.$inferSelect) => ({
  id: k.id,
  tenantId: k.tenantId,
  name: k.name,
  role: k.role as "admin" | "member",
  prefix: k.prefix,
  createdAt: k.createdAt.toISOString(),
  revokedAt: k.revokedAt?.toISOString() ?? null,
});

tenantsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/tenants/{id}/keys",
    tags: ["tenancy"],
    summary: "Create an API key (the key is shown once, only its SHA-256 is stored)",
    middleware: [adminOrOwnTenantAdmin] as const,
    request: {
      params: IdParam("id", "vision"),
      body: body(
        z.strictObject({
          name: z
            .string()
            .min(1)
            .max(128)
            .regex(
              /^[A-Za-z0-9][A-Za-z0-9._@-]*$/,
              "key names: letters, digits, . _ @ - (used as the default job user)",
            ),
          role: z.enum(["admin", "member"]).default("member"),
        }),
      ),
    },
    responses: {
      201: json(KeyInfo.extend({ key: z.string() }), "Created; store the key now"),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    assertOwnTenant(c, id);
    const input = c.req.valid("json");
    const key = makeToken("tenant", id);
    const row = await withDb(c.env, async (db) => {
      const created = await db.transaction(async (tx) => {
        await requireTenant(tx, id);
        const [k] = await tx
          .insert(apiKeys)
          .values({
            id: newId("key"),
            tenantId: id,
            name: input.name,
            role: input.role,
            hash: await sha256Hex(key),
            prefix: key.slice(0, key.lastIndexOf("_") + 5),
          })
          .returning();
        await bumpCatalog(tx, id);
        await audit(tx, c, "key.create", id, k!.id, { name: input.name, role: input.role });
        return k!;
      });
      await pushCatalog(c.env, id, db);
      return created;
    });
    return c.json({ ...keyView(row), key }, 201);
  },
);

tenantsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/tenants/{id}/keys",
    tags: ["tenancy"],
    summary: "List a tenant's API keys (never the keys themselves)",
    middleware: [adminOrOwnTenantAdmin] as const,
    request: { params: IdParam("id", "vision") },
    responses: { 200: json(z.object({ items: z.array(KeyInfo) }), "Keys"), ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    assertOwnTenant(c, id);
    const rows = await withDb(c.env, async (db) => {
      await requireTenant(db, id);
      return db.select().from(apiKeys).where(eq(apiKeys.tenantId, id)).orderBy(asc(apiKeys.createdAt));
    });
    return c.json({ items: rows.map(keyView) }, 200);
  },
);

tenantsApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/tenants/{id}/keys/{keyId}",
    tags: ["tenancy"],
    summary: "Revoke an API key (effective everywhere within seconds)",
    middleware: [adminOrOwnTenantAdmin] as const,
    request: {
      params: z.object({
        id: z
          .string()
          .max(200)
          .openapi({ param: { name: "id", in: "path" } }),
        keyId: z
          .string()
          .max(200)
          .openapi({ param: { name: "keyId", in: "path" } }),
      }),
    },
    responses: { 204: { description: "Revoked" }, ...errorsWith() },
  }),
  async (c) => {
    const { id, keyId } = c.req.valid("param");
    assertOwnTenant(c, id);
    await withDb(c.env, async (db) => {
      await db.transaction(async (tx) => {
        const [k] = await tx
          .update(apiKeys)
          .set({ revokedAt: new Date() })
          .where(and(eq(apiKeys.id, keyId), eq(apiKeys.tenantId, id), isNull(apiKeys.revokedAt)))
          .returning();
        if (!k) throw new GantryError("NotFound", `no active key ${keyId} in tenant ${id}`);
        await bumpCatalog(tx, id);
        await audit(tx, c, "key.revoke", id, keyId);
      });
      await pushCatalog(c.env, id, db);
    });
    return c.body(null, 204);
  },
);
