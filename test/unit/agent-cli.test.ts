// The `gantry` command as users run it: a real process (tsx and the bin shim), exit codes, stderr
// messages, and signal handling of `gantry agent` against the scripted control plane.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { processState } from "../../cli/agent/proctree.ts";
import { watchdogTools } from "../../cli/agent/watchdog.ts";
import { assignment, FakeControlPlane, until } from "./agent-fake-control-plane.ts";

const root = resolve(import.meta.dirname, "../..");
let cp: FakeControlPlane;
const children: ChildProcess[] = [];

beforeEach(async () => {
  cp = await new FakeControlPlane().start();
});
afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  children.length = 0;
  await cp.close();
});

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function gantry(args: string[], env: NodeJS.ProcessEnv = {}, viaBin = false): Run {
  const entry = viaBin ? [join(root, "bin/gantry.mjs")] : ["--import", "tsx", join(root, "cli/main.ts")];
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => {
    out += d;
  });
  child.stderr!.on("data", (d) => {
    err += d;
  });
  const exit = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

const jsonLines = (text: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("gantry", () => {
  it("--help lists the commands", async () => {
    const r = gantry(["--help"]);
    expect(await r.exit).toBe(0);
    expect(r.stdout()).toMatch(/Usage: gantry <command>/);
    expect(r.stdout()).toMatch(/agent\s+run the GPU host agent/);
  });

  it("an unknown command exits 2 with a message on stderr", async () => {
    const r = gantry(["frobnicate"]);
    expect(await r.exit).toBe(2);
    expect(r.stderr()).toMatch(/unknown command "frobnicate"/);
    expect(r.stdout()).toBe("");
  });

  it("the bin shim runs the same CLI", async () => {
    const r = gantry(["agent", "--help"], {}, true);
    expect(await r.exit).toBe(0);
    expect(r.stdout()).toMatch(/Usage: gantry agent --url URL --join-token TOKEN/);
  });
});

describe("gantry agent", () => {
  it("exits 2 on a bad URL", async () => {
    const r = gantry(["agent", "--url", "gantry.example.com", "--join-token", "t"]);
    expect(await r.exit).toBe(2);
    expect(r.stderr()).toMatch(/--url is not a valid URL/);
  });

  it("exits 3 when the join token is rejected, without printing it", async () => {
    const r = gantry(["agent", "--gpus", "fake:1xH100"], {
      GANTRY_URL: cp.url,
      GANTRY_JOIN_TOKEN: "not-the-token-42",
    });
    expect(await r.exit).toBe(3);
    const err = jsonLines(r.stderr()).find((l) => l.level === "error")!;
    expect(err.msg).toMatch(/join token rejected.*ask your admin for a new one/);
    expect(r.stderr()).not.toContain("not-the-token-42");
  });

  it("exits 1 with a hint when nvidia-smi is missing", async () => {
    const empty = mkdtempSync(join(tmpdir(), "gantry-nopath-"));
    const r = gantry(["agent", "--url", cp.url, "--join-token", cp.joinToken], { PATH: empty });
    expect(await r.exit).toBe(1);
    expect(r.stderr()).toMatch(/nvidia-smi not found.*--gpus fake:/);
  });

  it("runs jobs, and on SIGTERM drains, deregisters and exits 0", async () => {
    const r = gantry([
      "agent",
      "--url",
      cp.url,
      "--join-token",
      cp.joinToken,
      "--gpus",
      "fake:2xH100",
      "--hostname",
      "cli-host",
    ]);
    await until(
      () => cp.workers.size === 1 && cp.connected([...cp.workers.keys()][0]!),
      "agent registered",
      15_000,
    );
    const id = [...cp.workers.keys()][0]!;
    cp.push(id, {
      type: "assignments",
      assignments: [assignment("cli-1", ["sh", "-c", "sleep 0.3; echo ok"])],
    });
    await until(() => cp.statusesOf("cli-1").length === 1, "job running");
    r.child.kill("SIGTERM");
    expect(await r.exit).toBe(0);
    expect(cp.statusesOf("cli-1").map((s) => s.body.state)).toEqual(["running", "succeeded"]);
    expect(cp.requestsTo("/drain")).toHaveLength(1);
    expect(cp.requestsTo("/deregister")).toHaveLength(1);
    const logs = jsonLines(r.stderr());
    expect(
      logs.every((l) => typeof l.t === "string" && typeof l.level === "string" && typeof l.msg === "string"),
    ).toBe(true);
    expect(r.stderr()).not.toContain(cp.joinToken);
  });

  it("a second SIGTERM kills the jobs and exits at once", async () => {
    const r = gantry(["agent", "--url", cp.url, "--join-token", cp.joinToken, "--gpus", "fake:1xH100"]);
    await until(
      () => cp.workers.size === 1 && cp.connected([...cp.workers.keys()][0]!),
      "agent registered",
      15_000,
    );
    const id = [...cp.workers.keys()][0]!;
    cp.push(id, { type: "assignments", assignments: [assignment("cli-2", ["sleep", "60"])] });
    await until(() => cp.statusesOf("cli-2").length === 1, "job running");
    r.child.kill("SIGTERM");
    await until(() => cp.requestsTo("/drain").length === 1, "drain requested");
    const t0 = Date.now();
    r.child.kill("SIGTERM");
    expect(await r.exit).toBe(143);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

// The agent dies or freezes while a job runs: the job's whole tree must go (the control plane is about
// to run it elsewhere), checked in /proc. A double fork leaves a grandchild whose parent is init but
// which is still in the job's process group.
describe.skipIf(!watchdogTools())("gantry agent that dies or freezes", () => {
  const alive = (pid: number) => {
    const s = processState(pid);
    return s !== null && s !== "Z" && s !== "X";
  };

  async function runTree(args: string[] = []) {
    const r = gantry([
      "agent",
      "--url",
      cp.url,
      "--join-token",
      cp.joinToken,
      "--gpus",
      "fake:1xH100",
      ...args,
    ]);
    await until(
      () => cp.workers.size === 1 && cp.connected([...cp.workers.keys()][0]!),
      "agent registered",
      15_000,
    );
    const id = [...cp.workers.keys()][0]!;
    const pidFile = join(mkdtempSync(join(tmpdir(), "gantry-cli-")), "pids");
    const script = `(sleep 60 & echo $! >> ${pidFile}); echo $$ >> ${pidFile}; sleep 61`;
    cp.push(id, { type: "assignments", assignments: [assignment("tree", ["sh", "-c", script])] });
    let pids: number[] = [];
    await until(() => {
      try {
        pids = readFileSync(pidFile, "utf8").trim().split("\n").filter(Boolean).map(Number);
      } catch {}
      return pids.length === 2;
    }, "job pids");
    expect(pids.every(alive)).toBe(true);
    return { r, pids };
  }

  it("kill -9 of the agent kills the job's process tree", async () => {
    const { r, pids } = await runTree();
    const t0 = Date.now();
    r.child.kill("SIGKILL");
    await until(() => pids.every((p) => !alive(p)), "job processes gone", 5000);
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  it("a frozen agent's jobs end after the fencing deadline; thawed, it reports them LeaseLost", async () => {
    cp.leaseTtlSeconds = 2;
    cp.heartbeatIntervalSeconds = 0.5; // fencing and watchdog deadline: 1.5 s
    const { r, pids } = await runTree();
    await until(() => cp.statusesOf("tree").length === 1, "running reported");
    const agentPid = r.child.pid!;
    r.child.kill("SIGSTOP");
    try {
      const t0 = Date.now();
      await until(() => pids.every((p) => !alive(p)), "job processes gone", 6000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
      expect(processState(agentPid)).toBe("T"); // the agent itself did nothing: it is still stopped
    } finally {
      r.child.kill("SIGCONT");
    }
    await until(() => cp.statusesOf("tree").some((s) => s.body.state === "failed"), "failure reported", 5000);
    const failed = cp.statusesOf("tree").find((s) => s.body.state === "failed")!;
    expect(failed.body).toMatchObject({ state: "failed", reason: "LeaseLost" });
    r.child.kill("SIGTERM");
    expect(await r.exit).toBe(0);
  });
});
