// Workflows: job arrays (summary, cancel) and pipelines — versioned DAG templates of job steps (Postgres)
// whose runs start every step at once in the tenant's object, wired by dependencies.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { and, asc, eq, isNull } from "drizzle-orm";
import { pipelines, pipelineVersions } from "../db/schema.ts";
import type { PipelineTemplate } from "../src/do/tenant/pipelines.ts";
import { orderSteps } from "../src/domain/dag.ts";
import { newId } from "../src/domain/ids.ts";
import { GantryError, unwrap } from "../src/errors.ts";
import { type Q, withDb } from "../src/lib/pg.ts";
import { tenantStub } from "../src/stubs.ts";
import { actorOf, tenantOf, tenantRole } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { body, errorsWith, IdParam, JobSubmit, json, Loose, toSubmitJob } from "./schemas.ts";
import { audit } from "./tenants.ts";
import { validationHook } from "./validation.ts";

export const pipelinesApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });
const member = tenantRole("member");

const stepName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "step names: letters, digits, . _ -");
const Step = z.strictObject({
  name: stepName,
  job: JobSubmit.omit({ array: true, dependsOn: true }),
  dependsOn: z
    .array(
      z.union([
        stepName,
        z.strictObject({ step: stepName, condition: z.enum(["succeeded", "finished"]).default("succeeded") }),
      ]),
    )
    .max(100)
    .default([])
    .openapi({ description: 'Step names ("afterok"), or {step, condition: "finished"} ("afterany")' }),
});
const PipelineIn = z
  .strictObject({ name: z.string().min(1).max(128), steps: z.array(Step).min(1).max(200) })
  .openapi("PipelineDefinition");

type StepIn = z.infer<typeof Step>;
const normalizeSteps = (steps: StepIn[]) =>
  steps.map((s) => ({
    name: s.name,
    job: s.job,
    dependsOn: s.dependsOn.map((d) =>
      typeof d === "string" ? { step: d, condition: "succeeded" as const } : d,
    ),
  }));

function validateDag(steps: ReturnType<typeof normalizeSteps>): void {
  const r = orderSteps(steps);
  if (!r.ok) throw new GantryError("ValidationFailed", r.errors.map((e) => e.message).join("; "), r.errors);
}

