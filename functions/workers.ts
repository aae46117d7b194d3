// Fleet: worker registration (join token) and the agent's calls (worker token, own worker id only):
// heartbeat, status, live channel, drain, deregister. Pools and join tokens are in pools.ts.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { workers } from "../db/schema.ts";
import { makeToken, sha256Hex, ulid } from "../src/domain/ids.ts";
import { config } from "../src/env.ts";
import { GantryError, unwrap } from "../src/errors.ts";
import { withDb } from "../src/lib/pg.ts";
import { HeartbeatBodySchema, JobUpdateSchema } from "../src/protocol/heartbeat.ts";
import { fastHeartbeatBody } from "../src/protocol/heartbeat-fast.ts";
import { allShards, fleetStub, schedulerStub, shardName, shardOfWorker } from "../src/stubs.ts";
import { withFastPath } from "./fast-path.ts";
import { allow, requestIdHeader } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { problem } from "./problem.ts";
import { body, errorsWith, IdParam, json, Loose } from "./schemas.ts";
import { audit } from "./tenants.ts";
import { validationHook } from "./validation.ts";

export const workersApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });
const admin = allow("admin");
const worker = allow("worker");

/** Reports carry output tails (64 KiB each), so they get a larger body limit than the 64 KiB default. */
const reportLimit = (bytes: number) =>
  bodyLimit({
    maxSize: bytes,
    onError: (c) => problem(c as Context<HonoEnv>, "PayloadTooLarge", `request body exceeds ${bytes} bytes`),
  });

/** A worker token acts only on its own worker; another worker's id is simply not found. */
function selfWorker(c: Context<HonoEnv>, id: string) {
  const p = c.get("principal");
  if (p?.kind !== "worker") throw new GantryError("Forbidden", "this route needs a worker token");
  if (p.workerId !== id) throw new GantryError("NotFound", `no worker ${id}`);
  return p;
}

// ---------------------------------------------------------------- registration

const GpuIn = z.strictObject({
  index: z.number().int().min(0).max(255),
  model: z.string().min(1).max(128),
  type: z
    .string()
    .min(1)
    .max(64)
    .optional()
    .openapi({ description: "GPU type (H100); defaults to the model string" }),
  memoryMiB: z.number().int().min(0).max(10_000_000).optional(),
  uuid: z.string().max(128).optional(),
});

workersApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/workers/register",
    tags: ["fleet"],
    summary: "Register an agent (join token) and receive its worker token",
    middleware: [allow("join")] as const,
    request: {
      body: body(
        z.strictObject({
          hostname: z.string().min(1).max(255),
          gpus: z
            .array(GpuIn)
            .min(1)
            .max(64)
            .refine((g) => new Set(g.map((x) => x.index)).size === g.length, "GPU indices must be unique"),
          labels: z.record(z.string().max(63), z.string().max(256)).default({}),
          agentVersion: z.string().max(64).optional(),
        }),
      ),
    },
    responses: {
      201: json(
        z.object({
          workerId: z.string(),
          token: z.string(),
          poolId: z.string(),
          heartbeatIntervalSeconds: z.number().int(),
          leaseTtlSeconds: z.number().int(),
        }),
        "Registered; the token is shown once",
      ),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const p = c.get("principal");
    if (p?.kind !== "join") throw new GantryError("Forbidden", "registration needs a join token");
    const input = c.req.valid("json");
    const cfg = config(c.env);
    const shard = Math.floor(Math.random() * cfg.fleetShards);
    const workerId = `w-${String(shard).padStart(2, "0")}-${ulid().toLowerCase()}`;
    const token = makeToken("worker", workerId);
    const gpus = input.gpus.map((g) => ({
      index: g.index,
      model: g.model,
      type: g.type ?? g.model,
      memoryMiB: g.memoryMiB ?? null,
      uuid: g.uuid ?? null,
    }));
    const now = new Date();
    await withDb(c.env, (db) =>
      db.transaction(async (tx) => {
        await tx.insert(workers).values({
          id: workerId,
          poolId: p.poolId,
          hostname: input.hostname,
          gpus,
          labels: input.labels,
          state: "starting",
          registeredAt: now,
          lastSeenAt: now,
          updatedAt: now,
          version: 0,
        });
        await audit(tx, c, "worker.register", null, workerId, { poolId: p.poolId, hostname: input.hostname });
      }),
    );
    await fleetStub(c.env, shardName(shard)).register({
      id: workerId,
      poolId: p.poolId,
      hostname: input.hostname,
      tokenHash: await sha256Hex(token),
      gpus,
      labels: input.labels,
      agentVersion: input.agentVersion ?? null,
    });
    return c.json(
      {
        workerId,
        token,
        poolId: p.poolId,
        heartbeatIntervalSeconds: cfg.heartbeatSeconds,
        leaseTtlSeconds: cfg.leaseTtlSeconds,
      },
      201,
    );
  },
);

// ---------------------------------------------------------------- agent calls

const WorkerIdParam = IdParam("id", "w-03-01jd9r2v6m3x4c5b6n7p8q9r0s");
const Assignment = z
  .object({ jobId: z.string(), lease: z.number().int(), gpuIndices: z.array(z.number().int()), spec: Loose })
  .openapi("Assignment");

workersApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/workers/{id}/heartbeat",
    tags: ["fleet"],
    summary: "Heartbeat: what the agent runs and a batch of transitions; returns new work, cancels, drain",
    middleware: [worker, reportLimit(8 * 1024 * 1024)] as const,
    request: {
      params: WorkerIdParam,
      body: body(withFastPath(HeartbeatBodySchema, fastHeartbeatBody)),
    },
    responses: {
      200: json(
        z.object({
          assignments: z.array(Assignment),
          cancel: z.array(z.string()),
          drain: z.boolean(),
          rejected: z.array(z.object({ jobId: z.string(), code: z.string(), message: z.string() })),
        }),
        "Work for the agent",
      ),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const p = selfWorker(c, id);
    const r = unwrap(await fleetStub(c.env, p.shard).heartbeat(id, p.tokenHash, c.req.valid("json")));
    return c.json(
      { assignments: r.assignments, cancel: r.cancel, drain: r.drain, rejected: r.rejected },
      200,
      requestIdHeader(c),
    );
  },
);

workersApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/workers/{id}/jobs/{jobId}/status",
    tags: ["fleet"],
    summary: "Report one job's transition (fenced by its lease: an old lease is refused with 409)",
    middleware: [worker, reportLimit(256 * 1024)] as const,
    request: {
      params: z.object({
        id: z
          .string()
          .max(200)
          .openapi({ param: { name: "id", in: "path" } }),
        jobId: z
          .string()
          .max(200)
          .openapi({ param: { name: "jobId", in: "path" } }),
      }),
      body: body(JobUpdateSchema.omit({ jobId: true })),
    },
    responses: {
      200: json(z.object({ jobId: z.string(), state: z.string() }), "Accepted"),
      ...errorsWith([409, "Stale lease or a transition the job's state does not allow"]),
    },
  }),
  async (c) => {
    const { id, jobId } = c.req.valid("param");
    const p = selfWorker(c, id);
    const r = unwrap(
      await fleetStub(c.env, p.shard).report(id, p.tokenHash, { jobId, ...c.req.valid("json") }),
    );
    return c.json({ jobId, state: r.state }, 200, requestIdHeader(c));
  },
);

workersApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/workers/{id}/connect",
    tags: ["fleet"],
    summary: "Live channel (WebSocket): assignments, cancels and drain pushed as they happen",
    description:
      'Server frames: `{"type":"hello"}`, `{"type":"assignments","assignments":[...]}`, `{"type":"cancel","jobIds":[...]}`, `{"type":"drain"}`. ' +
      'Agents may heartbeat on it: send `{"type":"heartbeat","id":"<1-64 chars>","running":[...],"updates":[...]}` (the POST /heartbeat body plus `type` and `id`, at most 1 MiB) and get exactly one reply ' +
      '`{"type":"heartbeat","id":...,"ok":true,"assignments":[...],"cancel":[...],"drain":false,"rejected":[...]}` or `{"type":"heartbeat","id":...,"ok":false,"status":400|401|404|413|500,"code":"...","detail":"..."}`. ' +
      '`{"type":"ping"}` is answered with `{"type":"pong"}`.',

    middleware: [worker] as const,
    request: { params: WorkerIdParam },
    responses: {
      101: { description: "Switching protocols" },
      426: { description: "Upgrade: websocket required" },
      ...errorsWith(),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const p = selfWorker(c, id);
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new GantryError("BadRequest", "this route needs a WebSocket upgrade (Upgrade: websocket)");
    }
    const headers = new Headers(c.req.raw.headers);
    headers.delete("authorization");
    headers.set("x-gantry-worker", id);
    headers.set("x-gantry-token-hash", p.tokenHash);
    return fleetStub(c.env, p.shard).fetch(new Request(c.req.raw.url, { headers }));
  },
);

workersApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/workers/{id}/drain",
    tags: ["fleet"],
    summary: "Drain a worker: no new work; running jobs finish (platform admin or the worker itself)",
    middleware: [allow("admin", "worker")] as const,
    request: { params: WorkerIdParam },
    responses: { 200: json(Loose.openapi("Worker"), "Draining"), ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    if (c.get("principal")?.kind === "worker") selfWorker(c, id);
    const shard = shardOfWorker(id);
    if (!shard) throw new GantryError("NotFound", `no worker ${id}`);
    const r = unwrap(await fleetStub(c.env, shard).drain(id));
    // Audited after the shard accepted it: draining is idempotent, so a retry after a failed audit write
    // (503) records it then.
    await withDb(c.env, (db) => audit(db, c, "worker.drain", null, id));
    return c.json(r.worker as unknown as Record<string, unknown>, 200);
  },
);

workersApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/workers/{id}/deregister",
    tags: ["fleet"],
    summary: "The agent leaves; jobs it still holds go back to their queues",
    middleware: [worker] as const,
    request: { params: WorkerIdParam },
    responses: { 200: json(z.object({ requeued: z.number().int() }), "Left"), ...errorsWith() },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const p = selfWorker(c, id);
    const r = unwrap(await fleetStub(c.env, p.shard).deregister(id, p.tokenHash));
    await withDb(c.env, (db) => audit(db, c, "worker.deregister", null, id, { requeued: r.requeued }));
    return c.json({ requeued: r.requeued }, 200);
  },
);

workersApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/workers",
    tags: ["fleet"],
    summary: "All workers with their GPUs, state and leases (live, from the fleet shards)",
    middleware: [admin] as const,
    responses: { 200: json(z.object({ items: z.array(Loose) }), "Workers"), ...errorsWith() },
  }),
  async (c) => {
    const lists = await Promise.all(allShards(c.env).map((s) => fleetStub(c.env, s).listWorkers()));
    return c.json({ items: lists.flat() as unknown as Record<string, unknown>[] }, 200);
  },
);

workersApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/scheduler",
    tags: ["fleet"],
    summary: "Scheduler state: passes, placements, demand by tenant",
    middleware: [admin] as const,
    responses: { 200: json(Loose.openapi("SchedulerState"), "Scheduler"), ...errorsWith() },
  }),
  async (c) => c.json((await schedulerStub(c.env).getStats()) as unknown as Record<string, unknown>, 200),
);
