// Gateway middleware: request id, JSON access log, CORS, body limit, and authentication of the four token
// kinds. Token checks are routed to the object that owns the token (the tenant's queue for API keys, the
// worker's fleet shard for worker tokens) and cached per isolate for a few seconds, so revocation takes
// effect everywhere within AUTH_CACHE_MS while hot paths make no extra call on a warm cache.

import { and, eq, gt, gte, isNull, or } from "drizzle-orm";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { joinTokens, pools, tenants } from "../db/schema.ts";
import { parseToken, sha256Hex, timingSafeEqualHex } from "../src/domain/ids.ts";
import { GantryError, unwrap } from "../src/errors.ts";
import { KnownTenants, type TenantsSince } from "../src/lib/known-tenants.ts";
import { type OwnerToken, OwnerTokens } from "../src/lib/owner-tokens.ts";
import { withDb } from "../src/lib/pg.ts";
import { fleetStub, shardOfWorker, tenantStub } from "../src/stubs.ts";
import type { HonoEnv, Principal } from "./hono-env.ts";
import { problem } from "./problem.ts";

export const AUTH_CACHE_MS = 3000;
const CACHE_MAX = 20_000;
const cache = new Map<string, { p: Principal | null; exp: number }>();

/** Tenant ids known to exist: forged owner ids are refused before any tenant object is touched. */
export const knownTenants = new KnownTenants();

/** Ids of `table` (tenants or pools) created at or after `since`: what the id sets read. */
const idsSince =
  (table: typeof tenants | typeof pools) =>
  (env: HonoEnv["Bindings"]): TenantsSince =>
  async (since) => {
    const rows = await withDb(env, (db) =>
      db
        .select({ id: table.id, createdAt: table.createdAt })
        .from(table as typeof tenants) // one table type: drizzle's from() takes no union
        .where(gte(table.createdAt, new Date(since))),
    );
    return rows.map((r) => ({ id: r.id, createdAt: r.createdAt.getTime() }));
  };

export const tenantsSince = idsSince(tenants);

/** Pool ids, the same filter as for tenants: join tokens naming a pool nobody created cost no read. */
export const knownPools = new KnownTenants();
const poolsSince = idsSince(pools);

/** Join tokens per pool: made-up join tokens cost Postgres at most one read per pool per second. */
export const poolTokens = new OwnerTokens();

/** Each worker's token: made-up worker tokens cost its fleet shard at most one call per second. */
export const workerTokens = new OwnerTokens();

const activeJoinTokens =
  (env: HonoEnv["Bindings"]) =>
  async (poolId: string): Promise<OwnerToken[]> => {
    const rows = await withDb(env, (db) =>
      db
        .select({ id: joinTokens.id, hash: joinTokens.hash, expiresAt: joinTokens.expiresAt })
        .from(joinTokens)
        .where(
          and(
            eq(joinTokens.poolId, poolId),
            isNull(joinTokens.revokedAt),
            or(isNull(joinTokens.expiresAt), gt(joinTokens.expiresAt, new Date())),
          ),
        ),
    );
    return rows.map((r) => ({ id: r.id, hash: r.hash, expiresAt: r.expiresAt?.getTime() ?? null }));
  };

/** Test hook: forget cached credentials (a revocation then takes effect at once in this isolate). */
export function clearAuthCache(): void {
  cache.clear();
  knownTenants.clear();
  poolTokens.clear();
  workerTokens.clear();
  knownPools.clear();
}

export const requestId: MiddlewareHandler<HonoEnv> = async (c, next) => {
  const given = c.req.header("x-request-id");
  const id = given && /^[\w.:-]{1,128}$/.test(given) ? given : crypto.randomUUID();
  c.set("requestId", id);
  c.set("principal", null);
  c.set("authError", null);
  const started = Date.now();
  c.set("startedAt", started);
  await next();
  // The hottest routes build their Response with it already (one copy of a finished Response fewer).
  if (!c.res.headers.has("x-request-id")) c.header("x-request-id", id);
  if (c.env.LOG_REQUESTS !== "0") {
    const p = c.get("principal");
    // Never the Authorization header, query strings or bodies: they can carry secrets.
    console.log(
      JSON.stringify({
        t: new Date().toISOString(),
        level: "info",
        msg: "request",
        requestId: id,
        method: c.req.method,
        path: new URL(c.req.url).pathname,
        status: c.res.status,
        ms: Date.now() - started,
        actor: p ? `${p.kind}:${p.id}` : null,
      }),
    );
  }
};

