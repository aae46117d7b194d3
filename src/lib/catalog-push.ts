// Pushes a tenant's catalog (keys, policies, quota, limits, weight) into its Durable Object after a change
// in Postgres. A failed push is not lost: the cron tick re-pushes every tenant whose applied revision lags.
import { and, eq, lt } from "drizzle-orm";
import { tenants } from "../../db/schema.ts";
import type { Env } from "../env.ts";
import { tenantStub } from "../stubs.ts";
import { loadCatalog } from "./catalog-load.ts";
import { type Q, withDb } from "./pg.ts";

export async function pushCatalog(env: Env, tenantId: string, db?: Q): Promise<boolean> {
  const run = async (d: Q) => {
    const c = await loadCatalog(d, tenantId);
    if (!c) return false;
    try {
      const r = await tenantStub(env, tenantId).syncCatalog(c);
      await d
        .update(tenants)
        .set({ catalogAppliedRev: r.rev })
        .where(and(eq(tenants.id, tenantId), lt(tenants.catalogAppliedRev, r.rev)));
      return true;
    } catch (e) {
      console.warn(
        JSON.stringify({
          level: "warn",
          msg: "catalog push failed; cron will retry",
          tenantId,
          error: String(e),
        }),
      );
      return false;
    }
  };
  return db ? run(db) : withDb(env, run);
}

/** Re-push every tenant whose object has not applied its latest catalog revision. */
export async function repushLagging(env: Env): Promise<number> {
  return withDb(env, async (db) => {
    const lagging = await db
      .select({ id: tenants.id })
      .from(tenants)
      .where(lt(tenants.catalogAppliedRev, tenants.catalogRev));
    let n = 0;
    for (const t of lagging) if (await pushCatalog(env, t.id, db)) n++;
    return n;
  });
}
