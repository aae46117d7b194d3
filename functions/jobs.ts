// Jobs: submit, list (Postgres history), show/events/logs/explain/cancel (the tenant's live object), queue.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { and, desc, eq, lt, or, sql } from "drizzle-orm";
import type { TypedResponse } from "hono";
import { jobEvents, jobLogs, jobs } from "../db/schema.ts";
import { UNKNOWN_DEPENDENCIES } from "../src/do/tenant/submit.ts";
import { viewFromRecord } from "../src/do/tenant/view.ts";
import { sha256Hex } from "../src/domain/ids.ts";
import { GantryError, unwrap } from "../src/errors.ts";
import type { JobRecord } from "../src/lib/history.ts";
import { withDb } from "../src/lib/pg.ts";
import { tenantStub } from "../src/stubs.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { withFastPath } from "./fast-path.ts";
import { actorOf, requestIdHeader, tenantOf, tenantRole } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { IdempotencyKeySchema, idempotencyKey } from "./idempotency.ts";
import { recordSubmitLatency, takeSubmitLatencies } from "./latency.ts";
import { pastDependencies } from "./past-deps.ts";
import {
  body,
  errorsWith,
  IdParam,
  Job,
  JobEvent,
  JobSubmit,
  json,
  Loose,
  Priority,
  toSubmitJob,
} from "./schemas.ts";
import { fastJobSubmit } from "./submit-fast.ts";
import { validationHook } from "./validation.ts";

export const jobsApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });
const member = tenantRole("member");
const JobIdParam = IdParam("id", "job_01jd9r2v6m3x4c5b6n7p8q9r0s");

jobsApp.openAPIRegistry.registerParameter("IdempotencyKey", IdempotencyKeySchema);

const SubmitResponse = Job.extend({
  array: z.object({ id: z.string(), size: z.number().int() }).optional(),
}).openapi("SubmittedJob");

jobsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/jobs",
    tags: ["jobs"],
    summary: "Submit a job (or an array of tasks)",
    middleware: [member] as const,
    parameters: [{ $ref: "#/components/parameters/IdempotencyKey" }],
    request: { body: body(withFastPath(JobSubmit, fastJobSubmit)) },
    responses: {
      201: json(SubmitResponse, "Created and queued"),
      200: json(SubmitResponse, "Idempotent replay: the job first created with this Idempotency-Key"),
      ...errorsWith([409, "Idempotency-Key reused for a different request"]),
    },
  }),
  async (c) => {
    const who = tenantOf(c);
    const input = c.req.valid("json");
    const key = idempotencyKey(c);
    const stub = tenantStub(c.env, who.tenantId);
    const req = {
      job: toSubmitJob(input),
      idempotencyKey: key,
      // Only needed to refuse a reused Idempotency-Key with a different body.
      fingerprint: key ? await sha256Hex(JSON.stringify(input)) : "",
      requestId: c.get("requestId"),
      // Latencies of earlier submits seen by this isolate ride along (no extra call for metrics).
      latencies: takeSubmitLatencies(who.tenantId),
    };
    let res = await stub.submit(who.keyHash, req);
    // A dependency the object no longer holds may have finished before the retention pruned it: its
    // final state comes from the history, and the submit (which wrote nothing) is made again with it.
    const unknown = res.ok ? null : res.extra?.[UNKNOWN_DEPENDENCIES];
    if (Array.isArray(unknown)) {
      const pastDeps = await pastDependencies(c.env, who.tenantId, unknown as string[]);
      if (Object.keys(pastDeps).length > 0)
        res = await stub.submit(who.keyHash, { ...req, latencies: [], pastDeps });
    }
    const r = unwrap(res);
    recordSubmitLatency(who.tenantId, (Date.now() - c.get("startedAt")) / 1000);
    // The object sends the SubmittedJob already serialized (src/do/tenant/submit.ts, SubmitReply), and the
    // Response is built once with every header it needs (Hono's helpers would assemble a Headers object).
    const init = (status: 200 | 201) => ({
      status,
      headers: {
        "content-type": "application/json",
        location: `/v1/jobs/${r.id}`,
        ...requestIdHeader(c),
      },
    });
    type Submitted = z.infer<typeof SubmitResponse>;
    return r.created
      ? (new Response(r.body, init(201)) as unknown as TypedResponse<Submitted, 201, "json">)
      : (new Response(r.body, init(200)) as unknown as TypedResponse<Submitted, 200, "json">);
  },
);

