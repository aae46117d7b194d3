// The live event stream: every transition of a job, in order, over WebSocket and SSE; a reconnect with the
// last id loses nothing.
import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index.ts";
import {
  api,
  awaitAssignments,
  complete,
  createPool,
  createTenant,
  expectProblem,
  gpuTypeName,
  registerWorker,
  submit,
  until,
} from "./helpers.ts";

interface Ev {
  type?: string;
  seq: number;
  jobId: string;
  from: string | null;
  to: string;
}

async function openWs(key: string, query = "") {
  const r = await worker.fetch(
    new Request(`https://gantry.test/v1/events${query}`, {
      headers: { upgrade: "websocket", authorization: `Bearer ${key}` },
    }),
    env,
    createExecutionContext(),
  );
  expect(r.status).toBe(101);
  const ws = r.webSocket!;
  const got: Ev[] = [];
  ws.addEventListener("message", (m) => {
    const d = JSON.parse(m.data as string) as Ev;
    if (d.type === "event") got.push(d);
  });
  ws.accept();
  return { ws, got };
}

function sseRequest(key: string, lastEventId?: number | string) {
  const headers: Record<string, string> = { accept: "text/event-stream", authorization: `Bearer ${key}` };
  if (lastEventId !== undefined) headers["last-event-id"] = String(lastEventId);
  return worker.fetch(
    new Request("https://gantry.test/v1/events", { headers }),
    env,
    createExecutionContext(),
  );
}

async function openSse(key: string, lastEventId?: number) {
  const headers: Record<string, string> = { accept: "text/event-stream", authorization: `Bearer ${key}` };
  if (lastEventId !== undefined) headers["last-event-id"] = String(lastEventId);
  const r = await worker.fetch(
    new Request("https://gantry.test/v1/events", { headers }),
    env,
    createExecutionContext(),
  );
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toContain("text/event-stream");
  const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
  const got: (Ev & { id: number })[] = [];
  let buf = "";
  let stopped = false;
  let ended = false;
  void (async () => {
    while (!stopped) {
      const { value, done } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      buf += value;
      for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const id = /^id: (\d+)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (id && data) got.push({ ...(JSON.parse(data) as Ev), id: Number(id) });
      }
    }
  })();
  return {
    got,
    /** The server ended the stream. */
    ended: () => ended,
    close: async () => {
      stopped = true;
      await reader.cancel().catch(() => {});
    },
  };
}

