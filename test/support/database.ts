// The test database: a fresh one per run. Embedded PGlite by default (nothing but npm needed); with
// DATABASE_URL set, a new uniquely named database on that server (CI runs both).
import {
  applyMigrations,
  createFreshDatabase,
  type LocalDatabase,
  startPglite,
} from "../../db/local/postgres.ts";
import { startWsProxy, type WsProxy } from "../../db/local/ws-proxy.ts";

export interface TestDatabase {
  db: LocalDatabase;
  proxy: WsProxy;
  stop(): Promise<void>;
}

export async function startTestDatabase(): Promise<TestDatabase> {
  const server = process.env.DATABASE_URL;
  const db = server ? await createFreshDatabase(server) : await startPglite();
  await applyMigrations(db.url);
  const proxy = await startWsProxy({ allowed: [db.address] });
  return {
    db,
    proxy,
    async stop() {
      await proxy.close();
      await db.stop();
    },
  };
}
