// The local database: embedded PGlite (default, data under a directory, nothing but npm needed) or an
// existing Postgres given by DATABASE_URL. Used by `npm start`, the test global setup and the benchmarks.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";

export const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "migrations");

export interface LocalDatabase {
  /** Connection string the Node side and the proxy use (host:port reachable on loopback). */
  url: string;
  /** host:port of the server, for the WebSocket proxy's allow-list. */
  address: string;
  kind: "pglite" | "postgres";
  stop(): Promise<void>;
}

export function addressOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || "5432"}`;
}

/** Embedded Postgres (PGlite) served over TCP on loopback. `dataDir` undefined = in memory. */
export async function startPglite(dataDir?: string): Promise<LocalDatabase> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { PgliteServer } = await import("./pglite-server.ts");
  if (dataDir) fs.mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir ? { dataDir } : {});
  const server = new PgliteServer(db);
  const port = await server.start();
  const conn = `127.0.0.1:${port}`;
  const url = `postgres://postgres@${conn}/postgres`;
  return {
    url,
    address: conn,
    kind: "pglite",
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}

/**
 * A fresh, uniquely named database on an existing server (tests and CI must not share state between runs).
 * Dropped again by stop().
 */
export async function createFreshDatabase(serverUrl: string, prefix = "gantry_test"): Promise<LocalDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  return {
    url,
    address: addressOf(url),
    kind: "postgres",
    async stop() {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** An existing database used as is (npm start with DATABASE_URL): nothing to stop. */
export function existingDatabase(url: string): LocalDatabase {
  return { url, address: addressOf(url), kind: "postgres", stop: async () => {} };
}

export async function applyMigrations(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_DIR });
  } finally {
    await client.end();
  }
}
