// The agent against a scripted local control plane (HTTP + WebSocket): registration, live delivery,
// heartbeats, status reporting, cancels, refusals, re-registration. Jobs are real child processes.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AgentHandle, AgentRuntime } from "../../cli/agent/agent.ts";
import type { AgentOptions } from "../../cli/agent/options.ts";
import { assignment, FakeControlPlane, problem, until } from "./agent-fake-control-plane.ts";
import { startTestAgent } from "./agent-harness.ts";

let cp: FakeControlPlane;
let agents: AgentHandle[];
let dir: string;

beforeEach(async () => {
  cp = await new FakeControlPlane().start();
  agents = [];
  dir = mkdtempSync(join(tmpdir(), "gantry-agent-"));
});

afterEach(async () => {
  for (const a of agents) await a.kill();
  await cp.close();
});

function startAgent(opts: Partial<AgentOptions> = {}, rt: AgentRuntime = {}) {
  return startTestAgent(cp, agents, { labels: { zone: "a" }, ...opts }, rt);
}

async function registered(handle: AgentHandle, live = true): Promise<string> {
  await until(() => handle.workerId !== undefined, "registration");
  const id = handle.workerId!;
  if (live) await until(() => cp.connected(id), "live channel");
  return id;
}

const states = (jobId: string) => cp.statusesOf(jobId).map((s) => s.body.state);

describe("registration and heartbeat", () => {
  it("registers with the join token, then heartbeats and connects with the worker token", async () => {
    const { handle } = startAgent({ labels: { zone: "a", rack: "r1" } });
    const id = await registered(handle);
    const reg = cp.requestsTo("/v1/workers/register")[0]!;
    expect(reg.auth).toBe(`Bearer ${cp.joinToken}`);
    expect(reg.body).toMatchObject({ hostname: "test-host", labels: { zone: "a", rack: "r1" } });
    expect(typeof reg.body.agentVersion).toBe("string");
    expect(reg.body.gpus).toHaveLength(4);
    expect((reg.body.gpus as unknown[])[3]).toEqual({
      index: 3,
      model: "FAKE H100",
      type: "H100",
      memoryMiB: 81920,
      uuid: "GPU-fake-test-host-3",
    });
    await until(() => cp.requestsTo("/heartbeat").length > 0, "first heartbeat");
    const hb = cp.requestsTo("/heartbeat")[0]!;
    expect(hb.path).toBe(`/v1/workers/${id}/heartbeat`);
    expect(hb.auth).toBe(`Bearer ${cp.workers.get(id)!.token}`);
    expect(hb.body).toEqual({ running: [] });
    expect(cp.wsAuth).toContain(`Bearer ${cp.workers.get(id)!.token}`);
  });

  it("heartbeats every heartbeatIntervalSeconds", async () => {
    cp.heartbeatIntervalSeconds = 0.1;
    const { handle } = startAgent({}, { liveChannel: false });
    await registered(handle, false);
    const before = cp.requestsTo("/heartbeat").length;
    await new Promise((r) => setTimeout(r, 550));
    const n = cp.requestsTo("/heartbeat").length - before;
    expect(n).toBeGreaterThanOrEqual(3);
    expect(n).toBeLessThanOrEqual(8);
  });

  it("exits with code 3 when the join token is rejected, and never logs tokens", async () => {
    const { handle, lines } = startAgent({ joinToken: "wrong-token-xyz" });
    const result = await handle.done;
    expect(result.exitCode).toBe(3);
    expect(result.message).toMatch(/join token rejected: .*unknown join token.*ask your admin/);
    expect(lines.join("\n")).not.toContain("wrong-token-xyz");
  });

  it("keeps retrying registration while the control plane is unreachable", async () => {
    const port = Number(new URL(cp.url).port);
    await cp.close();
    const { handle, logs } = startAgent();
    await until(() => logs().filter((l) => /unreachable/.test(String(l.msg))).length >= 2, "retry logs");
    cp = await new FakeControlPlane().start(port);
    await registered(handle);
    const retry = logs().find((l) => /unreachable/.test(String(l.msg)))!;
    expect(retry.level).toBe("warn");
    expect(retry.retryInMs).toEqual(expect.any(Number));
  });
});

