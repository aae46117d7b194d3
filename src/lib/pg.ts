// Postgres access from the Worker and its Durable Objects: always the Neon serverless driver + drizzle.
// A Pool cannot outlive the request that opened it in a stateless Worker, so withDb opens and ends one per
// use; a Durable Object may keep one between its own calls (KeptDb).
import { neonConfig, Pool } from "@neondatabase/serverless";
import { drizzle, type NeonDatabase } from "drizzle-orm/neon-serverless";
import * as schema from "../../db/schema.ts";
import type { Env } from "../env.ts";

export type Db = NeonDatabase<typeof schema>;
/** A transaction handle; most helpers accept either (`Q`). */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
export type Q = Db | Tx;

let localConfigured = false;

/** Local development and tests reach a plain Postgres through a ws→TCP proxy; production is untouched. */
function configure(env: Env): void {
  if (!env.PG_WS_PROXY || localConfigured) return;
  const proxy = env.PG_WS_PROXY;
  neonConfig.wsProxy = (host, port) => `${proxy}/v1?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  // Pipelining the startup only works with cleartext passwords; against trust auth or PGlite it wedges the
  // server for every client (research/spike.md §7.5).
  neonConfig.pipelineConnect = false;
  localConfigured = true;
}

export class DatabaseUnavailable extends Error {}

export async function withDb<T>(env: Env, fn: (db: Db) => Promise<T>, timeoutMs = 30_000): Promise<T> {
  if (!env.DATABASE_URL) throw new DatabaseUnavailable("DATABASE_URL is not configured");
  configure(env);
  const pool = newPool(env.DATABASE_URL, 4);
  try {
    return await withDeadline(() => fn(drizzle({ client: pool, schema })), timeoutMs);
  } finally {
    await endPool(pool);
  }
}

/**
 * A pool a Durable Object keeps between its own calls. Unlike a stateless Worker request, an object's I/O
 * context lives as long as the object, so its outbox flushes (ten a second under load) can share one
 * connection instead of paying a WebSocket + Postgres session start each: measured at ~20 % of the
 * runtime CPU of a submit (bench/analysis.md). The connection closes itself after `idleMs` without use, and
 * any failure discards the pool, so the next call starts from a fresh connection.
 */
export class KeptDb {
  private pool: Pool | null = null;
  private db: Db | null = null;
  /** Postgres sessions opened so far (the driver's "connect" events): what reuse saves, observable. */
  sessions = 0;

  constructor(private idleMs = 5_000) {}

  async use<T>(env: Env, fn: (db: Db) => Promise<T>, timeoutMs = 30_000): Promise<T> {
    if (!env.DATABASE_URL) throw new DatabaseUnavailable("DATABASE_URL is not configured");
    configure(env);
    if (!this.pool || !this.db) {
      // One connection: an object runs one flush at a time.
      this.pool = newPool(env.DATABASE_URL, 1, this.idleMs);
      this.pool.on("connect", () => this.sessions++);
      this.db = drizzle({ client: this.pool, schema });
    }
    const db = this.db;
    try {
      return await withDeadline(() => fn(db), timeoutMs);
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    this.db = null;
    if (pool) await endPool(pool);
  }
}

function newPool(url: string, max: number, idleTimeoutMillis = 10_000): Pool {
  const pool = new Pool({ connectionString: url, max, connectionTimeoutMillis: 5000, idleTimeoutMillis });
  pool.on("error", () => {}); // surfaced through the awaited query instead
  return pool;
}

function endPool(pool: Pool): Promise<unknown> {
  return Promise.race([pool.end().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
}

/** Runs fn with a deadline, and turns "Postgres cannot be reached" into DatabaseUnavailable. */
async function withDeadline<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // A database that stops answering mid-query (rather than refusing connections) must not hang the
    // caller forever: an outbox flush stuck on it would never be retried.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DatabaseUnavailable(`no answer from Postgres within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return await Promise.race([fn(), deadline]);
  } catch (e) {
    if (e instanceof DatabaseUnavailable) throw e;
    if (classifyPgError(e) === "unavailable") {
      throw new DatabaseUnavailable(String(rootCause(e)?.message ?? e).split("\nparams:")[0]);
    }
    throw e;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** The innermost error: drizzle wraps the driver's error ("Failed query: …") in `cause`. */
function rootCause(e: unknown): (Error & { code?: string }) | null {
  let cur = e as (Error & { cause?: unknown; code?: string }) | null;
  for (let i = 0; i < 10 && cur?.cause; i++) cur = cur.cause as Error & { cause?: unknown; code?: string };
  return cur ?? null;
}

/**
 * "refused": Postgres answered and rejected this data or statement (SQLSTATE class 22 data exception,
 * 23 integrity, 42 syntax/undefined) — retrying the same thing cannot help.
 * "unavailable": the way there failed (connection refused, terminated, timed out; SQLSTATE class 08
 * connection, 53 resources, 57 operator intervention such as shutdown) — retry later.
 * "other": anything else, including errors the caller's own code threw inside withDb — passed through.
 */
export function classifyPgError(e: unknown): "refused" | "unavailable" | "other" {
  for (let cur = e as (Error & { cause?: unknown; code?: string }) | null, i = 0; cur && i < 10; i++) {
    const code = typeof cur.code === "string" ? cur.code : "";
    if (/^(22|23|42)[0-9A-Z]{3}$/.test(code)) return "refused";
    if (/^(08|53|57|58)[0-9A-Z]{3}$/.test(code)) return "unavailable";
    const m = String(cur.message ?? "");
    if (
      /ECONNREFUSED|ECONNRESET|WebSocket|Connection terminated|connection timeout|timeout expired|Network connection lost|socket/i.test(
        m,
      )
    ) {
      return "unavailable";
    }
    cur = cur.cause as (Error & { cause?: unknown; code?: string }) | null;
  }
  return "other";
}