const Pipeline = z
  .object({
    id: z.string(),
    name: z.string(),
    version: z.number().int(),
    steps: z.array(Loose),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Pipeline");
const view = (p: typeof pipelines.$inferSelect) => ({
  id: p.id,
  name: p.name,
  version: p.version,
  steps: p.steps as Record<string, unknown>[],
  createdAt: p.createdAt.toISOString(),
  updatedAt: p.updatedAt.toISOString(),
});

async function owned(db: Q, tenantId: string, id: string) {
  const [p] = await db
    .select()
    .from(pipelines)
    .where(and(eq(pipelines.id, id), eq(pipelines.tenantId, tenantId), isNull(pipelines.deletedAt)));
  if (!p) throw new GantryError("NotFound", `no pipeline ${id}`);
  return p;
}

pipelinesApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/pipelines",
    tags: ["workflows"],
    summary: "Store a pipeline: a DAG of job steps (a cycle or unknown step is a 400)",
    middleware: [member] as const,
    request: { body: body(PipelineIn) },
    responses: { 201: json(Pipeline, "Stored (version 1)"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const input = c.req.valid("json");
    const steps = normalizeSteps(input.steps);
    validateDag(steps);
    const row = await withDb(c.env, (db) =>
      db.transaction(async (tx) => {
        const [p] = await tx
          .insert(pipelines)
          .values({ id: newId("pipe"), tenantId: who.tenantId, name: input.name, version: 1, steps })
          .returning();
        await tx.insert(pipelineVersions).values({ pipelineId: p!.id, version: 1, steps, actor: actorOf(c) });
        await audit(tx, c, "pipeline.create", who.tenantId, p!.id, { name: input.name });
        return p!;
      }),
    );
    c.header("location", `/v1/pipelines/${row.id}`);
    return c.json(view(row), 201);
  },
);

pipelinesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/pipelines",
    tags: ["workflows"],
    summary: "List the tenant's pipelines",
    middleware: [member] as const,
    responses: { 200: json(z.object({ items: z.array(Pipeline) }), "Pipelines"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const rows = await withDb(c.env, (db) =>
      db
        .select()
        .from(pipelines)
        .where(and(eq(pipelines.tenantId, who.tenantId), isNull(pipelines.deletedAt)))
        .orderBy(asc(pipelines.createdAt)),
    );
    return c.json({ items: rows.map(view) }, 200);
  },
);

const PipelineId = IdParam("id", "pipe_01jd9r2v6m3x4c5b6n7p8q9r0s");

pipelinesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/pipelines/{id}",
    tags: ["workflows"],
    summary: "Show a pipeline (its current version)",
    middleware: [member] as const,
    request: { params: PipelineId },
    responses: { 200: json(Pipeline, "The pipeline"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    return c.json(view(await withDb(c.env, (db) => owned(db, who.tenantId, id))), 200);
  },
);

pipelinesApp.openapi(
  createRoute({
    method: "put",
    path: "/v1/pipelines/{id}",
    tags: ["workflows"],
    summary: "Replace a pipeline's steps: a new version (runs already started keep theirs)",
    middleware: [member] as const,
    request: { params: PipelineId, body: body(PipelineIn) },
    responses: { 200: json(Pipeline, "The new version"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    const input = c.req.valid("json");
    const steps = normalizeSteps(input.steps);
    validateDag(steps);
    const row = await withDb(c.env, (db) =>
      db.transaction(async (tx) => {
        const cur = await owned(tx, who.tenantId, id);
        const [p] = await tx
          .update(pipelines)
          .set({ name: input.name, steps, version: cur.version + 1, updatedAt: new Date() })
          .where(eq(pipelines.id, id))
          .returning();
        await tx
          .insert(pipelineVersions)
          .values({ pipelineId: id, version: p!.version, steps, actor: actorOf(c) });
        await audit(tx, c, "pipeline.update", who.tenantId, id, { version: p!.version });
        return p!;
      }),
    );
    return c.json(view(row), 200);
  },
);

pipelinesApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/pipelines/{id}",
    tags: ["workflows"],
    summary: "Delete a pipeline (its runs are kept)",
    middleware: [member] as const,
    request: { params: PipelineId },
    responses: { 204: { description: "Deleted" }, ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    await withDb(c.env, (db) =>
      db.transaction(async (tx) => {
        await owned(tx, who.tenantId, id);
        await tx.update(pipelines).set({ deletedAt: new Date() }).where(eq(pipelines.id, id));
        await audit(tx, c, "pipeline.delete", who.tenantId, id);
      }),
    );
    return c.body(null, 204);
  },
);

const RunView = z
  .object({
    id: z.string(),
    pipelineId: z.string(),
    name: z.string(),
    version: z.number().int(),
    state: z.string(),
    createdAt: z.string(),
    steps: z.array(
      z.object({
        name: z.string(),
        jobId: z.string(),
        dependsOn: z.array(z.object({ step: z.string(), condition: z.string() })),
        state: z.string(),
        reason: z.string().nullable(),
        exitCode: z.number().int().nullable(),
        attempt: z.number().int(),
      }),
    ),
  })
  .openapi("PipelineRun");

pipelinesApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/pipelines/{id}/runs",
    tags: ["workflows"],
    summary: "Start a run: every step's job is created at once, wired by dependencies",
    middleware: [member] as const,
    request: { params: PipelineId },
    responses: { 201: json(RunView, "Started"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    const p = await withDb(c.env, (db) => owned(db, who.tenantId, id));
    const steps = p.steps as ReturnType<typeof normalizeSteps>;
    const template: PipelineTemplate = {
      id: p.id,
      name: p.name,
      version: p.version,
      steps: steps.map((s) => ({
        name: s.name,
        dependsOn: s.dependsOn,
        job: toSubmitJob(JobSubmit.parse({ ...s.job })),
      })),
    };
    const r = unwrap(
      await tenantStub(c.env, who.tenantId).startRun(who.keyHash, template, c.get("requestId")),
    );
    c.header("location", `/v1/pipelines/${id}/runs/${r.run.id}`);
    return c.json(r.run, 201);
  },
);

pipelinesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/pipelines/{id}/runs",
    tags: ["workflows"],
    summary: "Recent runs of a pipeline (newest first)",
    middleware: [member] as const,
    request: { params: PipelineId },
    responses: { 200: json(z.object({ items: z.array(RunView) }), "Runs"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    await withDb(c.env, (db) => owned(db, who.tenantId, id));
    return c.json({ items: unwrap(await tenantStub(c.env, who.tenantId).listRuns(id)).value }, 200);
  },
);

const RunParams = z.object({
  id: z
    .string()
    .max(200)
    .openapi({ param: { name: "id", in: "path" } }),
  runId: z
    .string()
    .max(200)
    .openapi({ param: { name: "runId", in: "path" } }),
});

pipelinesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/pipelines/{id}/runs/{runId}",
    tags: ["workflows"],
    summary: "A run: each step's job and state, and the run's overall state",
    middleware: [member] as const,
    request: { params: RunParams },
    responses: { 200: json(RunView, "The run"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id, runId } = c.req.valid("param");
    const run = unwrap(await tenantStub(c.env, who.tenantId).getRun(runId)).value;
    if (run.pipelineId !== id) throw new GantryError("NotFound", `no run ${runId} of pipeline ${id}`);
    return c.json(run, 200);
  },
);

pipelinesApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/pipelines/{id}/runs/{runId}/cancel",
    tags: ["workflows"],
    summary: "Cancel a run: every unfinished step's job is cancelled",
    middleware: [member] as const,
    request: { params: RunParams },
    responses: { 200: json(RunView.extend({ cancelled: z.number().int() }), "Cancelled"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id, runId } = c.req.valid("param");
    const stub = tenantStub(c.env, who.tenantId);
    const run = unwrap(await stub.getRun(runId)).value;
    if (run.pipelineId !== id) throw new GantryError("NotFound", `no run ${runId} of pipeline ${id}`);
    const r = unwrap(await stub.cancelRun(runId, actorOf(c), c.get("requestId")));
    return c.json({ ...r.run, cancelled: r.cancelled }, 200);
  },
);

// ---------------------------------------------------------------- arrays

const ArraySummary = z
  .object({
    id: z.string(),
    name: z.string(),
    size: z.number().int(),
    state: z.string(),
    counts: z.record(z.string(), z.number().int()),
    submittedAt: z.string(),
  })
  .openapi("JobArray");
const ArrayId = IdParam("id", "arr_01jd9r2v6m3x4c5b6n7p8q9r0s");

pipelinesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/arrays/{id}",
    tags: ["workflows"],
    summary: "A job array: its size and task counts by state (list tasks with GET /v1/jobs?array=ID)",
    middleware: [member] as const,
    request: { params: ArrayId },
    responses: { 200: json(ArraySummary, "The array"), ...errorsWith() },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    return c.json(unwrap(await tenantStub(c.env, who.tenantId).arraySummary(id)).value, 200);
  },
);

pipelinesApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/arrays/{id}/cancel",
    tags: ["workflows"],
    summary: "Cancel every unfinished task of an array",
    middleware: [member] as const,
    request: { params: ArrayId },
    responses: {
      200: json(ArraySummary.extend({ cancelled: z.number().int() }), "Cancelled"),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const who = tenantOf(c);
    const { id } = c.req.valid("param");
    const r = unwrap(await tenantStub(c.env, who.tenantId).cancelArray(id, actorOf(c), c.get("requestId")));
    return c.json({ ...r.array, cancelled: r.cancelled }, 200);
  },
);