describe("events", () => {
  it("a WebSocket subscriber receives every transition of a job, in order", async () => {
    const t = await createTenant();
    const type = gpuTypeName("EV");
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    const sub = await openWs(t.memberKey);
    const s = await submit(t.memberKey, { gpuType: type });
    const [a] = await awaitAssignments(w);
    await complete(w, a!);
    await until(async () => sub.got.filter((e) => e.jobId === s.body.id).length >= 4, 5000, "4 events");
    const mine = sub.got.filter((e) => e.jobId === s.body.id);
    expect(mine.map((e) => e.to)).toEqual(["queued", "scheduled", "running", "succeeded"]);
    expect(mine.map((e) => e.from)).toEqual([null, "queued", "scheduled", "running"]);
    const seqs = mine.map((e) => e.seq);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    sub.ws.close();
  });

  it("SSE resumes after the last event id without losing or repeating anything", async () => {
    const t = await createTenant();
    const type = gpuTypeName("ES");
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    const first = await openSse(t.memberKey);
    const j1 = await submit(t.memberKey, { gpuType: type, name: "one" });
    await until(async () => first.got.length >= 1, 5000, "first event");
    const lastSeen = first.got[first.got.length - 1]!.id;
    await first.close();
    // While nobody listens, the job runs to completion and another is submitted.
    const [a] = await awaitAssignments(w);
    await complete(w, a!);
    const j2 = await submit(t.memberKey, { gpuType: type, name: "two" });
    const second = await openSse(t.memberKey, lastSeen);
    await until(async () => second.got.some((e) => e.jobId === j2.body.id), 5000, "resumed stream");
    const all = [...first.got, ...second.got];
    const ids = all.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length); // nothing twice
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(all.filter((e) => e.jobId === j1.body.id).map((e) => e.to)).toEqual([
      "queued",
      "scheduled",
      "running",
      "succeeded",
    ]);
    // Nothing missing: the stream matches the job's own event history.
    const hist = await api<{ items: { seq: number }[] }>("GET", `/v1/jobs/${j1.body.id}/events`, {
      token: t.memberKey,
    });
    expect(all.filter((e) => e.jobId === j1.body.id).map((e) => e.id)).toEqual(
      hist.body.items.map((e) => e.seq),
    );
    await second.close();
  });

  it("the JSON page serves polling clients and another tenant sees nothing", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const s = await submit(a.memberKey, { gpuType: "NOWHERE" });
    const page = await api<{ items: Ev[]; lastEventId: number }>("GET", "/v1/events?after=0", {
      token: a.memberKey,
    });
    expect(page.body.items.map((e) => e.jobId)).toContain(s.body.id);
    const other = await api<{ items: Ev[] }>("GET", "/v1/events?after=0", { token: b.memberKey });
    expect(other.body.items).toEqual([]);
    const filtered = await api<{ items: Ev[] }>("GET", `/v1/events?after=0&job=${s.body.id}`, {
      token: a.memberKey,
    });
    expect(filtered.body.items.every((e) => e.jobId === s.body.id)).toBe(true);
  });

  it("a resume point past the newest event id is a 400 that names it, on the JSON page, SSE and WebSocket", async () => {
    const t = await createTenant();
    await submit(t.memberKey, { gpuType: "NOWHERE" });
    const now = await api<{ items: Ev[]; lastEventId: number }>("GET", "/v1/events?after=latest", {
      token: t.memberKey,
    });
    const latest = now.body.lastEventId;
    expect(latest).toBeGreaterThan(0);
    // At the newest id: nothing yet, and the page says where to go on from.
    const atEnd = await api<{ items: Ev[]; lastEventId: number }>("GET", `/v1/events?after=${latest}`, {
      token: t.memberKey,
    });
    expect(atEnd.status).toBe(200);
    expect(atEnd.body).toEqual({ items: [], lastEventId: latest });
    // Past it: a poller would ask for the same empty page forever.
    const ahead = await api("GET", `/v1/events?after=${latest + 5}`, { token: t.memberKey });
    expectProblem(ahead, 400, "ValidationFailed");
    const body = ahead.body as unknown as {
      errors: { path: string }[];
      latestEventId: number;
      detail: string;
    };
    expect(body.errors[0]!.path).toBe("query.after");
    expect(body.latestEventId).toBe(latest);
    expect(body.detail).toContain(String(latest));

    const sse = await sseRequest(t.memberKey, "99999999999999999999");
    expect(sse.status).toBe(400);
    const sseBody = (await sse.json()) as { code: string; errors: { path: string }[]; latestEventId: number };
    expect(sseBody).toMatchObject({ code: "ValidationFailed", latestEventId: latest });
    expect(sseBody.errors[0]!.path).toBe("header.last-event-id");
    const ws = await worker.fetch(
      new Request(`https://gantry.test/v1/events?after=${latest + 1}`, {
        headers: { upgrade: "websocket", authorization: `Bearer ${t.memberKey}` },
      }),
      env,
      createExecutionContext(),
    );
    expect(ws.status).toBe(400);
    expect(((await ws.json()) as { latestEventId: number }).latestEventId).toBe(latest);
    // The resume point that is exactly the newest id streams.
    const ok = await sseRequest(t.memberKey, latest);
    expect(ok.status).toBe(200);
    await ok.body!.cancel();
  });

  it("a replay longer than its limit ends the stream there, and the reconnect goes on without a hole", async () => {
    const t = await createTenant();
    // 10,000 queued tasks are 10,000 events in one request, then one more job after them.
    const arr = await submit(t.memberKey, { gpuType: "NOWHERE", array: { size: 10_000 } });
    expect(arr.status, arr.text).toBe(201);
    const last = await submit(t.memberKey, { gpuType: "NOWHERE", name: "after-the-array" });
    const first = await openSse(t.memberKey, 0);
    // The first stream stops at the replay limit instead of going live after a hole.
    await until(async () => first.ended(), 20_000, "the first stream to end");
    expect(first.got.length).toBe(10_000);
    const second = await openSse(t.memberKey, first.got[first.got.length - 1]!.id);
    await until(async () => second.got.some((e) => e.jobId === last.body.id), 10_000, "the rest");
    expect(second.ended()).toBe(false); // caught up: this one stays live
    const ids = [...first.got, ...second.got].map((e) => e.id);
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => ids[0]! + i)); // consecutive
    expect(new Set([...first.got, ...second.got].map((e) => e.jobId)).size).toBe(10_001);
    await second.close();

    // Over a WebSocket: the page, then a "more" message with where to resume, then a close.
    const r = await worker.fetch(
      new Request("https://gantry.test/v1/events?after=0", {
        headers: { upgrade: "websocket", authorization: `Bearer ${t.memberKey}` },
      }),
      env,
      createExecutionContext(),
    );
    expect(r.status).toBe(101);
    const ws = r.webSocket!;
    let events = 0;
    let more: { after: number } | null = null;
    let closed: number | null = null;
    ws.addEventListener("message", (m) => {
      const d = JSON.parse(m.data as string) as { type: string; after: number };
      if (d.type === "event") events++;
      if (d.type === "more") more = d;
    });
    ws.addEventListener("close", (e) => {
      closed = e.code;
    });
    ws.accept();
    await until(async () => closed !== null, 20_000, "the socket to close");
    expect(events).toBe(10_000);
    expect(more).toEqual({ type: "more", after: first.got[first.got.length - 1]!.id });
    expect(closed).toBe(4000);
  }, 60_000);
});
