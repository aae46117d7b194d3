// Heartbeats over the live channel: the agent sends them as frames while the channel is up and answers,
// and falls back to HTTP for a beat whenever the channel leaves any doubt (down, closed mid-heartbeat, no
// reply in time, a refusal), without losing or reordering the updates the beat carries.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AgentHandle, AgentRuntime } from "../../cli/agent/agent.ts";
import type { AgentOptions } from "../../cli/agent/options.ts";
import {
  assignment,
  type ChannelScript,
  FakeControlPlane,
  type HeartbeatRecord,
  MAX_FRAME_BYTES,
  problem,
  until,
} from "./agent-fake-control-plane.ts";
import { startTestAgent } from "./agent-harness.ts";

let cp: FakeControlPlane;
let agents: AgentHandle[];

beforeEach(async () => {
  cp = await new FakeControlPlane().start();
  cp.heartbeatIntervalSeconds = 0.2;
  agents = [];
});

afterEach(async () => {
  for (const a of agents) await a.kill();
  await cp.close();
});

function startAgent(opts: Partial<AgentOptions> = {}, rt: AgentRuntime = {}) {
  return startTestAgent(
    cp,
    agents,
    { hostname: "hb-host", ...opts },
    { channelHeartbeatTimeoutMs: 2000, ...rt },
  );
}

/** Registered, connected, and one heartbeat answered on the channel. */
async function onChannel(handle: AgentHandle): Promise<string> {
  await until(() => handle.workerId !== undefined, "registration");
  const id = handle.workerId!;
  await until(() => cp.connected(id), "live channel");
  await until(() => channelBeats(id).some((h) => h.outcome === 200), "a channel heartbeat answered");
  return id;
}

const channelBeats = (id: string) => cp.heartbeatsVia("channel").filter((h) => h.workerId === id);
const httpBeats = (id: string) => cp.heartbeatsVia("http").filter((h) => h.workerId === id);
const states = (jobId: string) => cp.statusesOf(jobId).map((s) => s.body.state);
const carries = (h: HeartbeatRecord, jobId: string) =>
  ((h.body.updates as { jobId: string }[] | undefined) ?? []).some((u) => u.jobId === jobId);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Status calls fail, so job updates can only arrive in heartbeats. */
const statusDown = () => {
  cp.onStatus = () => problem(503, "Service Unavailable", "down", "Unavailable");
};

/** The next channel heartbeat frame that carries updates gets `outcome`; the others are answered. */
function nextUpdateFrame(outcome: ChannelScript): void {
  cp.onChannelHeartbeat = (_w, frame) => {
    if (!(frame.updates as unknown[] | undefined)?.length) return undefined;
    cp.onChannelHeartbeat = undefined;
    return outcome;
  };
}

