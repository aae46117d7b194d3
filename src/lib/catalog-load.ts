// Reads a tenant's catalog slice from Postgres (the system of record) for its Durable Object's cache.
import { and, eq, isNull, or } from "drizzle-orm";
import { apiKeys, policies, tenants } from "../../db/schema.ts";
import type { RateLimits, Role, TenantCatalog } from "../do/tenant/catalog.ts";
import type { PolicyDef } from "../domain/policy.ts";
import type { QuotaSpec } from "../domain/quota.ts";
import type { Q } from "./pg.ts";

export async function loadCatalog(db: Q, tenantId: string): Promise<TenantCatalog | null> {
  const [t] = await db.select().from(tenants).where(eq(tenants.id, tenantId));
  if (!t) return null;
  const keys = await db
    .select({ hash: apiKeys.hash, id: apiKeys.id, name: apiKeys.name, role: apiKeys.role })
    .from(apiKeys)
    .where(and(eq(apiKeys.tenantId, tenantId), isNull(apiKeys.revokedAt)));
  const pols = await db
    .select()
    .from(policies)
    .where(and(isNull(policies.deletedAt), or(isNull(policies.tenantId), eq(policies.tenantId, tenantId))));
  return {
    rev: t.catalogRev,
    tenant: { id: t.id, name: t.name, weight: t.weight },
    keys: keys.map((k) => ({ ...k, role: k.role as Role })),
    policies: pols.map(
      (p): PolicyDef => ({
        id: p.id,
        version: p.version,
        name: p.name,
        expression: p.expression,
        effect: p.effect as "deny" | "warn",
        message: p.message,
        messageExpression: p.messageExpression,
        enabled: p.enabled,
        scope: p.tenantId ? "tenant" : "global",
      }),
    ),
    quota: (t.quota as QuotaSpec | null) ?? null,
    limits: (t.limits as RateLimits | null) ?? null,
  };
}
