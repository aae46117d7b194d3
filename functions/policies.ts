// Admission policies (CEL). Tenant admins manage their tenant's policies; the platform admin manages global
// ones. Every change is a new version (policy_versions); jobs record the versions that admitted them.
// Expressions are compiled when written (a bad one is a 400 naming the position) and the tenant objects'
// caches are refreshed before the call returns, so a change applies to the next submission.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { and, asc, eq, isNull, or, sql } from "drizzle-orm";
import type { Context } from "hono";
import { policies, policyVersions, tenants } from "../db/schema.ts";
import { newId } from "../src/domain/ids.ts";
import {
  compilePolicy,
  evaluatePolicies,
  POLICY_EXPRESSION_MAX_LENGTH,
  type PolicyDef,
} from "../src/domain/policy.ts";
import { GantryError, unwrap } from "../src/errors.ts";
import { pushCatalog } from "../src/lib/catalog-push.ts";
import { type Q, withDb } from "../src/lib/pg.ts";
import { tenantStub } from "../src/stubs.ts";
import { allow, tenantReadLimit } from "./gateway.ts";
import type { HonoEnv, Principal } from "./hono-env.ts";
import { body, errorsWith, IdParam, JobSubmit, json, toSubmitJob } from "./schemas.ts";
import { audit } from "./tenants.ts";
import { validationHook } from "./validation.ts";

export const policiesApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });
/** Tenant keys read and dry-run; writes need a tenant admin key or (global scope) the platform admin. */
const readers = allow("admin", "tenant");

const PolicyIn = z.strictObject({
  name: z.string().min(1).max(128),
  expression: z.string().min(1).max(POLICY_EXPRESSION_MAX_LENGTH).openapi({
    example: "job.gpus > 8",
    description: "CEL over job, tenant and now; the policy matches when true",
  }),
  effect: z.enum(["deny", "warn"]),
  message: z.string().max(1024).nullable().optional(),
  messageExpression: z
    .string()
    .max(POLICY_EXPRESSION_MAX_LENGTH)
    .nullable()
    .optional()
    .openapi({ description: "CEL returning the message (instead of the static one)" }),
  enabled: z.boolean().default(true),
  scope: z
    .enum(["tenant", "global"])
    .optional()
    .openapi({ description: "global needs the platform admin token" }),
});