describe("heartbeats over the live channel", () => {
  it("go over the channel while it is up, as frames with a unique id, and carry job reports", async () => {
    statusDown();
    const { handle } = startAgent();
    const id = await onChannel(handle);
    const httpBefore = httpBeats(id).length;
    cp.push(id, { type: "assignments", assignments: [assignment("job-c1", ["sh", "-c", "echo hi"])] });
    await until(() => states("job-c1").includes("succeeded"), "job-c1 reported");
    await until(() => channelBeats(id).length >= 6, "more channel heartbeats");
    expect(httpBeats(id).length).toBe(httpBefore);
    const delivered = cp.statusesOf("job-c1");
    expect(delivered.map((s) => s.body.state)).toEqual(["running", "succeeded"]);
    expect(delivered.every((s) => s.via === "heartbeat" && s.transport === "channel")).toBe(true);
    expect(delivered[1]!.body).toMatchObject({ lease: 1, exitCode: 0, logTail: "hi\n" });
    const ids = channelBeats(id).map((h) => h.id!);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((i) => i.length >= 1 && i.length <= 64)).toBe(true);
    expect(Object.keys(channelBeats(id)[0]!.body).sort()).toEqual(["running"]);
  });

  it("use HTTP while the channel is down, and the channel again once it is back", async () => {
    const { handle } = startAgent();
    const id = await onChannel(handle);
    cp.refuseChannels = true;
    cp.disconnect(id);
    await until(() => !cp.connected(id), "disconnected");
    const http = httpBeats(id).length;
    await until(() => httpBeats(id).length >= http + 3, "HTTP heartbeats while down");
    cp.refuseChannels = false;
    await until(() => cp.connected(id), "reconnected");
    const channel = channelBeats(id).length;
    await until(() => channelBeats(id).length >= channel + 3, "channel heartbeats again");
  });

  it("use HTTP only when channelHeartbeats is false, although the channel is connected", async () => {
    const { handle } = startAgent({}, { channelHeartbeats: false });
    await until(() => handle.workerId !== undefined && cp.connected(handle.workerId), "connected");
    const id = handle.workerId!;
    await until(() => httpBeats(id).length >= 5, "heartbeats");
    expect(cp.heartbeatsVia("channel")).toEqual([]);
    expect(cp.frameBytes).toEqual([]);
  });

  it("a missing reply: the same batch goes over HTTP within the timeout, applied once and in order", async () => {
    statusDown();
    const { handle } = startAgent({}, { channelHeartbeatTimeoutMs: 400 });
    const id = await onChannel(handle);
    cp.onChannelHeartbeat = (_w, frame) => {
      if (!(frame.updates as unknown[] | undefined)?.length) return undefined;
      cp.onChannelHeartbeat = undefined;
      return "ignore"; // lost before the control plane applied it
    };
    cp.push(id, { type: "assignments", assignments: [assignment("job-c2", ["sh", "-c", "echo x"])] });
    await until(() => states("job-c2").includes("succeeded"), "job-c2 reported");
    const ignored = channelBeats(id).find((h) => h.outcome === "ignored")!;
    const retry = httpBeats(id).find((h) => h.at >= ignored.at)!;
    expect(retry.body.updates).toEqual(ignored.body.updates);
    expect(retry.body.running).toEqual(ignored.body.running);
    expect(retry.at - ignored.at).toBeGreaterThanOrEqual(350);
    expect(retry.at - ignored.at).toBeLessThan(1500);
    expect(states("job-c2")).toEqual(["running", "succeeded"]);
    // A connection that answered before keeps being used after one missed reply.
    const channel = channelBeats(id).length;
    await until(() => channelBeats(id).length >= channel + 3, "channel heartbeats again");
  });

  it("a reply that never comes after the update was applied: the HTTP retry repeats the same batch", async () => {
    statusDown();
    const { handle } = startAgent({}, { channelHeartbeatTimeoutMs: 300 });
    const id = await onChannel(handle);
    nextUpdateFrame("noreply");
    cp.push(id, { type: "assignments", assignments: [assignment("job-c3", ["sh", "-c", "exit 3"])] });
    await until(() => cp.statusesOf("job-c3").some((s) => s.transport === "http"), "HTTP retry");
    await until(() => handle.runningJobs === 0, "job-c3 ended");
    await until(() => states("job-c3").filter((s) => s === "failed").length >= 1, "job-c3 reported");
    await wait(300);
    const unanswered = channelBeats(id).find((h) => h.outcome === "unanswered")!;
    const retry = httpBeats(id).find((h) => h.at >= unanswered.at)!;
    expect(retry.body.updates).toEqual(unanswered.body.updates);
    // Per transport, the job's reports arrive in order and each at most once.
    for (const t of ["channel", "http"] as const) {
      const seen = cp.statusesOf("job-c3").filter((s) => s.transport === t);
      expect(seen.map((s) => s.body.state)).toEqual(["running", "failed"].slice(0, seen.length));
    }
  });

  it("the socket closing mid-heartbeat fails the wait at once: HTTP carries the beat", async () => {
    statusDown();
    const { handle } = startAgent({}, { channelHeartbeatTimeoutMs: 10_000 });
    const id = await onChannel(handle);
    nextUpdateFrame("close");
    cp.push(id, { type: "assignments", assignments: [assignment("job-c4", ["sh", "-c", "echo y"])] });
    await until(() => states("job-c4").includes("succeeded"), "job-c4 reported");
    const closed = channelBeats(id).find((h) => h.outcome === "closed")!;
    const retry = httpBeats(id).find((h) => h.at >= closed.at)!;
    expect(retry.body.updates).toEqual(closed.body.updates);
    expect(retry.at - closed.at).toBeLessThan(1000);
    expect(states("job-c4")).toEqual(["running", "succeeded"]);
    await until(() => cp.connected(id), "reconnected");
    const channel = channelBeats(id).length;
    await until(() => channelBeats(id).length > channel, "channel heartbeats again");
  });

  it.each([404, 401])("a %i reply on the channel makes the agent register again", async (status) => {
    const { handle, logs } = startAgent();
    const oldId = await onChannel(handle);
    cp.push(oldId, { type: "assignments", assignments: [assignment("job-c5", ["sleep", "60"])] });
    await until(() => handle.runningJobs === 1, "job-c5 running");
    cp.onChannelHeartbeat = (w) =>
      w === oldId
        ? problem(status, "Gone", "no such worker", status === 404 ? "NotFound" : "Unauthorized")
        : undefined;
    await until(() => handle.workerId !== oldId, "re-registration");
    const newId = await onChannel(handle);
    await until(() => handle.runningJobs === 0, "the old registration's job killed");
    const why = logs().find((l) => /registering again/.test(String(l.msg)))!;
    expect(why.why).toBe(`heartbeat over channel answered ${status}`);
    expect(cp.requestsTo("/v1/workers/register")).toHaveLength(2);
    // Exactly one re-registration: nothing from the old registration starts another.
    await wait(500);
    expect(handle.workerId).toBe(newId);
    expect(cp.requestsTo("/v1/workers/register")).toHaveLength(2);
  });

  it("a 5xx reply: HTTP carries that beat, the channel the next ones", async () => {
    statusDown();
    const { handle, logs } = startAgent();
    const id = await onChannel(handle);
    nextUpdateFrame(problem(500, "Internal", "boom", "Internal"));
    cp.push(id, { type: "assignments", assignments: [assignment("job-c6", ["true"])] });
    await until(() => states("job-c6").includes("succeeded"), "job-c6 reported");
    const refused = channelBeats(id).find((h) => h.outcome === 500)!;
    const retry = httpBeats(id).find((h) => h.at >= refused.at)!;
    expect(retry.body.updates).toEqual(refused.body.updates);
    expect(states("job-c6")).toEqual(["running", "succeeded"]);
    expect(
      logs().some((l) => l.level === "warn" && /refused a heartbeat on the live channel/.test(String(l.msg))),
    ).toBe(true);
    expect(handle.workerId).toBe(id);
    const channel = channelBeats(id).length;
    await until(() => channelBeats(id).length >= channel + 2, "channel heartbeats again");
  });

  it("a channel that refuses every heartbeat never makes the agent fence while HTTP works", async () => {
    cp.heartbeatIntervalSeconds = 0.25;
    cp.leaseTtlSeconds = 2; // fencing after 1.75 s without a heartbeat
    const { handle, logs } = startAgent({}, { channelHeartbeatTimeoutMs: undefined });
    const id = await onChannel(handle);
    cp.onChannelHeartbeat = () => problem(503, "Service Unavailable", "overloaded", "Unavailable");
    cp.push(id, { type: "assignments", assignments: [assignment("job-c7", ["sleep", "60"])] });
    await until(() => handle.runningJobs === 1, "job-c7 running");
    await wait(2500);
    expect(handle.runningJobs).toBe(1);
    expect(logs().some((l) => /self-fencing/.test(String(l.msg)))).toBe(false);
    const refused = channelBeats(id).filter((h) => h.outcome === 503);
    expect(refused.length).toBeGreaterThanOrEqual(5);
    expect(httpBeats(id).filter((h) => h.at >= refused[0]!.at).length).toBeGreaterThanOrEqual(
      refused.length - 1,
    );
  });

  it("a 400 reply: logged as an error once, and each such beat goes over HTTP", async () => {
    const { handle, logs } = startAgent();
    const id = await onChannel(handle);
    let refusals = 3;
    cp.onChannelHeartbeat = () =>
      refusals-- > 0 ? problem(400, "Bad Request", "running: bad", "ValidationFailed") : undefined;
    await until(() => refusals < 0, "three refusals and an accepted heartbeat");
    const refused = channelBeats(id).filter((h) => h.outcome === 400);
    expect(refused).toHaveLength(3);
    for (const r of refused) expect(httpBeats(id).some((h) => h.at >= r.at)).toBe(true);
    const errors = logs().filter((l) => /refused a heartbeat on the live channel/.test(String(l.msg)));
    expect(errors.map((l) => l.level)).toEqual(["error", "debug", "debug"]);
    expect(handle.workerId).toBe(id);
  });

  it("a control plane that never answers channel heartbeats: one timeout, then HTTP until reconnecting", async () => {
    cp.channelHeartbeats = false;
    const { handle, logs } = startAgent({}, { channelHeartbeatTimeoutMs: 300 });
    await until(() => handle.workerId !== undefined && cp.connected(handle.workerId), "connected");
    const id = handle.workerId!;
    await until(() => cp.frameBytes.length === 1 && httpBeats(id).length >= 2, "one frame, then HTTP");
    const http = httpBeats(id).length;
    await until(() => httpBeats(id).length >= http + 4, "more HTTP heartbeats");
    expect(cp.frameBytes).toHaveLength(1);
    expect(logs().some((l) => /does not answer heartbeats on the live channel/.test(String(l.msg)))).toBe(
      true,
    );
    cp.channelHeartbeats = true;
    cp.disconnect(id);
    await until(
      () => channelBeats(id).some((h) => h.outcome === 200),
      "channel heartbeats after reconnecting",
    );
  });

  it("splits many 64 KiB log tails over several frames, none above 1 MiB", async () => {
    statusDown();
    const jobs = 12;
    const { handle } = startAgent({ gpus: `fake:${jobs}xH100` });
    const id = await onChannel(handle);
    // 70,000 bytes of output each: the final report carries a 64 KiB tail.
    const big = ["sh", "-c", "head -c 70000 /dev/zero | tr '\\0' x"];
    cp.push(id, {
      type: "assignments",
      assignments: Array.from({ length: jobs }, (_, i) =>
        assignment(`job-big-${i}`, big, { gpuIndices: [i] }),
      ),
    });
    await until(
      () =>
        Array.from({ length: jobs }, (_, i) => `job-big-${i}`).every((j) => states(j).includes("succeeded")),
      "every job reported",
      15_000,
    );
    for (let i = 0; i < jobs; i++) {
      const done = cp.statusesOf(`job-big-${i}`).find((s) => s.body.state === "succeeded")!;
      expect(done.transport).toBe("channel");
      expect((done.body.logTail as string).length).toBe(64 * 1024);
    }
    const carrying = channelBeats(id).filter((h) =>
      Array.from({ length: jobs }, (_, i) => `job-big-${i}`).some((j) => carries(h, j)),
    );
    expect(carrying.length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...cp.frameBytes)).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(Math.max(...cp.frameBytes)).toBeLessThanOrEqual(600 * 1024);
  });
});