const ListQuery = z.object({
  state: z.enum(["queued", "scheduled", "running", "succeeded", "failed", "cancelled"]).optional(),
  priority: Priority.optional(),
  user: z.string().max(128).optional(),
  label: z
    .string()
    .regex(/^[^:]{1,63}:.{0,256}$/, "label filter is key:value")
    .optional(),
  array: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});

jobsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/jobs",
    tags: ["jobs"],
    summary: "List jobs, newest first (from the history database)",
    middleware: [member] as const,
    request: { query: ListQuery },
    responses: {
      200: json(z.object({ items: z.array(Job), nextCursor: z.string().nullable() }), "A page of jobs"),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const who = tenantOf(c);
    const q = c.req.valid("query");
    unwrap(await tenantStub(c.env, who.tenantId).readHistory());
    const conds = [eq(jobs.tenantId, who.tenantId)];
    if (q.state) conds.push(eq(jobs.state, q.state));
    if (q.priority) conds.push(eq(jobs.priority, q.priority));
    if (q.user) conds.push(eq(jobs.user, q.user));
    if (q.array) conds.push(eq(jobs.arrayId, q.array));
    if (q.label) {
      const i = q.label.indexOf(":");
      conds.push(
        sql`${jobs.labels} @> ${JSON.stringify({ [q.label.slice(0, i)]: q.label.slice(i + 1) })}::jsonb`,
      );
    }
    if (q.cursor) {
      const cur = decodeCursor(q.cursor);
      conds.push(or(lt(jobs.submittedAt, cur.at), and(eq(jobs.submittedAt, cur.at), lt(jobs.id, cur.id)))!);
    }
    const rows = await withDb(c.env, (db) =>
      db
        .select()
        .from(jobs)
        .where(and(...conds))
        .orderBy(desc(jobs.submittedAt), desc(jobs.id))
        .limit(q.limit + 1),
    );
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return c.json(
      {
        items: page.map((r) => viewFromRecord(toRecord(r)) as z.infer<typeof Job>),
        nextCursor: rows.length > q.limit && last ? encodeCursor(last.submittedAt.getTime(), last.id) : null,
      },
      200,
    );
  },
);

function toRecord(r: typeof jobs.$inferSelect): JobRecord {
  return {
    ...r,
    command: r.command as string[],
    env: r.env as Record<string, string>,
    labels: r.labels as Record<string, string>,
    gpuIndices: r.gpuIndices as number[] | null,
    submittedAt: r.submittedAt.getTime(),
    startedAt: r.startedAt?.getTime() ?? null,
    finishedAt: r.finishedAt?.getTime() ?? null,
    updatedAt: r.updatedAt.getTime(),
  };
}

/** A job the live object no longer has (pruned after its retention) is read from the history database. */
async function fromHistory(c: { env: HonoEnv["Bindings"] }, tenantId: string, id: string) {
  const [row] = await withDb(c.env, (db) =>
    db
      .select()
      .from(jobs)
      .where(and(eq(jobs.id, id), eq(jobs.tenantId, tenantId))),
  );
  return row ?? null;
}

jobsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/jobs/{id}",
    tags: ["jobs"],
    summary: "Show a job",
    middleware: [member] as const,
    request: { params: JobIdParam },
    responses: { 200: json(Job, "The job"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    const r = await tenantStub(c.env, who.tenantId).getJob(id);
    if (r.ok) return c.json(r.value as z.infer<typeof Job>, 200);
    if (r.code !== "NotFound") unwrap(r);
    const row = await fromHistory(c, who.tenantId, id);
    if (!row) throw new GantryError("NotFound", `no job ${id}`);
    return c.json(viewFromRecord(toRecord(row)) as z.infer<typeof Job>, 200);
  },
);

jobsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/jobs/{id}/cancel",
    tags: ["jobs"],
    summary: "Cancel a job (queued: at once; scheduled/running: the agent stops it, then it is cancelled)",
    middleware: [member] as const,
    request: { params: JobIdParam },
    responses: {
      200: json(Job, "Cancelled, or cancellation requested (cancelRequested: true)"),
      ...errorsWith([409, "The job already finished"]),
    },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    const r = await tenantStub(c.env, who.tenantId).cancel(id, actorOf(c), c.get("requestId"));
    if (!r.ok && r.code === "NotFound" && (await fromHistory(c, who.tenantId, id))) {
      throw new GantryError("InvalidTransition", `job ${id} already finished`);
    }
    return c.json(unwrap(r).job as z.infer<typeof Job>, 200);
  },
);

jobsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/jobs/{id}/events",
    tags: ["jobs"],
    summary: "Every state transition of a job, with time and reason",
    middleware: [member] as const,
    request: { params: JobIdParam },
    responses: {
      200: json(z.object({ items: z.array(JobEvent) }), "Transitions, oldest first"),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    const r = await tenantStub(c.env, who.tenantId).jobEvents(id);
    let evs: {
      seq: number;
      jobId: string;
      at: number;
      fromState: string | null;
      toState: string;
      reason: string | null;
      message: string | null;
      attempt: number;
      lease: number | null;
      workerId: string | null;
      exitCode: number | null;
    }[];
    if (r.ok) evs = r.value;
    else {
      if (r.code !== "NotFound") unwrap(r);
      if (!(await fromHistory(c, who.tenantId, id))) throw new GantryError("NotFound", `no job ${id}`);
      const rows = await withDb(c.env, (db) =>
        db
          .select()
          .from(jobEvents)
          .where(and(eq(jobEvents.jobId, id), eq(jobEvents.tenantId, who.tenantId)))
          .orderBy(jobEvents.seq),
      );
      evs = rows.map((e) => ({ ...e, at: e.at.getTime() }));
    }
    return c.json(
      {
        items: evs.map((e) => ({
          seq: e.seq,
          jobId: e.jobId,
          at: new Date(e.at).toISOString(),
          from: e.fromState,
          to: e.toState,
          reason: e.reason,
          message: e.message,
          attempt: e.attempt,
          lease: e.lease,
          workerId: e.workerId,
          exitCode: e.exitCode,
        })),
      },
      200,
    );
  },
);

jobsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/jobs/{id}/logs",
    tags: ["jobs"],
    summary: "The output tail (last 64 KiB) the agent uploaded",
    middleware: [member] as const,
    request: { params: JobIdParam },
    responses: {
      200: json(
        z.object({
          jobId: z.string(),
          attempt: z.number().int(),
          tail: z.string(),
          updatedAt: z.string().nullable(),
        }),
        "Log tail",
      ),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    const r = await tenantStub(c.env, who.tenantId).jobLog(id);
    if (r.ok) return c.json({ jobId: id, ...r.value }, 200);
    if (r.code !== "NotFound") unwrap(r);
    if (!(await fromHistory(c, who.tenantId, id))) throw new GantryError("NotFound", `no job ${id}`);
    const [log] = await withDb(c.env, (db) =>
      db
        .select()
        .from(jobLogs)
        .where(and(eq(jobLogs.jobId, id), eq(jobLogs.tenantId, who.tenantId))),
    );
    return c.json(
      {
        jobId: id,
        attempt: log?.attempt ?? 0,
        tail: log?.tail ?? "",
        updatedAt: log?.updatedAt.toISOString() ?? null,
      },
      200,
    );
  },
);

jobsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/jobs/{id}/explain",
    tags: ["jobs"],
    summary: "Why is this job pending? One resolved reason, its numbers, queue position, estimated start",
    middleware: [member] as const,
    request: { params: JobIdParam },
    responses: { 200: json(Loose.openapi("Explanation"), "The explanation"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    const r = await tenantStub(c.env, who.tenantId).explain(id);
    if (!r.ok && r.code === "NotFound") {
      const row = await fromHistory(c, who.tenantId, id);
      if (row) {
        return c.json(
          {
            jobId: id,
            state: row.state,
            reason: { code: row.reason ?? row.state, message: row.message ?? `job is ${row.state}` },
          },
          200,
        );
      }
    }
    return c.json(unwrap(r).value as unknown as Record<string, unknown>, 200);
  },
);

jobsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/queue",
    tags: ["jobs"],
    summary: "The tenant's queue: counts by state and priority, oldest wait, fair-share standing",
    middleware: [member] as const,
    responses: { 200: json(Loose.openapi("QueueStats"), "Queue statistics"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    return c.json(
      unwrap(await tenantStub(c.env, who.tenantId).queueStats()).value as Record<string, unknown>,
      200,
    );
  },
);