describe("running assignments", () => {
  it("starts a live-channel assignment at once and reports running then succeeded with the output", async () => {
    const { handle, lines } = startAgent(
      {},
      { baseEnv: { PATH: process.env.PATH, GANTRY_JOIN_TOKEN: "leak-me" } },
    );
    const id = await registered(handle);
    const pushedAt = Date.now();
    cp.push(id, {
      type: "assignments",
      assignments: [
        assignment(
          "job-1",
          ["sh", "-c", 'echo "cvd=$CUDA_VISIBLE_DEVICES job=$GANTRY_JOB_ID k=$K jt=$GANTRY_JOIN_TOKEN"'],
          {
            gpuIndices: [1, 3],
            env: { K: "v" },
          },
        ),
      ],
    });
    await until(() => states("job-1").includes("succeeded"), "job-1 succeeded");
    const [running, done] = cp.statusesOf("job-1");
    expect(running!.body).toEqual({ lease: 1, state: "running" });
    expect(running!.at - pushedAt).toBeLessThan(1000);
    expect(done!.body).toMatchObject({ lease: 1, state: "succeeded", exitCode: 0 });
    expect(done!.body.logTail).toBe("cvd=1,3 job=job-1 k=v jt=\n");
    expect(lines.join("\n")).not.toContain(cp.workers.get(id)!.token);
  });

  it("uploads a running job's output tail while it runs (only when it changed), then the final tail", async () => {
    cp.heartbeatIntervalSeconds = 0.1;
    const { handle } = startAgent({ logIntervalSeconds: 0.2 });
    const id = await registered(handle);
    const gate = join(dir, "gate");
    // Prints one line, then stays silent until the test opens the gate.
    const script = `echo first; while [ ! -e ${gate} ]; do sleep 0.05; done; echo second`;
    cp.push(id, { type: "assignments", assignments: [assignment("job-log", ["sh", "-c", script])] });
    const tails = () =>
      cp
        .statusesOf("job-log")
        .filter((s) => s.body.state === "running" && s.body.logTail !== undefined)
        .map((s) => s.body.logTail);
    await until(() => tails().length > 0, "a mid-run log upload");
    expect(tails()[0]).toBe("first\n");
    // Silence: several heartbeats and intervals pass, nothing new is uploaded.
    await new Promise((r) => setTimeout(r, 800));
    expect(tails()).toEqual(["first\n"]);
    writeFileSync(gate, "");
    await until(() => states("job-log").includes("succeeded"), "job-log succeeded");
    const done = cp.statusesOf("job-log").at(-1)!;
    expect(done.body).toMatchObject({ state: "succeeded", logTail: "first\nsecond\n" });
    expect(states("job-log")[0]).toBe("running");
  });

  it("runs heartbeat-delivered assignments, reports non-zero exits, and ignores a duplicate delivery", async () => {
    cp.heartbeatIntervalSeconds = 0.1;
    const { handle } = startAgent({}, { liveChannel: false });
    const id = await registered(handle, false);
    const marker = join(dir, "runs");
    const a = assignment("job-2", ["sh", "-c", `echo run >> ${marker}; exit 7`]);
    cp.nextHeartbeat.set(id, { assignments: [a, a] });
    await until(() => states("job-2").includes("failed"), "job-2 failed");
    const failed = cp.statusesOf("job-2").find((s) => s.body.state === "failed")!;
    expect(failed.body).toMatchObject({ state: "failed", exitCode: 7, logTail: "" });
    expect(failed.body.message).toMatch(/exited with code 7/);
    // Delivered again (e.g. a heartbeat answer racing the live channel): same lease, not run again.
    cp.nextHeartbeat.set(id, { assignments: [a] });
    await until(() => cp.nextHeartbeat.size === 0, "redelivery");
    await new Promise((r) => setTimeout(r, 200));
    expect(readFileSync(marker, "utf8")).toBe("run\n");
  });

  it("cancels a job from the live channel: kills the process tree and reports Cancelled", async () => {
    const { handle } = startAgent();
    const id = await registered(handle);
    const pidFile = join(dir, "child.pid");
    cp.push(id, {
      type: "assignments",
      assignments: [assignment("job-3", ["sh", "-c", `sleep 60 & echo $! > ${pidFile}; wait`])],
    });
    await until(() => states("job-3").includes("running"), "job-3 running");
    await until(() => {
      try {
        return readFileSync(pidFile, "utf8").trim() !== "";
      } catch {
        return false;
      }
    }, "grandchild pid");
    const grandchild = Number(readFileSync(pidFile, "utf8"));
    cp.push(id, { type: "cancel", jobIds: ["job-3"] });
    await until(() => states("job-3").includes("failed"), "job-3 reported");
    const failed = cp.statusesOf("job-3")[1]!;
    expect(failed.body).toMatchObject({ state: "failed", reason: "Cancelled" });
    expect(alive(grandchild)).toBe(false);
    expect(handle.runningJobs).toBe(0);
  });

  it("cancels a job listed in a heartbeat answer", async () => {
    cp.heartbeatIntervalSeconds = 0.1;
    const { handle } = startAgent({}, { liveChannel: false });
    const id = await registered(handle, false);
    cp.nextHeartbeat.set(id, { assignments: [assignment("job-4", ["sleep", "60"])] });
    await until(() => states("job-4").includes("running"), "job-4 running");
    cp.nextHeartbeat.set(id, { cancel: ["job-4"] });
    await until(() => states("job-4").includes("failed"), "job-4 cancelled");
    expect(cp.statusesOf("job-4")[1]!.body.reason).toBe("Cancelled");
  });
});

