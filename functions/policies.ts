// Admission policies (CEL). Tenant admins manage their tenant's policies; the platform admin manages global
// ones. Every change is a new version (policy_versions); jobs record the versions that admitted them.
// Expressions are compiled when written (a bad one is a 400 naming the position) and the tenant objects'
// caches are refreshed before the call returns, so a change applies to the next submission.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { and, asc, eq, isNull, or } from "drizzle-orm";
import { policies, policyVersions } from "../db/schema.ts";
import { newId } from "../src/domain/ids.ts";
import {
  compilePolicy,
  evaluatePolicies,
  POLICY_EXPRESSION_MAX_LENGTH,
  type PolicyDef,
} from "../src/domain/policy.ts";
import { unwrap } from "../src/errors.ts";
import { withDb } from "../src/lib/pg.ts";
import { tenantStub } from "../src/stubs.ts";
import { allow, tenantReadLimit } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import {
  actor,
  assertWriter,
  bumpFor,
  compileOrThrow,
  type PolicyRow,
  propagate,
  recordVersion,
  scopeFor,
  visible,
} from "./policy-access.ts";
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