const Policy = z
  .object({
    id: z.string(),
    tenantId: z.string().nullable(),
    scope: z.enum(["tenant", "global"]),
    name: z.string(),
    version: z.number().int(),
    expression: z.string(),
    effect: z.enum(["deny", "warn"]),
    message: z.string().nullable(),
    messageExpression: z.string().nullable(),
    enabled: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Policy");

type PolicyRow = typeof policies.$inferSelect;
const view = (p: PolicyRow): z.infer<typeof Policy> => ({
  id: p.id,
  tenantId: p.tenantId,
  scope: p.tenantId ? "tenant" : "global",
  name: p.name,
  version: p.version,
  expression: p.expression,
  effect: p.effect as "deny" | "warn",
  message: p.message,
  messageExpression: p.messageExpression,
  enabled: p.enabled,
  createdAt: p.createdAt.toISOString(),
  updatedAt: p.updatedAt.toISOString(),
});

function compileOrThrow(def: PolicyDef): void {
  const r = compilePolicy(def);
  if (r.ok) return;
  // The engine's messages already start with "line L, column C:"; the position is also given as data.
  const errors = r.errors.map((e) => ({
    path: e.field,
    message: e.message,
    ...(e.position ? { position: e.position } : {}),
  }));
  throw new GantryError("InvalidExpression", errors.map((e) => `${e.path}: ${e.message}`).join("; "), errors);
}

/** Who owns a new policy: the caller's tenant, or null (global) for the platform admin. */
function scopeFor(p: Principal, requested: "tenant" | "global" | undefined): string | null {
  if (p.kind === "admin") {
    if (requested === "tenant") {
      throw new GantryError(
        "ValidationFailed",
        "the platform admin creates global policies; omit scope or use global",
        [{ path: "scope", message: "tenant scope needs a tenant admin key" }],
      );
    }
    return null;
  }
  if (p.kind !== "tenant")
    throw new GantryError("Forbidden", "policies need a tenant admin key or the admin token");
  if (requested === "global")
    throw new GantryError("Forbidden", "global policies need the platform admin token");
  if (p.role !== "admin")
    throw new GantryError("Forbidden", "writing policies needs a tenant key with role admin");
  return p.tenantId;
}

/** A policy the caller may see: its tenant's, or global ones. Anything else is not found. */
async function visible(c: Context<HonoEnv>, db: Q, id: string): Promise<PolicyRow> {
  const [row] = await db
    .select()
    .from(policies)
    .where(and(eq(policies.id, id), isNull(policies.deletedAt)));
  const p = c.get("principal")!;
  if (!row || (row.tenantId && (p.kind !== "tenant" || p.tenantId !== row.tenantId))) {
    throw new GantryError("NotFound", `no policy ${id}`);
  }
  return row;
}

/** Only the owner writes: a tenant admin its tenant's policies, the platform admin global ones. */
function assertWriter(c: Context<HonoEnv>, row: PolicyRow): void {
  const p = c.get("principal")!;
  if (row.tenantId === null && p.kind !== "admin")
    throw new GantryError("Forbidden", "global policies need the admin token");
  if (row.tenantId !== null && p.kind === "tenant" && p.role !== "admin") {
    throw new GantryError("Forbidden", "writing policies needs a tenant key with role admin");
  }
  if (row.tenantId !== null && p.kind !== "tenant") throw new GantryError("NotFound", `no policy ${row.id}`);
}

/** After a change: bump and push the catalog of every tenant the policy applies to. */
async function propagate(c: Context<HonoEnv>, db: Q, tenantId: string | null): Promise<void> {
  if (tenantId) {
    await pushCatalog(c.env, tenantId, db);
    return;
  }
  const all = await db.select({ id: tenants.id }).from(tenants);
  // Bounded fan-out: the cron tick re-pushes any tenant this misses.
  for (let i = 0; i < all.length; i += 16) {
    await Promise.all(all.slice(i, i + 16).map((t) => pushCatalog(c.env, t.id, db)));
  }
}

async function bumpFor(db: Q, tenantId: string | null): Promise<void> {
  const set = { catalogRev: sql`${tenants.catalogRev} + 1` };
  if (tenantId) await db.update(tenants).set(set).where(eq(tenants.id, tenantId));
  else await db.update(tenants).set(set);
}

async function recordVersion(db: Q, row: PolicyRow, actor: string, deleted = false): Promise<void> {
  await db.insert(policyVersions).values({
    policyId: row.id,
    version: row.version,
    tenantId: row.tenantId,
    name: row.name,
    expression: row.expression,
    effect: row.effect,
    message: row.message,
    messageExpression: row.messageExpression,
    enabled: row.enabled,
    deleted,
    actor,
  });
}

const actor = (c: Context<HonoEnv>) => {
  const p = c.get("principal")!;
  return p.kind === "tenant" ? `key:${p.keyId}` : p.kind;
};

policiesApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/policies",
    tags: ["policies"],
    summary: "Create a policy (tenant admin: tenant scope; platform admin: global)",
    middleware: [readers] as const,
    request: { body: body(PolicyIn) },
    responses: { 201: json(Policy, "Created (version 1)"), ...errorsWith() },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const tenantId = scopeFor(c.get("principal")!, input.scope);
    const id = newId("pol");
    const def: PolicyDef = {
      id,
      version: 1,
      name: input.name,
      expression: input.expression,
      effect: input.effect,
      message: input.message ?? null,
      messageExpression: input.messageExpression ?? null,
      enabled: input.enabled,
      scope: tenantId ? "tenant" : "global",
    };
    compileOrThrow(def);
    const row = await withDb(c.env, async (db) => {
      const created = await db.transaction(async (tx) => {
        const [p] = await tx
          .insert(policies)
          .values({ ...def, tenantId })
          .returning();
        await recordVersion(tx, p!, actor(c));
        await bumpFor(tx, tenantId);
        await audit(tx, c, "policy.create", tenantId, id, { name: def.name, effect: def.effect });
        return p!;
      });
      await propagate(c, db, tenantId);
      return created;
    });
    c.header("location", `/v1/policies/${row.id}`);
    return c.json(view(row), 201);
  },
);

policiesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/policies",
    tags: ["policies"],
    summary: "List policies that apply: the tenant's own and the global ones (admin: global)",
    middleware: [readers, tenantReadLimit] as const,
    responses: { 200: json(z.object({ items: z.array(Policy) }), "Policies"), ...errorsWith() },
  }),
  async (c) => {
    const p = c.get("principal")!;
    const scope =
      p.kind === "tenant"
        ? or(isNull(policies.tenantId), eq(policies.tenantId, p.tenantId))
        : isNull(policies.tenantId);
    const rows = await withDb(c.env, (db) =>
      db
        .select()
        .from(policies)
        .where(and(isNull(policies.deletedAt), scope))
        .orderBy(asc(policies.createdAt)),
    );
    return c.json({ items: rows.map(view) }, 200);
  },
);

policiesApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/policies/evaluate",
    tags: ["policies"],
    summary: "Dry run: every decision the enabled policies would make for this job (nothing is stored)",
    middleware: [readers, tenantReadLimit] as const,
    request: { body: body(z.strictObject({ job: JobSubmit })) },
    responses: {
      200: json(
        z.object({
          allowed: z.boolean(),
          decisions: z.array(
            z.object({
              policyId: z.string(),
              version: z.number().int(),
              name: z.string(),
              scope: z.string(),
              effect: z.string(),
              matched: z.boolean(),
              message: z.string().nullable(),
              error: z.string().optional(),
            }),
          ),
        }),
        "Decisions",
      ),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const p = c.get("principal")!;
    const { job } = c.req.valid("json");
    if (p.kind === "tenant") {
      // The same cached policies and the same code as enforcement at submit.
      const r = unwrap(
        await tenantStub(c.env, p.tenantId).evaluatePolicies(toSubmitJob(job), job.user ?? p.name),
      );
      return c.json(r.value, 200);
    }
    const rows = await withDb(c.env, (db) =>
      db
        .select()
        .from(policies)
        .where(and(isNull(policies.deletedAt), isNull(policies.tenantId))),
    );
    const compiled = rows.flatMap((r) => {
      const x = compilePolicy({ ...view(r), scope: "global" });
      return x.ok ? [x.policy] : [];
    });
    const out = evaluatePolicies(
      compiled,
      {
        ...job,
        user: job.user ?? "admin",
        gpuType: job.gpuType ?? null,
        maxRuntimeSeconds: job.maxRuntimeSeconds ?? null,
        arraySize: job.array?.size ?? null,
      },
      { id: "(dry-run)", name: "(dry-run)", weight: 1 },
      new Date(),
    );
    return c.json(out, 200);
  },
);

policiesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/policies/{id}",
    tags: ["policies"],
    summary: "Show a policy",
    middleware: [readers, tenantReadLimit] as const,
    request: { params: IdParam("id", "pol_01jd9r2v6m3x4c5b6n7p8q9r0s") },
    responses: { 200: json(Policy, "The policy"), ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const row = await withDb(c.env, (db) => visible(c, db, id));
    return c.json(view(row), 200);
  },
);

policiesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/policies/{id}/versions",
    tags: ["policies"],
    summary: "Every version of a policy",
    middleware: [readers, tenantReadLimit] as const,
    request: { params: IdParam("id", "pol_01jd9r2v6m3x4c5b6n7p8q9r0s") },
    responses: {
      200: json(z.object({ items: z.array(z.record(z.string(), z.unknown())) }), "Versions"),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const rows = await withDb(c.env, async (db) => {
      await visible(c, db, id);
      return db
        .select()
        .from(policyVersions)
        .where(eq(policyVersions.policyId, id))
        .orderBy(asc(policyVersions.version));
    });
    return c.json({ items: rows.map((r) => ({ ...r, createdAt: r.createdAt.toISOString() })) }, 200);
  },
);

policiesApp.openapi(
  createRoute({
    method: "put",
    path: "/v1/policies/{id}",
    tags: ["policies"],
    summary: "Replace a policy: a new version, applied to the next submission",
    middleware: [readers] as const,
    request: {
      params: IdParam("id", "pol_01jd9r2v6m3x4c5b6n7p8q9r0s"),
      body: body(PolicyIn.omit({ scope: true })),
    },
    responses: { 200: json(Policy, "The new version"), ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const input = c.req.valid("json");
    const row = await withDb(c.env, async (db) => {
      const updated = await db.transaction(async (tx) => {
        const cur = await visible(c, tx, id);
        assertWriter(c, cur);
        const def: PolicyDef = {
          id,
          version: cur.version + 1,
          name: input.name,
          expression: input.expression,
          effect: input.effect,
          message: input.message ?? null,
          messageExpression: input.messageExpression ?? null,
          enabled: input.enabled,
          scope: cur.tenantId ? "tenant" : "global",
        };
        compileOrThrow(def);
        const [p] = await tx
          .update(policies)
          .set({ ...def, updatedAt: new Date() })
          .where(eq(policies.id, id))
          .returning();
        await recordVersion(tx, p!, actor(c));
        await bumpFor(tx, cur.tenantId);
        await audit(tx, c, "policy.update", cur.tenantId, id, { version: def.version });
        return p!;
      });
      await propagate(c, db, updated.tenantId);
      return updated;
    });
    return c.json(view(row), 200);
  },
);

policiesApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/policies/{id}",
    tags: ["policies"],
    summary: "Delete a policy (recorded as a final version)",
    middleware: [readers] as const,
    request: { params: IdParam("id", "pol_01jd9r2v6m3x4c5b6n7p8q9r0s") },
    responses: { 204: { description: "Deleted" }, ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    await withDb(c.env, async (db) => {
      const tenantId = await db.transaction(async (tx) => {
        const cur = await visible(c, tx, id);
        assertWriter(c, cur);
        const [p] = await tx
          .update(policies)
          .set({ deletedAt: new Date(), version: cur.version + 1, updatedAt: new Date() })
          .where(eq(policies.id, id))
          .returning();
        await recordVersion(tx, p!, actor(c), true);
        await bumpFor(tx, cur.tenantId);
        await audit(tx, c, "policy.delete", cur.tenantId, id);
        return cur.tenantId;
      });
      await propagate(c, db, tenantId);
    });
    return c.body(null, 204);
  },
);
