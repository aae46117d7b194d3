// The every-minute safety net. Everything here also happens on change through alarms; the tick catches
// what a lost alarm, a missed push or a crash left behind: catalog pushes, fleet liveness sweeps, tenant
// outboxes and lease checks, and a scheduling pass.
import { and, gt, inArray } from "drizzle-orm";
import { tenants } from "../db/schema.ts";
import type { Env } from "./env.ts";
import { repushLagging } from "./lib/catalog-push.ts";
import { withDb } from "./lib/pg.ts";
import { allShards, fleetStub, schedulerStub, tenantStub } from "./stubs.ts";

export async function cronTick(env: Env, at = Date.now()): Promise<Record<string, unknown>> {
  const report: Record<string, unknown> = { at: new Date(at).toISOString() };
  const step = async (name: string, fn: () => Promise<unknown>) => {
    try {
      report[name] = await fn();
    } catch (e) {
      report[name] = { error: String((e as Error)?.message ?? e) };
    }
  };
  await step("catalog", () => repushLagging(env));
  await step("fleet", async () => {
    await Promise.all(allShards(env).map((s) => fleetStub(env, s).tick()));
    return allShards(env).length;
  });
  // Tenants with anything live tick their alarms themselves; the cron tick wakes those the scheduler knows.
  await step("tenants", async () => {
    const stats = await schedulerStub(env).getStats();
    const ids = stats.demand.map((d) => d.tenantId);
    const known = ids.length
      ? await withDb(env, (db) =>
          db
            .select({ id: tenants.id })
            .from(tenants)
            .where(and(inArray(tenants.id, ids), gt(tenants.catalogRev, 0))),
        )
      : [];
    await Promise.all(known.map((t) => tenantStub(env, t.id).tick()));
    return known.length;
  });
  await step("scheduler", () => schedulerStub(env).tick());
  console.log(JSON.stringify({ t: new Date().toISOString(), level: "info", msg: "cron tick", ...report }));
  return report;
}