describe("refusals and outages", () => {
  it("kills a job whose status update is refused with 409 StaleLease and reports nothing more", async () => {
    cp.onStatus = (_w, jobId, body) =>
      jobId === "job-5" && body.state === "running"
        ? problem(409, "Conflict", "lease 1 is stale", "StaleLease")
        : undefined;
    const { handle, logs } = startAgent();
    const id = await registered(handle);
    cp.push(id, { type: "assignments", assignments: [assignment("job-5", ["sleep", "60"])] });
    await until(() => logs().some((l) => l.code === "StaleLease"), "refusal logged");
    await until(() => handle.runningJobs === 0, "job-5 killed");
    await new Promise((r) => setTimeout(r, 200));
    expect(cp.statusesOf("job-5")).toEqual([]);
    expect(cp.requestsTo("/jobs/job-5/status")).toHaveLength(1);
  });

  it("keeps updates while status calls fail, retries with backoff, and delivers them in heartbeats", async () => {
    let down = true;
    cp.onStatus = () => (down ? problem(503, "Service Unavailable", "overloaded", "Unavailable") : undefined);
    cp.heartbeatIntervalSeconds = 0.5;
    const { handle } = startAgent({}, { minHeartbeatGapMs: 500 });
    const id = await registered(handle);
    cp.push(id, { type: "assignments", assignments: [assignment("job-6", ["sh", "-c", "echo out"])] });
    // Only the job's first update is tried by status calls (its second must not overtake it).
    await until(() => cp.requestsTo("/jobs/job-6/status").length >= 3, "status retries");
    expect(cp.requestsTo("/jobs/job-6/status").every((r) => r.body.state === "running")).toBe(true);
    await until(() => states("job-6").includes("succeeded"), "job-6 delivered via heartbeat");
    const delivered = cp.statusesOf("job-6");
    expect(delivered.map((s) => s.body.state)).toEqual(["running", "succeeded"]);
    expect(delivered.every((s) => s.via === "heartbeat")).toBe(true);
    expect(delivered[1]!.body).toMatchObject({ jobId: "job-6", lease: 1, exitCode: 0, logTail: "out\n" });
    // Acknowledged by the heartbeat: neither resent by status calls nor by later heartbeats.
    down = false;
    const count = cp.statuses.length;
    await until(() => cp.heartbeats.length >= 5, "more heartbeats");
    expect(cp.statuses.length).toBe(count);
  });

  it("retries a network failure: updates survive the control plane going away and coming back", async () => {
    cp.heartbeatIntervalSeconds = 0.2;
    const { handle } = startAgent({}, { liveChannel: false });
    const id = await registered(handle, false);
    const port = Number(new URL(cp.url).port);
    const workers = cp.workers;
    cp.nextHeartbeat.set(id, { assignments: [assignment("job-7", ["sh", "-c", "sleep 0.5; echo late"])] });
    await until(() => states("job-7").includes("running"), "job-7 running");
    await cp.close();
    await new Promise((r) => setTimeout(r, 900)); // the job ends while nobody listens
    expect(handle.runningJobs).toBe(0);
    const revived = await new FakeControlPlane().start(port);
    for (const [k, v] of workers) revived.workers.set(k, v);
    cp = revived;
    await until(
      () => cp.statusesOf("job-7").some((s) => s.body.state === "succeeded"),
      "late update delivered",
    );
    expect(cp.statusesOf("job-7").find((s) => s.body.state === "succeeded")!.body.logTail).toBe("late\n");
  });

  it("kills a running job when a heartbeat rejects its update", async () => {
    cp.heartbeatIntervalSeconds = 0.1;
    cp.onStatus = () => problem(500, "Internal", "boom", "Internal"); // force delivery by heartbeat
    const { handle } = startAgent({}, { liveChannel: false });
    const id = await registered(handle, false);
    cp.nextHeartbeat.set(id, { assignments: [assignment("job-8", ["sleep", "60"])] });
    await until(() => handle.runningJobs === 1, "job-8 started");
    cp.onHeartbeat = (_w, body) => {
      const updates = (body.updates as { jobId: string }[] | undefined) ?? [];
      if (!updates.some((u) => u.jobId === "job-8")) return undefined;
      cp.onHeartbeat = undefined;
      return {
        status: 200,
        body: {
          assignments: [],
          cancel: [],
          drain: false,
          rejected: [{ jobId: "job-8", code: "StaleLease" }],
        },
      };
    };
    await until(() => handle.runningJobs === 0, "job-8 killed");
    await new Promise((r) => setTimeout(r, 300));
    expect(cp.statusesOf("job-8")).toEqual([]);
    const last = cp.requestsTo("/heartbeat").at(-1)!;
    expect(last.body.running).toEqual([]);
    expect(last.body.updates).toBeUndefined();
  });

  it("re-registers when the control plane forgets the worker, killing the old registration's jobs", async () => {
    cp.heartbeatIntervalSeconds = 0.1;
    const { handle } = startAgent();
    const oldId = await registered(handle);
    cp.push(oldId, { type: "assignments", assignments: [assignment("job-9", ["sleep", "60"])] });
    await until(() => states("job-9").includes("running"), "job-9 running");
    cp.forget(oldId);
    await until(() => handle.workerId !== oldId, "re-registration");
    const newId = await registered(handle);
    await until(() => handle.runningJobs === 0, "old job killed");
    await new Promise((r) => setTimeout(r, 300));
    expect(cp.statuses.filter((s) => s.workerId === newId)).toEqual([]);
    expect(states("job-9")).toEqual(["running"]);
    // And it carries on under the new id.
    cp.push(newId, { type: "assignments", assignments: [assignment("job-10", ["true"])] });
    await until(() => states("job-10").includes("succeeded"), "job-10 under the new id");
    expect(cp.statusesOf("job-10")[0]!.workerId).toBe(newId);
  });
});

