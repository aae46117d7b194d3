// Issue 6 end to end: real agent processes against real wrangler dev, with short heartbeats and TTLs.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AgentProc,
  bootstrap,
  call,
  must,
  type Server,
  startAgent,
  startServer,
  waitFor,
  waitForState,
} from "./support.ts";

interface WorkerView {
  id: string;
  hostname: string;
  state: string;
  draining: boolean;
  gpus: unknown[];
  freeGpuIndices: number[];
  leases: { jobId: string; lease: number; gpuIndices: number[] }[];
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z /.test(stat); // a zombie is dead
  } catch {
    return false;
  }
};

describe("fleet and agent, end to end", () => {
  let s: Server;
  let b: Awaited<ReturnType<typeof bootstrap>>;
  const agents: AgentProc[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gantry-fleet-"));

  const workers = async () => (await must<{ items: WorkerView[] }>(s, "GET", "/v1/workers", s.admin)).items;
  const agent = async (gpus: string, extra: string[] = []) => {
    const before = new Set((await workers()).map((w) => w.id));
    const a = startAgent(s, b.joinToken, gpus, extra);
    agents.push(a);
    const w = await waitFor(
      async () => (await workers()).find((x) => !before.has(x.id) && x.state === "alive"),
      30_000,
      "agent alive",
    );
    return { proc: a, id: w.id };
  };
  const submit = (job: Record<string, unknown>) =>
    must<{ id: string }>(s, "POST", "/v1/jobs", b.key, { name: "job", command: ["true"], gpus: 1, ...job });

  beforeAll(async () => {
    s = await startServer({ heartbeatSeconds: 1, leaseTtlSeconds: 4 });
    b = await bootstrap(s);
  });
  afterAll(async () => {
    for (const a of agents) a.kill("SIGKILL");
    await s?.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("kill -9 an agent mid-job: the job is requeued and succeeds on another agent with attempt 2", async () => {
    const first = await agent("fake:1xT4");
    const marker = path.join(tmp, "ran-once");
    const job = await submit({
      name: "survivor",
      gpuType: "T4",
      // First attempt hangs; the second (on the other agent) finishes at once.
      command: [
        "sh",
        "-c",
        `if [ -e ${marker} ]; then echo attempt=$GANTRY_ATTEMPT; exit 0; fi; echo $$ > ${marker}; sleep 300`,
      ],
    });
    const running = await waitForState(s, b.key, job.id, ["running"]);
    expect(running.workerId).toBe(first.id);
    const oldLease = running.lease as number;
    const hungPid = await waitFor(
      async () => (fs.existsSync(marker) ? Number(fs.readFileSync(marker, "utf8").trim()) : 0),
      10_000,
      "first attempt's pid",
    );
    first.proc.kill("SIGKILL");
    const killedAt = Date.now();
    // The agent's death closes the job watchdog's socket: the orphaned attempt is killed, not left running.
    await waitFor(async () => !alive(hungPid), 10_000, "orphaned attempt killed");
    const second = await agent("fake:1xT4");
    const done = await waitForState(s, b.key, job.id, ["succeeded", "failed"], 30_000);
    // Requeued within TTL (4 s) + a heartbeat sweep + one scheduling pass; the new agent ran it.
    expect(done).toMatchObject({ state: "succeeded", attempt: 2, workerId: second.id });
    expect(done.lease as number).toBeGreaterThan(oldLease);
    expect(Date.now() - killedAt).toBeLessThan(20_000);
    const events = await must<{ items: { to: string; reason: string | null }[] }>(
      s,
      "GET",
      `/v1/jobs/${job.id}/events`,
      b.key,
    );
    expect(events.items.map((e) => e.to)).toEqual([
      "queued",
      "scheduled",
      "running",
      "queued",
      "scheduled",
      "running",
      "succeeded",
    ]);
    expect(events.items[3]!.reason).toBe("WorkerLost");
    const logs = await must<{ tail: string }>(s, "GET", `/v1/jobs/${job.id}/logs`, b.key);
    expect(logs.tail).toContain("attempt=2");
    const quota = await must<{ usage: { gpus: number; jobs: number } }>(s, "GET", "/v1/quota", b.key);
    expect(quota.usage).toMatchObject({ gpus: 0, jobs: 0 });
    expect((await workers()).find((x) => x.id === first.id)!.state).toBe("dead");
    second.proc.kill("SIGTERM");
    await second.proc.exited;
  }, 90_000);

  it("a returning dead agent's late reports are refused (409) and it is told to stop: never twice at once", async () => {
    const first = await agent("fake:1xP100");
    const pidFile = path.join(tmp, "p100-pids");
    const job = await submit({
      name: "once-at-a-time",
      gpuType: "P100",
      // The first attempt would run for a minute; only the agent's watchdog can end it early.
      command: ["sh", "-c", `echo $$ >> ${pidFile}; [ "$GANTRY_ATTEMPT" = 1 ] && sleep 60; sleep 3; echo ok`],
    });
    await waitForState(s, b.key, job.id, ["running"]);
    const firstPid = await waitFor(
      async () =>
        fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, "utf8").trim().split("\n")[0]) : 0,
      10_000,
      "first attempt's pid",
    );
    // Freeze the agent: to the control plane it is dead. Its job's watchdog kills the job before the lease
    // expires, so the job never runs twice at once.
    first.proc.proc.kill("SIGSTOP");
    await waitFor(
      async () => (await workers()).find((x) => x.id === first.id)?.state === "dead",
      20_000,
      "declared dead",
    );
    const second = await agent("fake:1xP100");
    expect(alive(firstPid)).toBe(false);
    const requeued = await waitForState(s, b.key, job.id, ["running"], 20_000);
    expect(requeued).toMatchObject({ attempt: 2, workerId: second.id });
    // It comes back: its heartbeat is told to stop the job; its report for the old lease is refused.
    first.proc.proc.kill("SIGCONT");
    await waitFor(
      async () => /refused a job update[^\n]*StaleLease/.test(first.proc.output()),
      20_000,
      "409 seen by the old agent",
    );
    const done = await waitForState(s, b.key, job.id, ["succeeded", "failed"], 30_000);
    expect(done).toMatchObject({ state: "succeeded", attempt: 2, workerId: second.id });
    const events = await must<{ items: { to: string }[] }>(s, "GET", `/v1/jobs/${job.id}/events`, b.key);
    expect(events.items.filter((e) => e.to === "succeeded")).toHaveLength(1);
    first.proc.kill("SIGTERM");
    second.proc.kill("SIGTERM");
    await Promise.all([first.proc.exited, second.proc.exited]);
  }, 90_000);

  it("a job past maxRuntimeSeconds is killed and fails with Timeout", async () => {
    const a = await agent("fake:1xL4");
    const job = await submit({ gpuType: "L4", maxRuntimeSeconds: 1, command: ["sleep", "60"] });
    const done = await waitForState(s, b.key, job.id, ["failed", "succeeded"], 30_000);
    expect(done).toMatchObject({ state: "failed", reason: "Timeout" });
    a.proc.kill("SIGTERM");
    await a.proc.exited;
  }, 60_000);

  it("cancelling a running job kills its whole process tree and ends cancelled", async () => {
    const a = await agent("fake:1xA10");
    const pids = path.join(tmp, "pids");
    const job = await submit({
      gpuType: "A10",
      command: ["sh", "-c", `sleep 300 & echo $! > ${pids}; sh -c 'sleep 301' & echo $! >> ${pids}; wait`],
    });
    await waitForState(s, b.key, job.id, ["running"]);
    const list = await waitFor(
      async () => {
        const t = fs.existsSync(pids) ? fs.readFileSync(pids, "utf8").trim().split("\n").filter(Boolean) : [];
        return t.length === 2 ? t.map(Number) : null;
      },
      10_000,
      "child pids",
    );
    expect(list.every(alive)).toBe(true);
    const c = await must<{ state: string; cancelRequested: boolean }>(
      s,
      "POST",
      `/v1/jobs/${job.id}/cancel`,
      b.key,
    );
    expect(c.cancelRequested).toBe(true);
    const done = await waitForState(s, b.key, job.id, ["cancelled", "failed", "succeeded"], 20_000);
    expect(done.state).toBe("cancelled");
    await waitFor(async () => list.every((p) => !alive(p)), 10_000, "process tree gone");
    a.proc.kill("SIGTERM");
    await a.proc.exited;
  }, 60_000);

  it("two agents (4 and 2 GPUs): a 2-GPU job lands on the 2-GPU worker and sees its GPUs", async () => {
    const big = await agent("fake:4xH100");
    const small = await agent("fake:2xH100");
    const job = await submit({
      gpuType: "H100",
      gpus: 2,
      command: ["sh", "-c", "echo CVD=$CUDA_VISIBLE_DEVICES"],
    });
    const done = await waitForState(s, b.key, job.id, ["succeeded", "failed"]);
    expect(done).toMatchObject({ state: "succeeded", workerId: small.id, gpuIndices: [0, 1] });
    const logs = await must<{ tail: string }>(s, "GET", `/v1/jobs/${job.id}/logs`, b.key);
    expect(logs.tail).toContain("CVD=0,1");
    big.proc.kill("SIGTERM");
    small.proc.kill("SIGTERM");
    await Promise.all([big.proc.exited, small.proc.exited]);
  }, 60_000);

  it("drain finishes the running job and assigns nothing new; then the agent leaves", async () => {
    const a = await agent("fake:2xV100");
    const long = await submit({ gpuType: "V100", command: ["sh", "-c", "sleep 2; echo finished"] });
    await waitForState(s, b.key, long.id, ["running"]);
    const d = await call<WorkerView>(s, "POST", `/v1/workers/${a.id}/drain`, s.admin);
    expect(d.status).toBe(200);
    expect(d.body.draining).toBe(true);
    const later = await submit({ gpuType: "V100", name: "after-drain" });
    const done = await waitForState(s, b.key, long.id, ["succeeded", "failed"], 30_000);
    expect(done.state).toBe("succeeded");
    // The agent exits once its work is done; the new job was never assigned to it.
    expect(await a.proc.exited).toBe(0);
    const j = await must<{ state: string; attempt: number }>(s, "GET", `/v1/jobs/${later.id}`, b.key);
    expect(j).toMatchObject({ state: "queued", attempt: 1 });
    const why = await must<{ reason: { code: string } }>(s, "GET", `/v1/jobs/${later.id}/explain`, b.key);
    expect(why.reason.code).toBe("NoMatchingWorkers");
  }, 60_000);

  it("SIGTERM drains the agent: it finishes its job before exiting", async () => {
    const a = await agent("fake:1xA40");
    const job = await submit({ gpuType: "A40", command: ["sh", "-c", "sleep 2; echo done"] });
    await waitForState(s, b.key, job.id, ["running"]);
    a.proc.kill("SIGTERM");
    expect(await a.proc.exited).toBe(0);
    const j = await waitForState(s, b.key, job.id, ["succeeded", "failed", "queued"], 10_000);
    expect(j.state).toBe("succeeded");
    const w = (await workers()).find((x) => x.id === a.id)!;
    expect(w.state).toBe("left");
  }, 60_000);
});