/** For the hottest routes' responses: the header set while the Response is built, not copied in after. */
export const requestIdHeader = (c: Context<HonoEnv>) => ({ "x-request-id": c.get("requestId") });

export const corsFromEnv: MiddlewareHandler<HonoEnv> = async (c, next) => {
  const origins = (c.env.CORS_ORIGINS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (origins.length === 0) return next();
  return cors({
    origin: origins.includes("*") ? "*" : origins,
    allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
    exposeHeaders: ["X-Request-Id", "Retry-After"],
    maxAge: 600,
  })(c, next);
};

export const BODY_LIMIT = 64 * 1024;

const tooLarge = (c: Context<HonoEnv>) =>
  problem(c, "PayloadTooLarge", `request body exceeds ${BODY_LIMIT} bytes (64 KiB)`);

/** Counts the bytes of a body sent without a Content-Length (chunked) as it arrives. */
const streamingLimit = bodyLimit({ maxSize: BODY_LIMIT, onError: (c) => tooLarge(c as Context<HonoEnv>) });

/**
 * Hono's bodyLimit, minus its first step: it reads `request.body`, which has the runtime build a stream
 * object for every request (2 % of a submit's Worker time). A GET or HEAD has no body, and with a
 * Content-Length (and no Transfer-Encoding) the declared length is all that bodyLimit checks too.
 */
export const limitBody: MiddlewareHandler<HonoEnv> = async (c, next) => {
  const method = c.req.method;
  if (method === "GET" || method === "HEAD") return next();
  const headers = c.req.raw.headers;
  const length = headers.get("content-length");
  if (length !== null && !headers.has("transfer-encoding")) {
    return Number.parseInt(length, 10) > BODY_LIMIT ? tooLarge(c) : next();
  }
  return streamingLimit(c, next);
};

/** Resolves the bearer token (if any) to a principal. Never rejects: the route guards decide. */
export const authenticate: MiddlewareHandler<HonoEnv> = async (c, next) => {
  const header = c.req.header("authorization");
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) c.set("authError", "Authorization header must be 'Bearer <token>'");
    else {
      const p = await resolve(c, m[1]!);
      if (p) c.set("principal", p);
      else c.set("authError", "token is not valid");
    }
  }
  await next();
};

let adminHash: { token: string; hash: string } | null = null;

async function adminTokenHash(token: string): Promise<string> {
  if (adminHash?.token !== token) adminHash = { token, hash: await sha256Hex(token) };
  return adminHash.hash;
}

