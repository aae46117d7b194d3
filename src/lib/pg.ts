// Postgres access from the Worker and its Durable Objects: always the Neon serverless driver + drizzle.
// A Pool cannot outlive the request (or alarm) that opened it in Workers, so every use opens and ends one.
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

export async function withDb<T>(env: Env, fn: (db: Db) => Promise<T>): Promise<T> {
  if (!env.DATABASE_URL) throw new DatabaseUnavailable("DATABASE_URL is not configured");
  configure(env);
  const pool = new Pool({ connectionString: env.DATABASE_URL, max: 4, connectionTimeoutMillis: 5000 });
  pool.on("error", () => {}); // surfaced through the awaited query instead
  try {
    return await fn(drizzle({ client: pool, schema }));
  } catch (e) {
    if (isConnectionError(e)) throw new DatabaseUnavailable(String((e as Error).message ?? e));
    throw e;
  } finally {
    await pool.end().catch(() => {});
  }
}

function isConnectionError(e: unknown): boolean {
  const m = String((e as Error)?.message ?? e);
  return (
    /connect|WebSocket|ECONNREFUSED|terminated|timeout|Connection/i.test(m) && !/violates|syntax/i.test(m)
  );
}
