// vitest globalSetup for the in-runtime (workerd) tests: the database and the ws proxy run here in Node,
// and their addresses reach the Worker as bindings through provide/inject.
import type { TestProject } from "vitest/node";
import { startTestDatabase } from "./database.ts";

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string;
    wsProxy: string;
  }
}

export default async function setup(project: TestProject) {
  const t = await startTestDatabase();
  project.provide("databaseUrl", t.db.url);
  project.provide("wsProxy", `127.0.0.1:${t.proxy.port}`);
  return async () => t.stop();
}
