// GET /v1/events: the tenant's job transitions, live. WebSocket (Upgrade: websocket) or Server-Sent Events
// (Accept: text/event-stream) from the tenant's Durable Object; both resume after the last event id
// (`Last-Event-ID` header or `?after=`). Without either, a JSON page of recent events (polling).
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { GantryError } from "../src/errors.ts";
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
          .openapi({
            description:
              'Resume after this event id (an id past the newest is a 400 carrying latestEventId); "latest" starts from now',
          }),
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
    const afterPath = q.after !== undefined ? "query.after" : "header.last-event-id";
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
      const res = (await stub.fetch(new Request(url, { headers }))) as unknown as Response;
      if (res.status === 400 && typeof after === "number") {
        const { latest } = await res.json<{ latest: number }>();
        throw eventIdAhead(after, latest, afterPath);
      }
      return res;
    }
    const page = await stub.recentEvents(after ?? 0, q.job ?? null, q.limit);
    if (typeof after === "number" && after > page.latest) throw eventIdAhead(after, page.latest, afterPath);
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

/**
 * A resume point past the newest event id the tenant has issued: nothing would ever arrive after it (a
 * poller would keep asking for the same empty page), so it is a client error, with the id to use instead.
 */
function eventIdAhead(after: number, latest: number, path: string): GantryError {
  const message = `event id ${after} is past this tenant's newest event id (${latest}): resume from an id this stream gave you, or from "latest"`;
  return new GantryError("ValidationFailed", message, [{ path, message }], { latestEventId: latest });
}
