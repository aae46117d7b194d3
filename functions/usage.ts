// GET /v1/usage: GPU-seconds by user and GPU type in a window, and optionally as a series of buckets
// (`step`), so a chart is one call instead of one per bar. Finished holdings come from Postgres, summed per
// bucket there; running ones from the tenant object's live rows (src/domain/usage.ts cuts them).
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { usageRecords } from "../db/schema.ts";
import {
  bucketBounds,
  bucketCount,
  MAX_BUCKETS,
  MIN_STEP_SECONDS,
  usageBuckets,
} from "../src/domain/usage.ts";
import { GantryError, unwrap } from "../src/errors.ts";
import { type Db, withDb } from "../src/lib/pg.ts";
import { tenantStub } from "../src/stubs.ts";
import { tenantOf, tenantRole } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { EARLIEST_MS, errorsWith, Instant, json } from "./schemas.ts";
import { validationHook } from "./validation.ts";

export const usageApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });

const UsageRow = z.object({
  user: z.string(),
  gpuType: z.string(),
  gpuSeconds: z.number(),
  jobs: z.number().int(),
});
const Bucket = z.object({
  from: z.string(),
  to: z.string(),
  totalGpuSeconds: z.number(),
  items: z.array(UsageRow),
});

/** Finished holdings summed by Postgres per bucket, each clipped to its bucket's edges. */
function finished(db: Db, tenantId: string, bounds: [number, number][]) {
  const u = usageRecords;
  return db.execute<{ bucket: number; user: string; gpuType: string; jobs: number; gpuSeconds: number }>(sql`
    SELECT b.i AS bucket, ${u.user} AS "user", ${u.gpuType} AS "gpuType",
      count(DISTINCT ${u.jobId})::int AS jobs,
      coalesce(sum(${u.gpus} * extract(epoch FROM (least(${u.endedAt}, b.e) - greatest(${u.startedAt}, b.s)))), 0)::float8 AS "gpuSeconds"
    FROM (
      SELECT (ord - 1)::int AS i, to_timestamp((x ->> 0)::float8 / 1000) AS s, to_timestamp((x ->> 1)::float8 / 1000) AS e
      FROM jsonb_array_elements(${JSON.stringify(bounds)}::jsonb) WITH ORDINALITY AS t(x, ord)
    ) b
    JOIN ${u} ON ${u.tenantId} = ${tenantId} AND ${u.startedAt} < b.e AND ${u.endedAt} > b.s
    GROUP BY b.i, ${u.user}, ${u.gpuType}`);
}

usageApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/usage",
    tags: ["quotas"],
    summary:
      "GPU-seconds by user and GPU type in [from, to) (default: the last 24 h), running jobs included; with step, also per bucket",
    middleware: [tenantRole("member")] as const,
    request: {
      query: z.object({
        from: Instant.optional().openapi({ example: "2026-11-20T00:00:00Z" }),
        to: Instant.optional(),
        step: z.coerce
          .number()
          .int()
          .min(MIN_STEP_SECONDS)
          .max(366 * 86_400)
          .optional()
          .openapi({
            description: `Bucket length in seconds: the answer adds \`buckets\`, whole steps from \`from\` (the last may be shorter), at most ${MAX_BUCKETS}`,
            example: 3600,
          }),
      }),
    },
    responses: {
      200: json(
        z.object({
          from: z.string(),
          to: z.string(),
          totalGpuSeconds: z.number(),
          items: z.array(UsageRow),
          buckets: z.array(Bucket).optional(),
        }),
        "Usage",
      ),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const who = tenantOf(c);
    const q = c.req.valid("query");
    const to = q.to ? Date.parse(q.to) : Date.now();
    // The default window is the last 24 h, but never reaching before year 1 (see Instant).
    const from = q.from ? Date.parse(q.from) : Math.max(EARLIEST_MS, to - 86_400_000);
    if (from >= to) {
      throw new GantryError("ValidationFailed", "from must be before to", [
        { path: "query.from", message: "must be before to" },
      ]);
    }
    const stepMs = q.step === undefined ? null : q.step * 1000;
    if (stepMs !== null && bucketCount(from, to, stepMs) > MAX_BUCKETS) {
      throw new GantryError("ValidationFailed", `at most ${MAX_BUCKETS} buckets: use a larger step`, [
        { path: "query.step", message: `(to - from) / step must be at most ${MAX_BUCKETS}` },
      ]);
    }
    const stub = tenantStub(c.env, who.tenantId);
    unwrap(await stub.readHistory());
    const window: [number, number][] = [[from, to]];
    const series = stepMs === null ? null : bucketBounds(from, to, stepMs);
    const [whole, parts] = await withDb(c.env, async (db) => [
      (await finished(db, who.tenantId, window)).rows,
      series ? (await finished(db, who.tenantId, series)).rows : [],
    ]);
    const live = (await stub.liveUsage()).map((h) => ({
      user: h.user,
      gpuType: h.gpu_type,
      gpus: h.gpus,
      since: h.since,
    }));
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const [total] = usageBuckets(window, whole, live, now);
    const buckets = series
      ? usageBuckets(series, parts, live, now).map((b) => ({ ...b, from: iso(b.from), to: iso(b.to) }))
      : undefined;
    return c.json(
      {
        from: iso(from),
        to: iso(to),
        totalGpuSeconds: total!.totalGpuSeconds,
        items: total!.items,
        ...(buckets ? { buckets } : {}),
      },
      200,
    );
  },
);
