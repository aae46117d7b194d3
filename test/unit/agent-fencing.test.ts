// Self-fencing: an agent whose heartbeats do not get through for leaseTtlSeconds minus one heartbeat
// interval must kill its jobs (the control plane is about to run them elsewhere) and report them
// failed with reason LeaseLost once it can; a shorter outage must not touch them.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AgentHandle } from "../../cli/agent/agent.ts";
import { fenceAfterMs } from "../../cli/agent/fence.ts";
import { groupAlive, processState } from "../../cli/agent/proctree.ts";
import { watchdogTools } from "../../cli/agent/watchdog.ts";
import { assignment, FakeControlPlane, problem, until } from "./agent-fake-control-plane.ts";
import { startTestAgent } from "./agent-harness.ts";

let cp: FakeControlPlane;
let agents: AgentHandle[];
let dir: string;

beforeEach(async () => {
  cp = await new FakeControlPlane().start();
  // Fencing after 2 − 0.25 = 1.75 s without a heartbeat.
  cp.heartbeatIntervalSeconds = 0.25;
  cp.leaseTtlSeconds = 2;
  agents = [];
  dir = mkdtempSync(join(tmpdir(), "gantry-fencing-"));
});

afterEach(async () => {
  for (const a of agents) await a.kill();
  await cp.close();
});

function startAgent() {
  // No live channel: the tests cut heartbeats by refusing them over HTTP.
  return startTestAgent(cp, agents, { gpus: "fake:2xH100", hostname: "fence-host" }, { liveChannel: false });
}

const alive = (pid: number) => {
  const s = processState(pid);
  return s !== null && s !== "Z" && s !== "X";
};

/** The pids a job writes to `path`, once there are `count` of them. */
async function readPids(path: string, count: number): Promise<number[]> {
  let pids: number[] = [];
  await until(() => {
    try {
      pids = readFileSync(path, "utf8").split(/\s+/).filter(Boolean).map(Number);
    } catch {}
    return pids.length >= count;
  }, `${count} pids in ${path}`);
  return pids;
}

const states = (jobId: string) => cp.statusesOf(jobId).map((s) => s.body.state);

/** Makes heartbeats and status calls fail with 503 until the returned function is called. */
function outage(): () => void {
  let down = true;
  const unavailable = () => (down ? problem(503, "Service Unavailable", "down", "Unavailable") : undefined);
  cp.onHeartbeat = unavailable;
  cp.onStatus = unavailable;
  return () => {
    down = false;
  };
}

describe("self-fencing", () => {
  it("uses the lease TTL minus one heartbeat interval, and never less than half the TTL", () => {
    expect(fenceAfterMs({ leaseTtlSeconds: 30, heartbeatIntervalSeconds: 10 })).toBe(20_000);
    expect(fenceAfterMs({ leaseTtlSeconds: 30, heartbeatIntervalSeconds: 30 })).toBe(15_000);
  });

  it("kills the jobs when heartbeats fail for longer than TTL − interval, and reports them LeaseLost", async () => {
    const { handle, logs } = startAgent();
    await until(() => handle.workerId !== undefined, "registration");
    const id = handle.workerId!;
    const pidFile = join(dir, "fenced.pids");
    cp.nextHeartbeat.set(id, {
      assignments: [
        assignment("job-f1", [
          "sh",
          "-c",
          `(sleep 60 & echo $! >> ${pidFile}); echo $$ >> ${pidFile}; sleep 61`,
        ]),
      ],
    });
    await until(() => states("job-f1").includes("running"), "job-f1 running");
    const pids = await readPids(pidFile, 2);
    expect(pids.every(alive)).toBe(true);

    const t0 = Date.now();
    const restore = outage();
    await until(() => handle.runningJobs === 0, "job-f1 fenced", 6000);
    const took = Date.now() - t0;
    // The last good heartbeat was sent up to one interval before the outage began.
    expect(took).toBeGreaterThanOrEqual(1750 - 250 - 50);
    expect(took).toBeLessThan(4000);
    expect(pids.filter(alive)).toEqual([]);
    const fenced = logs().find((l) => /self-fencing/.test(String(l.msg)));
    expect(fenced).toMatchObject({ level: "error", killedJobs: 1, leaseTtlSeconds: 2 });
    expect(states("job-f1")).toEqual(["running"]); // nothing gets through yet

    restore();
    await until(() => states("job-f1").includes("failed"), "LeaseLost reported", 5000);
    const failed = cp.statusesOf("job-f1").find((s) => s.body.state === "failed")!;
    expect(failed.body).toMatchObject({ lease: 1, state: "failed", reason: "LeaseLost" });
    expect(failed.body.message).toMatch(
      /^killed: the agent lost contact with the control plane for \d+(\.\d)? s \(lease TTL 2 s\)/,
    );
  });

  it("keeps jobs running through a shorter outage and reports them as usual", async () => {
    const { handle, logs } = startAgent();
    await until(() => handle.workerId !== undefined, "registration");
    cp.nextHeartbeat.set(handle.workerId!, {
      assignments: [assignment("job-f2", ["sh", "-c", "sleep 1.5; echo survived"])],
    });
    await until(() => states("job-f2").includes("running"), "job-f2 running");
    const restore = outage();
    await new Promise((r) => setTimeout(r, 600));
    expect(handle.runningJobs).toBe(1);
    restore();
    await until(() => states("job-f2").includes("succeeded"), "job-f2 succeeded", 5000);
    const done = cp.statusesOf("job-f2").find((s) => s.body.state === "succeeded")!;
    expect(done.body).toMatchObject({ exitCode: 0, logTail: "survived\n" });
    expect(logs().some((l) => /self-fencing/.test(String(l.msg)))).toBe(false);
  });

  it.skipIf(!watchdogTools())(
    "runs each job under the watchdog, with the fencing deadline as its timeout",
    async () => {
      const { handle } = startAgent();
      await until(() => handle.workerId !== undefined, "registration");
      const pidFile = join(dir, "leader.pid");
      cp.nextHeartbeat.set(handle.workerId!, {
        assignments: [assignment("job-f3", ["sh", "-c", `echo $$ > ${pidFile}; sleep 60`])],
      });
      await until(() => states("job-f3").includes("running"), "job-f3 running");
      const [jobShell] = await readPids(pidFile, 1);
      // The job's shell is not the group leader: the wrapper is, with the timeout in its arguments.
      const stat = readFileSync(`/proc/${jobShell}/stat`, "utf8");
      const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      expect(pgid).not.toBe(jobShell);
      const argv = readFileSync(`/proc/${pgid}/cmdline`, "utf8").split("\0");
      // The delay before watching comes from the fencing deadline (1.75 s); a tick is an eighth of the
      // heartbeat interval; the budget is what the lease has left, plus a check interval and a tick,
      // less the delay; the grace is capped at half a heartbeat interval.
      const [name, delay, tick, tickMs, budgetMs, grace] = argv.slice(3, 9);
      expect([name, delay, tick, tickMs, grace]).toEqual(["gantry-job", "0.438", "0.031", "31", "0.125"]);
      expect(Number(budgetMs)).toBeGreaterThan(0);
      expect(Number(budgetMs)).toBeLessThanOrEqual(1750 + 63 + 31 - 438);
      await handle.kill();
      await until(() => !groupAlive(pgid), "job gone", 2000);
    },
  );
});
