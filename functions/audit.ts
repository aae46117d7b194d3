// GET /v1/audit?tenant=&action=&actor=&requestId=&from=&to=&limit=&cursor= (platform admin): the audit
// log of every mutating call, newest first. Admin routes write their rows in the same Postgres transaction
// as the change; tenant objects write theirs through the outbox, so a tenant's rows appear once its outbox
// has flushed (normally within ~100 ms). With ?tenant= the read first has that tenant's object flush
// through its newest row, so the page holds everything the tenant did before it.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { and, desc, eq, gte, lt, or, type SQL } from "drizzle-orm";
import { auditLog } from "../db/schema.ts";
import { GantryError } from "../src/errors.ts";
import { withDb } from "../src/lib/pg.ts";
import { tenantStub } from "../src/stubs.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { allow, knownTenants, tenantsSince } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { errorsWith, Instant, json, Loose } from "./schemas.ts";
import { validationHook } from "./validation.ts";

export const auditApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });

const AuditEntry = z
  .object({
    id: z.string(),
    at: z.string(),
    actor: z
      .string()
      .openapi({ description: 'Who: "admin:admin", "key:<keyId>", "worker:<id>", "join:<id>"' }),
    tenantId: z.string().nullable(),
    action: z.string().openapi({ example: "job.submit" }),
    target: z.string().nullable(),
    requestId: z.string(),
    detail: Loose.nullable(),
  })
  .openapi("AuditEntry");

const AuditQuery = z.object({
  tenant: z.string().max(200).optional().openapi({ description: "Only this tenant's rows" }),
  action: z.string().max(100).optional().openapi({ example: "key.revoke" }),
  actor: z.string().max(200).optional().openapi({ example: "key:key_01jd9r2v6m3x4c5b6n7p8q9r0s" }),
  requestId: z.string().max(200).optional().openapi({ description: "Rows written by this request" }),
  from: Instant.optional().openapi({
    description: "Inclusive lower bound on the time",
    example: "2026-11-20T00:00:00Z",
  }),
  to: Instant.optional().openapi({ description: "Exclusive upper bound" }),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional().openapi({ description: "nextCursor of the previous page" }),
});

auditApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/audit",
    tags: ["ops"],
    summary: "The audit log of mutating calls, newest first (platform admin)",
    middleware: [allow("admin")] as const,
    request: { query: AuditQuery },
    responses: {
      200: json(z.object({ items: z.array(AuditEntry), nextCursor: z.string().nullable() }), "A page"),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const q = c.req.valid("query");
    const from = q.from ? new Date(q.from) : null;
    const to = q.to ? new Date(q.to) : null;
    if (from && to && from >= to) {
      throw new GantryError("ValidationFailed", "from must be before to", [
        { path: "query.from", message: "must be before to" },
      ]);
    }
    const conds: SQL[] = [];
    if (q.tenant) conds.push(eq(auditLog.tenantId, q.tenant));
    if (q.action) conds.push(eq(auditLog.action, q.action));
    if (q.actor) conds.push(eq(auditLog.actor, q.actor));
    if (q.requestId) conds.push(eq(auditLog.requestId, q.requestId));
    if (from) conds.push(gte(auditLog.at, from));
    if (to) conds.push(lt(auditLog.at, to));
    if (q.cursor) {
      const cur = decodeCursor(q.cursor);
      conds.push(or(lt(auditLog.at, cur.at), and(eq(auditLog.at, cur.at), lt(auditLog.id, cur.id)))!);
    }
    // Only a tenant that exists: a made-up id must not create an object.
    if (q.tenant && (await knownTenants.exists(q.tenant, tenantsSince(c.env))) === "yes")
      await tenantStub(c.env, q.tenant).syncHistory();
    const rows = await withDb(c.env, (db) =>
      db
        .select()
        .from(auditLog)
        .where(conds.length ? and(...conds) : undefined)
        .orderBy(desc(auditLog.at), desc(auditLog.id))
        .limit(q.limit + 1),
    );
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return c.json(
      {
        items: page.map((r) => ({
          id: r.id,
          at: r.at.toISOString(),
          actor: r.actor,
          tenantId: r.tenantId,
          action: r.action,
          target: r.target,
          requestId: r.requestId,
          detail: (r.detail ?? null) as Record<string, unknown> | null,
        })),
        nextCursor: rows.length > q.limit && last ? encodeCursor(last.at.getTime(), last.id) : null,
      },
      200,
    );
  },
);
