// Rules shared by the policy routes: who may write which policy, what a caller may see, compiling before
// storing, version records, and pushing a change to the tenant objects that cache policies.
import { and, eq, isNull, sql } from "drizzle-orm";
import type { Context } from "hono";
import { policies, policyVersions, tenants } from "../db/schema.ts";
import { compilePolicy, type PolicyDef } from "../src/domain/policy.ts";
import { GantryError } from "../src/errors.ts";
import { pushCatalog } from "../src/lib/catalog-push.ts";
import type { Q } from "../src/lib/pg.ts";
import type { HonoEnv, Principal } from "./hono-env.ts";

export type PolicyRow = typeof policies.$inferSelect;

export function compileOrThrow(def: PolicyDef): void {
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
export function scopeFor(p: Principal, requested: "tenant" | "global" | undefined): string | null {
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
export async function visible(c: Context<HonoEnv>, db: Q, id: string): Promise<PolicyRow> {
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
export function assertWriter(c: Context<HonoEnv>, row: PolicyRow): void {
  const p = c.get("principal")!;
  if (row.tenantId === null && p.kind !== "admin")
    throw new GantryError("Forbidden", "global policies need the admin token");
  if (row.tenantId !== null && p.kind === "tenant" && p.role !== "admin") {
    throw new GantryError("Forbidden", "writing policies needs a tenant key with role admin");
  }
  if (row.tenantId !== null && p.kind !== "tenant") throw new GantryError("NotFound", `no policy ${row.id}`);
}

/** After a change: bump and push the catalog of every tenant the policy applies to. */
export async function propagate(c: Context<HonoEnv>, db: Q, tenantId: string | null): Promise<void> {
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

export async function bumpFor(db: Q, tenantId: string | null): Promise<void> {
  const set = { catalogRev: sql`${tenants.catalogRev} + 1` };
  if (tenantId) await db.update(tenants).set(set).where(eq(tenants.id, tenantId));
  else await db.update(tenants).set(set);
}

export async function recordVersion(db: Q, row: PolicyRow, actor: string, deleted = false): Promise<void> {
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

export const actor = (c: Context<HonoEnv>) => {
  const p = c.get("principal")!;
  return p.kind === "tenant" ? `key:${p.keyId}` : p.kind;
};
