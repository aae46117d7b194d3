// GET /v1/events: the tenant's job transitions, live. WebSocket (Upgrade: websocket) or Server-Sent Events
// (Accept: text/event-stream) from the tenant's Durable Object; both resume after the last event id
// (`Last-Event-ID` header or `?after=`). Without either, a JSON page of recent events (polling).
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { tenantStub } from "../src/stubs.ts";
import { tenantOf, tenantReadLimit, tenantRole } from "./gateway.ts";
import type { HonoEnv } from "./hono-env.ts";
import { errorsWith, Loose } from "./schemas.ts";
import { validationHook } from "./validation.ts";

export const eventsApp = new OpenAPIHono<HonoEnv>({ defaultHook: validationHook });

eventsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/events",
    tags: ["events"],
    summary: "Live job transitions: WebSocket, Server-Sent Events, or a JSON page; resumable by event id",
    middleware: [tenantRole("member"), tenantReadLimit] as const,
    request: {
      query: z.object({
        after: z
          .union([z.literal("latest"), z.coerce.number().int().min(0)])
          .optional()
          .openapi({ description: 'Resume after this event id; "latest" starts from now' }),
        job: z.string().max(200).optional().openapi({ description: "Only this job's transitions" }),
        limit: z.coerce
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(100)
          .openapi({ description: "JSON page size" }),
      }),
    },
    responses: {
      200: {
        description: "text/event-stream (SSE) or a JSON page",
        content: {
          "text/event-stream": { schema: z.string() },
          "application/json": {
            schema: z.object({ items: z.array(Loose), lastEventId: z.number().int().nullable() }),
          },
        },
      },
      101: { description: "WebSocket: {type:'event', seq, jobId, from, to, …} messages" },
      ...errorsWith(),
    },
  }),
  async (c) => {
    const who = tenantOf(c);
    const q = c.req.valid("query");
    const lastId = c.req.header("last-event-id");
    const after = q.after ?? (lastId && /^\d+$/.test(lastId) ? Number(lastId) : undefined);
    const stub = tenantStub(c.env, who.tenantId);
    const streaming =
      c.req.header("upgrade")?.toLowerCase() === "websocket" ||
      (c.req.header("accept") ?? "").includes("text/event-stream");
    if (streaming) {
      const url = new URL("https://tenant/events");
      if (after !== undefined) url.searchParams.set("after", String(after));
      if (q.job) url.searchParams.set("job", q.job);
      const headers = new Headers();
      for (const h of [
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
      ]) {
        const v = c.req.header(h);
        if (v) headers.set(h, v);
      }
      return stub.fetch(new Request(url, { headers })) as unknown as Response;
    }
    const page = await stub.recentEvents(after ?? 0, q.job ?? null, q.limit);
    const last = page.items[page.items.length - 1];
    return c.json(
      {
        items: page.items as unknown as Record<string, unknown>[],
        // Where the next page starts: the last event returned, else where this one started (or now).
        lastEventId: last ? last.seq : after === "latest" ? page.latest : (after ?? null),
      },
      200,
    );
  },
);
