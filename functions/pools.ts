// Pools and their join tokens (platform admin): a worker registers into a pool with a join token, which
// is shown once and kept only as a hash; revoking one leaves registered workers their own tokens.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { and, asc, eq, isNull } from "drizzle-orm";
import { joinTokens, pools } from "../db/schema.ts";
import { makeToken, newId, sha256Hex } from "../src/domain/ids.ts";
import { GantryError } from "../src/errors.ts";
import { withDb } from "../src/lib/pg.ts";
import { allow, knownPools, poolTokens } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { body, errorsWith, IdParam, json, PoolId } from "./schemas.ts";
import { audit } from "./tenants.ts";
import { validationHook } from "./validation.ts";

export const poolsApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });
const admin = allow("admin");

const Pool = z.object({ id: z.string(), name: z.string(), createdAt: z.string() }).openapi("Pool");

poolsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/pools",
    tags: ["fleet"],
    summary: "Create a worker pool",
    middleware: [admin] as const,
    request: { body: body(z.strictObject({ id: PoolId, name: z.string().min(1).max(200).optional() })) },
    responses: { 201: json(Pool, "Created"), ...errorsWith([409, "A pool with this id exists"]) },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const row = await withDb(c.env, (db) =>
      db.transaction(async (tx) => {
        const [p] = await tx
          .insert(pools)
          .values({ id: input.id, name: input.name ?? input.id })
          .onConflictDoNothing()
          .returning();
        if (!p) throw new GantryError("AlreadyExists", `pool ${input.id} already exists`);
        await audit(tx, c, "pool.create", null, p.id);
        return p;
      }),
    );
    knownPools.add(row.id);
    return c.json({ id: row.id, name: row.name, createdAt: row.createdAt.toISOString() }, 201);
  },
);

poolsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/pools",
    tags: ["fleet"],
    summary: "List pools",
    middleware: [admin] as const,
    responses: { 200: json(z.object({ items: z.array(Pool) }), "Pools"), ...errorsWith() },
  }),
  async (c) => {
    const rows = await withDb(c.env, (db) => db.select().from(pools).orderBy(asc(pools.id)));
    return c.json(
      { items: rows.map((p) => ({ id: p.id, name: p.name, createdAt: p.createdAt.toISOString() })) },
      200,
    );
  },
);

poolsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/pools/{id}/join-tokens",
    tags: ["fleet"],
    summary: "Create a join token for agents of this pool (shown once)",
    middleware: [admin] as const,
    request: {
      params: IdParam("id", "h100-east"),
      body: {
        required: false,
        content: {
          "application/json": {
            schema: z.strictObject({
              ttlSeconds: z
                .number()
                .int()
                .min(60)
                .max(365 * 86400)
                .optional()
                .openapi({ description: "Expiry; no expiry when absent" }),
            }),
          },
        },
      },
    },
    responses: {
      201: json(
        z.object({ id: z.string(), poolId: z.string(), token: z.string(), expiresAt: z.string().nullable() }),
        "Created",
      ),
      ...errorsWith(),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const ttl = c.req.valid("json")?.ttlSeconds;
    const token = makeToken("join", id);
    const expiresAt = ttl ? new Date(Date.now() + ttl * 1000) : null;
    const row = await withDb(c.env, (db) =>
      db.transaction(async (tx) => {
        const [p] = await tx.select().from(pools).where(eq(pools.id, id));
        if (!p) throw new GantryError("NotFound", `no pool ${id}`);
        const [t] = await tx
          .insert(joinTokens)
          .values({ id: newId("jt"), poolId: id, hash: await sha256Hex(token), expiresAt })
          .returning();
        await audit(tx, c, "join-token.create", null, t!.id, { poolId: id });
        return t!;
      }),
    );
    poolTokens.add(id, { id: row.id, hash: row.hash, expiresAt: expiresAt?.getTime() ?? null });
    return c.json({ id: row.id, poolId: id, token, expiresAt: expiresAt?.toISOString() ?? null }, 201);
  },
);

poolsApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/pools/{id}/join-tokens/{tokenId}",
    tags: ["fleet"],
    summary: "Revoke a join token (registered workers keep their own tokens)",
    middleware: [admin] as const,
    request: {
      params: z.object({
        id: z
          .string()
          .max(200)
          .openapi({ param: { name: "id", in: "path" } }),
        tokenId: z
          .string()
          .max(200)
          .openapi({ param: { name: "tokenId", in: "path" } }),
      }),
    },
    responses: { 204: { description: "Revoked" }, ...errorsWith() },
  }),
  async (c) => {
    const { id, tokenId } = c.req.valid("param");
    await withDb(c.env, (db) =>
      db.transaction(async (tx) => {
        const [t] = await tx
          .update(joinTokens)
          .set({ revokedAt: new Date() })
          .where(and(eq(joinTokens.id, tokenId), eq(joinTokens.poolId, id), isNull(joinTokens.revokedAt)))
          .returning();
        if (!t) throw new GantryError("NotFound", `no active join token ${tokenId} in pool ${id}`);
        await audit(tx, c, "join-token.revoke", null, tokenId, { poolId: id });
      }),
    );
    poolTokens.remove(id, tokenId);
    return c.body(null, 204);
  },
);
