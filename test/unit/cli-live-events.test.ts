// The live event feed behind --wait, --watch and --follow, against a scripted HTTP server: SSE with
// reconnect and Last-Event-ID, de-duplication, the JSON polling fallback, and errors that end it.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Api } from "../../cli/lib/api.ts";
import { ApiError } from "../../cli/lib/http.ts";
import { EventFeed, type LiveEvent } from "../../cli/lib/live-events.ts";

const ev = (seq: number, to = "running"): LiveEvent => ({
  seq,
  jobId: "job_1",
  at: new Date(0).toISOString(),
  from: "queued",
  to,
  reason: null,
  message: null,
  attempt: 1,
  lease: null,
  workerId: null,
  exitCode: null,
});
const frame = (e: LiveEvent) => `id: ${e.seq}\nevent: job\ndata: ${JSON.stringify(e)}\n\n`;

interface Seen {
  url: URL;
  headers: http.IncomingHttpHeaders;
}

let server: http.Server | null = null;
const controllers: AbortController[] = [];

afterEach(async () => {
  for (const c of controllers) c.abort();
  controllers.length = 0;
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  server = null;
});

async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen[]) => void) {
  const seen: Seen[] = [];
  server = http.createServer((req, res) => {
    const s = { url: new URL(req.url ?? "/", "http://x"), headers: req.headers };
    seen.push(s);
    handler(req, res, seen);
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { api: new Api(url, "tok"), seen };
}

function feed(api: Api, o: Partial<ConstructorParameters<typeof EventFeed>[1]> = {}) {
  const c = new AbortController();
  controllers.push(c);
  return { feed: new EventFeed(api, { signal: c.signal, pollIntervalMs: 20, ...o }), controller: c };
}

async function take(f: EventFeed, n: number): Promise<number[]> {
  const got: number[] = [];
  for await (const e of f) {
    got.push(e.seq);
    if (got.length === n) break;
  }
  return got;
}

const sse = (res: http.ServerResponse) =>
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });

describe("EventFeed", () => {
  it("reconnects after a dropped stream with Last-Event-ID and skips repeated events", async () => {
    const { api, seen } = await serve((_req, res, seen) => {
      sse(res);
      res.write("retry: 2000\n: hello\n\n");
      if (seen.length === 1) {
        res.end(frame(ev(1)) + frame(ev(2)));
      } else {
        // A server that replays one event too many: the feed drops the duplicate.
        res.write(frame(ev(2)) + frame(ev(3, "succeeded")));
      }
    });
    const { feed: f } = feed(api, { job: "job_1", after: 0 });
    expect(await take(f, 3)).toEqual([1, 2, 3]);
    expect(seen[0]!.url.searchParams.get("job")).toBe("job_1");
    expect(seen[0]!.url.searchParams.get("after")).toBe("0");
    expect(seen[0]!.headers.accept).toBe("text/event-stream");
    expect(seen[0]!.headers.authorization).toBe("Bearer tok");
    expect(seen[1]!.headers["last-event-id"]).toBe("2");
    expect(seen[1]!.url.searchParams.get("after")).toBe("2");
    expect(f.lastEventId).toBe(3);
  });

  it("falls back to polling the JSON page when the answer is not an event stream", async () => {
    const all = [ev(1), ev(2), ev(3)];
    const warnings: string[] = [];
    const { api, seen } = await serve((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      const after = Number(url.searchParams.get("after") ?? 0);
      // Like a buffering proxy: JSON whatever the Accept header says.
      const items = all.filter((e) => e.seq > after);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ items, lastEventId: items.at(-1)?.seq ?? after }));
    });
    const { feed: f } = feed(api, { job: "job_1", after: 0, warn: (m) => warnings.push(m) });
    await f.ready;
    expect(await take(f, 3)).toEqual([1, 2, 3]);
    expect(warnings.join("\n")).toMatch(/polling for events instead/);
    expect(seen.some((s) => s.headers.accept === "application/json")).toBe(true);
  });

  it("polling from now on skips the events that already happened, in one call", async () => {
    let all = Array.from({ length: 1200 }, (_, i) => ev(i + 1)); // more than a page
    const { api, seen } = await serve((req, res) => {
      const param = new URL(req.url ?? "/", "http://x").searchParams.get("after") ?? "0";
      // As the server does: "latest" is an empty page whose lastEventId is the newest id.
      const newest = all.at(-1)?.seq ?? 0;
      const after = param === "latest" ? newest : Number(param);
      const items = all.filter((e) => e.seq > after).slice(0, 500);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ items, lastEventId: items.at(-1)?.seq ?? after }));
    });
    const { feed: f } = feed(api, { transport: "poll" });
    await f.ready;
    expect(seen.map((s) => s.url.searchParams.get("after"))).toEqual(["latest"]);
    all = [...all, ev(1201)];
    expect(await take(f, 1)).toEqual([1201]);
  });

  it("a resume point the server refuses as past its newest id goes on from that id, with a warning", async () => {
    const warnings: string[] = [];
    const { api, seen } = await serve((req, res, seen) => {
      if (seen.length === 1) {
        // The server's data was reset: our id 40 is past its newest, 7.
        res.writeHead(400, { "content-type": "application/problem+json" });
        res.end(
          JSON.stringify({
            title: "Bad Request",
            status: 400,
            code: "ValidationFailed",
            detail: "event id 40 is past this tenant's newest event id (7)",
            latestEventId: 7,
          }),
        );
        return;
      }
      expect(req.headers["last-event-id"]).toBe("7");
      sse(res);
      res.write(frame(ev(8, "succeeded")));
    });
    const { feed: f } = feed(api, { after: 40, warn: (m) => warnings.push(m) });
    expect(await take(f, 1)).toEqual([8]);
    expect(seen).toHaveLength(2);
    expect(warnings.join("\n")).toMatch(/event ids end at 7, before ours \(40\)/);
  });

  it("any other 400 still ends the feed with the error", async () => {
    const { api } = await serve((_req, res) => {
      res.writeHead(400, { "content-type": "application/problem+json" });
      res.end(JSON.stringify({ title: "Bad Request", status: 400, code: "ValidationFailed", detail: "job" }));
    });
    const { feed: f } = feed(api, { after: 3 });
    await expect(take(f, 1)).rejects.toMatchObject({ status: 400 });
  });

  it("ends with the API error when the key is refused (not retried)", async () => {
    const { api, seen } = await serve((_req, res) => {
      res.writeHead(401, { "content-type": "application/problem+json" });
      res.end(
        JSON.stringify({ title: "Unauthorized", status: 401, code: "Unauthorized", detail: "bad token" }),
      );
    });
    const { feed: f } = feed(api);
    await expect(f.ready).rejects.toBeInstanceOf(ApiError);
    await expect(take(f, 1)).rejects.toMatchObject({ status: 401 });
    expect(seen).toHaveLength(1);
  });

  it("gives up with the error when it never reached the server", async () => {
    const { api } = await serve(() => {});
    const port = new URL(api.baseUrl).port;
    server!.close();
    const down = new Api(`http://127.0.0.1:${port}`, "tok");
    const { feed: f } = feed(down, { maxAttemptsBeforeReady: 2 });
    await expect(f.ready).rejects.toThrow(/failed/);
    await expect(take(f, 1)).rejects.toThrow(/failed/);
  });

  it("stops when its signal aborts", async () => {
    const { api } = await serve((_req, res) => {
      sse(res);
      res.write(": open\n\n");
    });
    const { feed: f, controller } = feed(api);
    await f.ready;
    setTimeout(() => controller.abort(), 50);
    expect(await take(f, 1)).toEqual([]);
  });
});
