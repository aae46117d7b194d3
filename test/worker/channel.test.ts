// Heartbeats over the live channel (WebSocket frames into the fleet shard): the same answers and effects
// as POST /heartbeat, one reply per frame carrying its id, clear refusals for bad frames, and the worker's
// identity checked on every frame.
import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index.ts";
import {
  ADMIN,
  type Assignment,
  api,
  createPool,
  createTenant,
  getJob,
  gpuTypeName,
  registerWorker,
  submit,
  until,
} from "./helpers.ts";

interface Reply {
  type: string;
  id: string | null;
  ok: boolean;
  status?: number;
  code?: string;
  detail?: string;
  assignments?: Assignment[];
  cancel?: string[];
  drain?: boolean;
  rejected?: { jobId: string; code: string }[];
}

async function connect(w: { workerId: string; token: string }) {
  const r = await worker.fetch(
    new Request(`https://gantry.test/v1/workers/${w.workerId}/connect`, {
      headers: { upgrade: "websocket", authorization: `Bearer ${w.token}` },
    }),
    env,
    createExecutionContext(),
  );
  expect(r.status).toBe(101);
  const ws = r.webSocket!;
  const frames: Reply[] = [];
  ws.addEventListener("message", (m) => {
    frames.push(JSON.parse(m.data as string));
  });
  ws.accept();
  let seq = 0;
  /** Sends a frame and waits for the reply to `id` (or, for frames without one, the next reply). */
  const exchange = async (frame: string | ArrayBuffer, id: string | null = null) => {
    const before = frames.length;
    ws.send(frame);
    return until(
      async () => frames.slice(before).find((f) => f.type === "heartbeat" && f.id === id),
      5_000,
      `reply ${id}`,
    );
  };
  const heartbeat = (body: Record<string, unknown>) => {
    const id = `hb-${++seq}`;
    return exchange(JSON.stringify({ type: "heartbeat", id, ...body }), id);
  };
  return { ws, frames, exchange, heartbeat };
}

const workerState = async (id: string) => {
  const r = await api<{ items: { id: string; state: string; lastSeen?: string }[] }>("GET", "/v1/workers", {
    token: ADMIN,
  });
  return r.body.items.find((w) => w.id === id);
};

describe("heartbeats over the live channel", () => {
  it("carry running jobs and updates: a job runs to succeeded without any HTTP call from the worker", async () => {
    const type = gpuTypeName("CH");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    const ch = await connect(w);
    const first = await ch.heartbeat({ running: [] });
    expect(first).toMatchObject({ ok: true, assignments: [], cancel: [], drain: false, rejected: [] });
    expect((await workerState(w.workerId))?.state).toBe("alive");

    const s = await submit(t.memberKey, { gpuType: type });
    // Pushed on the channel, or found in a heartbeat's answer: either way the same lease.
    const a = await until(async () => {
      const pushed = ch.frames.find((f) => f.type === "assignments")?.assignments?.[0];
      if (pushed) return pushed;
      return (await ch.heartbeat({ running: [] })).assignments?.[0];
    });
    expect(a.jobId).toBe(s.body.id);
    const lease = { jobId: a.jobId, lease: a.lease };
    const running = await ch.heartbeat({ running: [lease], updates: [{ ...lease, state: "running" }] });
    expect(running).toMatchObject({ ok: true, rejected: [] });
    expect((await getJob(t.memberKey, s.body.id)).state).toBe("running");
    const done = await ch.heartbeat({
      running: [],
      updates: [{ ...lease, state: "succeeded", exitCode: 0, logTail: "hello\n" }],
    });
    expect(done).toMatchObject({ ok: true, rejected: [] });
    expect(await getJob(t.memberKey, s.body.id)).toMatchObject({ state: "succeeded", exitCode: 0 });
    const logs = await api<{ tail: string }>("GET", `/v1/jobs/${s.body.id}/logs`, { token: t.memberKey });
    expect(logs.body.tail).toBe("hello\n");
    // A late report for an old lease is refused per update, as over HTTP.
    const stale = await ch.heartbeat({
      running: [],
      updates: [{ ...lease, lease: a.lease - 1, state: "failed" }],
    });
    expect(stale.ok).toBe(true);
    expect(stale.rejected).toEqual([expect.objectContaining({ jobId: a.jobId, code: "StaleLease" })]);
    ch.ws.close();
  });

  it("refuses bad frames with the HTTP status and code, answering the frame's id, and changes nothing", async () => {
    const type = gpuTypeName("CB");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    const ch = await connect(w);
    const s = await submit(t.memberKey, { gpuType: type });
    const a = await until(async () => (await ch.heartbeat({ running: [] })).assignments?.[0]);

    const bad = await ch.exchange(
      JSON.stringify({
        type: "heartbeat",
        id: "bad-1",
        running: [],
        updates: [{ jobId: a.jobId, lease: a.lease, state: "exploded" }],
      }),
      "bad-1",
    );
    expect(bad).toMatchObject({ ok: false, status: 400, code: "ValidationFailed" });
    expect(bad.detail).toMatch(/updates\.0\.state/);
    expect((await getJob(t.memberKey, s.body.id)).state).toBe("scheduled");

    expect(await ch.exchange("{not json", null)).toMatchObject({
      ok: false,
      status: 400,
      code: "MalformedJson",
    });
    expect(await ch.exchange(new TextEncoder().encode("{}").buffer as ArrayBuffer, null)).toMatchObject({
      ok: false,
      status: 400,
    });
    const unknownField = await ch.exchange(
      JSON.stringify({ type: "heartbeat", id: "x-2", running: [], extra: 1 }),
      "x-2",
    );
    expect(unknownField).toMatchObject({ ok: false, status: 400, code: "ValidationFailed" });
    const huge = JSON.stringify({
      type: "heartbeat",
      id: "big-3",
      running: [],
      pad: "x".repeat(1024 * 1024),
    });
    expect(await ch.exchange(huge, "big-3")).toMatchObject({
      ok: false,
      status: 413,
      code: "PayloadTooLarge",
    });
    // The connection survives all of that.
    expect(await ch.heartbeat({ running: [] })).toMatchObject({ ok: true });
    expect((await getJob(t.memberKey, s.body.id)).state).toBe("scheduled");
    ch.ws.close();
  });

  it("a worker that left is told NotFound (404) on its still-open channel", async () => {
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, gpuTypeName("CL"));
    const ch = await connect(w);
    expect(await ch.heartbeat({ running: [] })).toMatchObject({ ok: true });
    const r = await api("POST", `/v1/workers/${w.workerId}/deregister`, { token: w.token, body: {} });
    expect(r.status, r.text).toBe(200);
    expect(await ch.heartbeat({ running: [] })).toMatchObject({ ok: false, status: 404, code: "NotFound" });
    ch.ws.close();
  });
});