describe("draining", () => {
  it("drains on a heartbeat's drain flag: ignores new work, finishes running jobs, deregisters, exits 0", async () => {
    cp.heartbeatIntervalSeconds = 0.1;
    const { handle } = startAgent();
    const id = await registered(handle);
    cp.push(id, {
      type: "assignments",
      assignments: [assignment("job-11", ["sh", "-c", "sleep 0.4; echo finished"])],
    });
    await until(() => states("job-11").includes("running"), "job-11 running");
    cp.drain = true;
    const drainedBy = cp.heartbeats.length + 1;
    await until(() => cp.heartbeats.length > drainedBy, "drain seen");
    cp.push(id, { type: "assignments", assignments: [assignment("job-12", ["true"])] });
    const result = await handle.done;
    expect(result).toMatchObject({ exitCode: 0, reason: "drained" });
    expect(states("job-11")).toEqual(["running", "succeeded"]);
    expect(states("job-12")).toEqual([]);
    expect(cp.requestsTo("/deregister")).toHaveLength(1);
  });

  it("drains on a live-channel drain message", async () => {
    const { handle } = startAgent();
    const id = await registered(handle);
    cp.push(id, { type: "drain" });
    expect(await handle.done).toMatchObject({ exitCode: 0, reason: "drained" });
  });

  it("stop(): tells the control plane, kills jobs past the drain timeout as Drained, deregisters, exits 0", async () => {
    const { handle } = startAgent({ drainTimeoutSeconds: 0.3 });
    const id = await registered(handle);
    cp.push(id, {
      type: "assignments",
      assignments: [
        assignment("job-13", ["sleep", "60"]),
        assignment("job-14", ["sh", "-c", "sleep 0.1"], { gpuIndices: [1] }),
      ],
    });
    await until(
      () => states("job-13").includes("running") && states("job-14").includes("running"),
      "both running",
    );
    const t0 = Date.now();
    const result = await handle.stop();
    expect(result).toMatchObject({ exitCode: 0, reason: "drained" });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(cp.requestsTo("/drain")).toHaveLength(1);
    expect(states("job-14")).toEqual(["running", "succeeded"]);
    expect(cp.statusesOf("job-13")[1]!.body).toMatchObject({ state: "failed", reason: "Drained" });
    const order = cp.requests.map((r) => r.path.split("/").at(-1));
    expect(order.indexOf("deregister")).toBeGreaterThan(order.lastIndexOf("status"));
  });

  it("an aborted signal stops the agent like SIGTERM, and hooks see the job's life", async () => {
    const ctl = new AbortController();
    const seen: string[] = [];
    const { handle } = startAgent(
      {},
      {
        signal: ctl.signal,
        hooks: {
          onRegistered: (reg) => seen.push(`registered:${reg.workerId}`),
          onJobStarted: (a) => seen.push(`started:${a.jobId}`),
          onJobEnded: (id, r) => seen.push(`ended:${id}:${r.exitCode}`),
        },
      },
    );
    const id = await registered(handle);
    cp.push(id, {
      type: "assignments",
      assignments: [assignment("job-16", ["sh", "-c", "sleep 0.2; exit 4"])],
    });
    await until(() => seen.includes("started:job-16"), "job-16 started");
    ctl.abort();
    expect(await handle.done).toMatchObject({ exitCode: 0, reason: "drained" });
    expect(seen).toEqual([`registered:${id}`, "started:job-16", "ended:job-16:4"]);
    expect(cp.requestsTo("/drain")).toHaveLength(1);
  });

  it("kill(): ends at once and leaves no job process behind", async () => {
    const { handle } = startAgent();
    const id = await registered(handle);
    const pidFile = join(dir, "pid");
    cp.push(id, {
      type: "assignments",
      assignments: [assignment("job-15", ["sh", "-c", `echo $$ > ${pidFile}; exec sleep 60`])],
    });
    await until(() => states("job-15").includes("running"), "job-15 running");
    // "running" is reported once the job is spawned, which can be before its shell wrote the file.
    await until(() => {
      try {
        return readFileSync(pidFile, "utf8").trim() !== "";
      } catch {
        return false;
      }
    }, "pid written");
    const pid = Number(readFileSync(pidFile, "utf8"));
    const t0 = Date.now();
    expect(await handle.kill()).toMatchObject({ reason: "killed" });
    expect(Date.now() - t0).toBeLessThan(200);
    await until(() => !alive(pid), "job process gone", 2000);
  });
});

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\S+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}