async function resolve(c: Context<HonoEnv>, token: string): Promise<Principal | null> {
  // A warm cache answers without hashing: the hot paths (submit, heartbeat) pay nothing for auth.
  const now = Date.now();
  const hit = cache.get(token);
  if (hit && hit.exp > now) return hit.p;
  const hash = await sha256Hex(token);
  // Compare digests in constant time: equal lengths whatever the token, and no early exit.
  if (c.env.ADMIN_TOKEN && timingSafeEqualHex(hash, await adminTokenHash(c.env.ADMIN_TOKEN))) {
    return remember(token, { kind: "admin", id: "admin" }, now);
  }
  const parsed = parseToken(token);
  if (!parsed) return null;
  let p: Principal | null = null;
  if (parsed.kind === "tenant") {
    if ((await knownTenants.exists(parsed.owner, tenantsSince(c.env))) === "yes") {
      const k = await tenantStub(c.env, parsed.owner).authenticate(hash);
      if (k) p = { kind: "tenant", id: k.keyId, ...k, keyHash: hash };
    }
  } else if (parsed.kind === "worker") {
    const shard = shardOfWorker(parsed.owner);
    if (shard) {
      const r = await workerTokens.check(parsed.owner, hash, async (workerId) => {
        const h = await fleetStub(c.env, shard).tokenHash(workerId);
        return h ? [{ id: workerId, hash: h, expiresAt: null }] : [];
      });
      const worker = {
        kind: "worker",
        id: parsed.owner,
        workerId: parsed.owner,
        shard,
        tokenHash: hash,
      } as const;
      // Remembered from when the shard said so (see join tokens below).
      if (r.ok) return remember(token, worker, r.readAt);
    }
  } else {
    if ((await knownPools.exists(parsed.owner, poolsSince(c.env))) === "no")
      return remember(token, null, now);
    const r = await poolTokens.check(parsed.owner, hash, activeJoinTokens(c.env));
    // Remembered from when Postgres said so, so a revocation still lands within AUTH_CACHE_MS.
    if (r.ok)
      return remember(
        token,
        { kind: "join", id: r.tokenId, poolId: parsed.owner, tokenHash: hash },
        r.readAt,
      );
  }
  return remember(token, p, now);
}

function remember(token: string, p: Principal | null, since: number): Principal | null {
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(token, { p, exp: since + AUTH_CACHE_MS });
  return p;
}

// ---------------------------------------------------------------- guards

function unauthenticated(c: Context<HonoEnv>): never {
  throw new GantryError(
    "Unauthorized",
    c.get("authError") ?? "missing bearer token: send 'Authorization: Bearer <token>'",
  );
}

type Kind = Principal["kind"];

/** 401 without a valid token; 403 when the token is valid but of a kind this route does not accept. */
export function allow(...kinds: Kind[]): MiddlewareHandler<HonoEnv> {
  return async (c, next) => {
    const p = c.get("principal");
    if (!p) unauthenticated(c);
    if (!kinds.includes(p.kind)) {
      throw new GantryError("Forbidden", `this route is not available to ${describe(p)}`);
    }
    await next();
  };
}

/** Tenant keys with at least `role` (admin ⊇ member). */
export function tenantRole(role: "member" | "admin"): MiddlewareHandler<HonoEnv> {
  return async (c, next) => {
    const p = c.get("principal");
    if (!p) unauthenticated(c);
    if (p.kind !== "tenant")
      throw new GantryError("Forbidden", `this route needs a tenant API key, not ${describe(p)}`);
    if (role === "admin" && p.role !== "admin") {
      throw new GantryError("Forbidden", "this route needs a tenant key with role admin");
    }
    await next();
  };
}

function describe(p: Principal): string {
  switch (p.kind) {
    case "admin":
      return "the platform admin token";
    case "tenant":
      return `a tenant key (role ${p.role})`;
    case "worker":
      return "a worker token";
    case "join":
      return "a join token";
  }
}

/**
 * Tenant keys spend a token of their tenant's read bucket (rate limits set by the platform admin; none set:
 * free). For read routes the tenant's object does not serve itself (those check inside the object), so a
 * tenant cannot hammer Postgres past its limits. Other principals pass untouched.
 */
export const tenantReadLimit: MiddlewareHandler<HonoEnv> = async (c, next) => {
  const p = c.get("principal");
  if (p?.kind === "tenant") unwrap(await tenantStub(c.env, p.tenantId).rateCheck("read"));
  await next();
};

export function tenantOf(c: Context<HonoEnv>): Extract<Principal, { kind: "tenant" }> {
  const p = c.get("principal");
  if (p?.kind !== "tenant") throw new GantryError("Forbidden", "this route needs a tenant API key");
  return p;
}

export function actorOf(c: Context<HonoEnv>): string {
  const p = c.get("principal");
  if (!p) return "anonymous";
  return p.kind === "tenant" ? `key:${p.keyId}` : `${p.kind}:${p.id}`;
}
