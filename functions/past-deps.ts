// Dependencies on jobs that retention already removed from the tenant's object. The object keeps finished
// jobs for JOB_RETENTION_HOURS and prunes them only once Postgres holds them, so a dependency it no longer
// knows is looked up in the history (only on this rare path: the submit hot path never touches Postgres).
import { and, eq, inArray } from "drizzle-orm";
import { jobs } from "../db/schema.ts";
import { isTerminal, type JobState } from "../src/domain/job.ts";
import type { Env } from "../src/env.ts";
import { withDb } from "../src/lib/pg.ts";

/** Final states of those of `ids` that are this tenant's finished jobs in the history. */
export async function pastDependencies(
  env: Env,
  tenantId: string,
  ids: string[],
): Promise<Record<string, JobState>> {
  if (ids.length === 0) return {};
  const rows = await withDb(env, (db) =>
    db
      .select({ id: jobs.id, state: jobs.state })
      .from(jobs)
      .where(and(eq(jobs.tenantId, tenantId), inArray(jobs.id, ids))),
  );
  const out: Record<string, JobState> = {};
  for (const r of rows) if (isTerminal(r.state as JobState)) out[r.id] = r.state as JobState;
  return out;
}
