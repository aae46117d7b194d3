// The one Worker: the HTTP API (Hono), the cron tick, and the Durable Object classes.
import { app } from "../functions/app.ts";
import { cronTick } from "./cron.ts";
import type { Env } from "./env.ts";

export { FleetShard } from "./do/fleet-shard.ts";
export { Scheduler } from "./do/scheduler.ts";
export { TenantQueue } from "./do/tenant-queue.ts";

export default {
  fetch: app.fetch,
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(cronTick(env, controller.scheduledTime));
  },
} satisfies ExportedHandler<Env>;
